/**
 * A search response read without parsing its documents: every field of the response and of each hit is parsed
 * as usual, except each hit's `_source`, which is kept as the exact bytes the server sent (`_raw`, a view into the
 * page). A copy with no transform sends those bytes on into the bulk body unchanged: no parse and no stringify
 * per document (the two costs that bound the copy's CPU), and no number rounded on the way (a 64-bit integer in a
 * document survives, where JSON.parse would turn it into the nearest double).
 *
 * The page stays bytes, never one JS string: a page of 1,000 documents as a string is a megabyte (two, with one
 * non-ASCII character) in V8's large-object space, which only a full collection frees, and those dead pages were
 * most of the copy's peak RSS. A buffer's memory is outside the heap and goes with its last view.
 *
 * The scanner only finds where values start and end (strings, with their escapes, and nesting); anything it does
 * not expect is an error, never a guess. Scanning UTF-8 bytes for `"`, `\` and brackets is exact: every byte of
 * a multi-byte character is >= 0x80.
 */
import type { Hit, SearchResponse } from './hits.js';

export class UnreadableSearchPage extends Error {
  override readonly name = 'UnreadableSearchPage';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isWs(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWs(s: Buffer, i: number): number {
  while (i < s.length && isWs(s[i])) i++;
  return i;
}

/** `i` at an opening quote: the index after the closing one. */
function skipString(s: Buffer, i: number): number {
  for (let from = i + 1; ; ) {
    const q = s.indexOf(QUOTE, from);
    if (q < 0) throw new UnreadableSearchPage('unterminated string');
    let slashes = 0;
    for (let b = q - 1; s[b] === BACKSLASH; b--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** `i` at the start of a value (after whitespace): the index after it. */
function skipValue(s: Buffer, i: number): number {
  const c = s[i];
  if (c === QUOTE) return skipString(s, i);
  if (c === OPEN_OBJ || c === OPEN_ARR) {
    // A plain loop: a global regular expression finding the next quote or bracket measured slower (match objects).
    let depth = 0;
    while (i < s.length) {
      const ch = s[i];
      if (ch === QUOTE) {
        i = skipString(s, i);
        continue;
      }
      if (ch === OPEN_OBJ || ch === OPEN_ARR) depth++;
      else if (ch === CLOSE_OBJ || ch === CLOSE_ARR) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    throw new UnreadableSearchPage('unterminated object or array');
  }
  const start = i;
  while (i < s.length) {
    const ch = s[i];
    if (ch === COMMA || ch === CLOSE_OBJ || ch === CLOSE_ARR || isWs(ch)) break;
    i++;
  }
  if (i === start) throw new UnreadableSearchPage(`no value at ${start}`);
  return i;
}

/**
 * The keys a response and its hits are made of, as constants: a key among them is recognised on its bytes, so
 * reading a hit makes no string per key (a page of 2,000 ids and versions has 10,000 keys, all garbage at once).
 */
const KNOWN_KEYS = [
  '_id',
  '_index',
  '_routing',
  '_seq_no',
  '_primary_term',
  '_version',
  '_score',
  '_source',
  '_ignored',
  '_type',
  '_nested',
  'sort',
  'fields',
  'found',
  'error',
  'hits',
  'docs',
  'total',
  'max_score',
  'pit_id',
  '_shards',
  'took',
  'timed_out',
];
const KEYS_BY_LENGTH = new Map<number, string[]>();
for (const k of KNOWN_KEYS) KEYS_BY_LENGTH.set(k.length, [...(KEYS_BY_LENGTH.get(k.length) ?? []), k]);

/** The key whose string is [start, end) (quotes included). */
function keyAt(s: Buffer, start: number, end: number): string {
  const from = start + 1;
  const len = end - 1 - from;
  const candidates = KEYS_BY_LENGTH.get(len);
  if (candidates)
    outer: for (const k of candidates) {
      for (let j = 0; j < len; j++) if (s[from + j] !== k.charCodeAt(j)) continue outer;
      return k;
    }
  return plainValue(s, start, end) as string;
}

/** Each member of the object at `i`, in order: its key and the bounds of its value. */
function eachMember(s: Buffer, i: number, visit: (key: string, vs: number, ve: number) => void): void {
  i = skipWs(s, i);
  if (s[i] !== OPEN_OBJ) throw new UnreadableSearchPage(`expected an object at ${i}`);
  i = skipWs(s, i + 1);
  if (s[i] === CLOSE_OBJ) return;
  for (;;) {
    if (s[i] !== QUOTE) throw new UnreadableSearchPage(`expected a key at ${i}`);
    const keyEnd = skipString(s, i);
    const key = keyAt(s, i, keyEnd);
    i = skipWs(s, keyEnd);
    if (s[i] !== COLON) throw new UnreadableSearchPage(`expected ':' at ${i}`);
    const vs = skipWs(s, i + 1);
    const ve = skipValue(s, vs);
    visit(key, vs, ve);
    i = skipWs(s, ve);
    const c = s[i];
    if (c === CLOSE_OBJ) return;
    if (c !== COMMA) throw new UnreadableSearchPage(`expected ',' or '}' at ${i}`);
    i = skipWs(s, i + 1);
  }
}

/** What `read` makes of each element of the array at `i` (given the element's bounds). */
function mapElements<T>(s: Buffer, i: number, read: (vs: number, ve: number) => T): T[] {
  i = skipWs(s, i);
  if (s[i] !== OPEN_ARR) throw new UnreadableSearchPage(`expected an array at ${i}`);
  const out: T[] = [];
  i = skipWs(s, i + 1);
  if (s[i] === CLOSE_ARR) return out;
  for (;;) {
    const ve = skipValue(s, i);
    out.push(read(i, ve));
    i = skipWs(s, ve);
    const c = s[i];
    if (c === CLOSE_ARR) return out;
    if (c !== COMMA) throw new UnreadableSearchPage(`expected ',' or ']' at ${i}`);
    i = skipWs(s, i + 1);
  }
}

/** The bytes [start, end) spell `word` (ASCII). */
function spells(s: Buffer, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let j = 0; j < word.length; j++) if (s[start + j] !== word.charCodeAt(j)) return false;
  return true;
}

/** An integer of 1-15 digits read from its bytes (no string made), or undefined for anything else. */
function smallInteger(s: Buffer, start: number, end: number): number | undefined {
  const neg = s[start] === 0x2d;
  const from = neg ? start + 1 : start;
  const digits = end - from;
  // 15 digits stay below 2^53; a leading zero is only "0" itself (anything else is left to JSON.parse)
  if (digits < 1 || digits > 15 || (digits > 1 && s[from] === 0x30)) return undefined;
  let v = 0;
  for (let j = from; j < end; j++) {
    const d = s[j]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return neg ? -v : v;
}

/**
 * The value in [start, end): a string without escapes, an integer or a literal read directly (a hit's metadata is
 * almost only these), anything else by JSON.parse.
 */
function plainValue(s: Buffer, start: number, end: number): unknown {
  const c = s[start];
  if (c === QUOTE) {
    for (let j = start + 1; j < end - 1; j++)
      if (s[j] === BACKSLASH) return JSON.parse(s.toString('utf8', start, end));
    return s.toString('utf8', start + 1, end - 1);
  }
  if (c === OPEN_OBJ || c === OPEN_ARR) return JSON.parse(s.toString('utf8', start, end));
  if (spells(s, start, end, 'null')) return null;
  if (spells(s, start, end, 'true')) return true;
  if (spells(s, start, end, 'false')) return false;
  // Fractions, exponents, longer digits: as JSON.parse reads them (it refuses what is not JSON).
  return smallInteger(s, start, end) ?? JSON.parse(s.toString('latin1', start, end));
}

function hitOf(s: Buffer, start: number): Hit {
  const hit: Record<string, unknown> = {};
  eachMember(s, start, (key, vs, ve) => {
    if (key === '_source') hit._raw = s.subarray(vs, ve);
    else hit[key] = plainValue(s, vs, ve);
  });
  return hit as unknown as Hit;
}

/**
 * A search response whose hits carry `_raw` (their `_source` as sent) instead of a parsed `_source`; an `_mget`
 * answer's `docs` the same way.
 */
export function scanSearchPage(text: Buffer): SearchResponse & { docs?: Array<Hit & { found: boolean }> } {
  const page: Record<string, unknown> = {};
  const hitAt = (hs: number) => hitOf(text, hs);
  eachMember(text, 0, (key, vs, ve) => {
    if (key === 'docs') page.docs = mapElements(text, vs, hitAt);
    else if (key !== 'hits') page[key] = JSON.parse(text.toString('utf8', vs, ve));
    else {
      const hits: Record<string, unknown> = {};
      eachMember(text, vs, (k, s2, e2) => {
        if (k === 'hits') hits.hits = mapElements(text, s2, hitAt);
        else hits[k] = JSON.parse(text.toString('utf8', s2, e2));
      });
      page.hits = hits;
    }
  });
  return page as unknown as SearchResponse & { docs?: Array<Hit & { found: boolean }> };
}
