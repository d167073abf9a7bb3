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

/** The members of the object at `i`: key, and the bounds of its value. */
function members(s: Buffer, i: number): Array<[string, number, number]> {
  i = skipWs(s, i);
  if (s[i] !== OPEN_OBJ) throw new UnreadableSearchPage(`expected an object at ${i}`);
  const out: Array<[string, number, number]> = [];
  i = skipWs(s, i + 1);
  if (s[i] === CLOSE_OBJ) return out;
  for (;;) {
    if (s[i] !== QUOTE) throw new UnreadableSearchPage(`expected a key at ${i}`);
    const keyEnd = skipString(s, i);
    const key = plainValue(s, i, keyEnd) as string;
    i = skipWs(s, keyEnd);
    if (s[i] !== COLON) throw new UnreadableSearchPage(`expected ':' at ${i}`);
    const vs = skipWs(s, i + 1);
    const ve = skipValue(s, vs);
    out.push([key, vs, ve]);
    i = skipWs(s, ve);
    const c = s[i];
    if (c === CLOSE_OBJ) return out;
    if (c !== COMMA) throw new UnreadableSearchPage(`expected ',' or '}' at ${i}`);
    i = skipWs(s, i + 1);
  }
}

/** The elements of the array at `i`, as value bounds. */
function elements(s: Buffer, i: number): Array<[number, number]> {
  i = skipWs(s, i);
  if (s[i] !== OPEN_ARR) throw new UnreadableSearchPage(`expected an array at ${i}`);
  const out: Array<[number, number]> = [];
  i = skipWs(s, i + 1);
  if (s[i] === CLOSE_ARR) return out;
  for (;;) {
    const ve = skipValue(s, i);
    out.push([i, ve]);
    i = skipWs(s, ve);
    const c = s[i];
    if (c === CLOSE_ARR) return out;
    if (c !== COMMA) throw new UnreadableSearchPage(`expected ',' or ']' at ${i}`);
    i = skipWs(s, i + 1);
  }
}

/**
 * The value in [start, end): a string without escapes, a number or a literal read directly (a hit's metadata is
 * almost only these), anything else by JSON.parse.
 */
function plainValue(s: Buffer, start: number, end: number): unknown {
  const c = s[start];
  if (c === QUOTE) {
    const inner = s.toString('utf8', start + 1, end - 1);
    return inner.includes('\\') ? JSON.parse(s.toString('utf8', start, end)) : inner;
  }
  if (c === OPEN_OBJ || c === OPEN_ARR) return JSON.parse(s.toString('utf8', start, end));
  // A number or a literal: ASCII by JSON's grammar.
  const text = s.toString('latin1', start, end);
  if (text === 'null') return null;
  if (text === 'true') return true;
  if (text === 'false') return false;
  // Integers within 2^53 only: anything else (fractions, exponents, longer digits) as JSON.parse reads it.
  if (text.length < 16 && /^-?(0|[1-9]\d*)$/.test(text)) return Number(text);
  return JSON.parse(text);
}

function hitOf(s: Buffer, start: number): Hit {
  const hit: Record<string, unknown> = {};
  for (const [key, vs, ve] of members(s, start)) {
    if (key === '_source') hit._raw = s.subarray(vs, ve);
    else hit[key] = plainValue(s, vs, ve);
  }
  return hit as unknown as Hit;
}

/**
 * A search response whose hits carry `_raw` (their `_source` as sent) instead of a parsed `_source`; an `_mget`
 * answer's `docs` the same way.
 */
export function scanSearchPage(text: Buffer): SearchResponse & { docs?: Array<Hit & { found: boolean }> } {
  const page: Record<string, unknown> = {};
  for (const [key, vs, ve] of members(text, 0)) {
    if (key === 'docs') {
      page.docs = elements(text, vs).map(([ds]) => hitOf(text, ds));
      continue;
    }
    if (key !== 'hits') {
      page[key] = JSON.parse(text.toString('utf8', vs, ve));
      continue;
    }
    const hits: Record<string, unknown> = {};
    for (const [k, s2, e2] of members(text, vs)) {
      if (k === 'hits') hits.hits = elements(text, s2).map(([hs]) => hitOf(text, hs));
      else hits[k] = JSON.parse(text.toString('utf8', s2, e2));
    }
    page.hits = hits;
  }
  return page as unknown as SearchResponse & { docs?: Array<Hit & { found: boolean }> };
}
