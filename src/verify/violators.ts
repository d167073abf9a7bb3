/**
 * Every document a narrowing type change would reject, found by asking the source, not by sampling: a sample of
 * 1,000 misses the one bad value in 20,000 that would surface hours later as a dead letter.
 *
 *   integer narrowing (long -> integer, ...): one `range` query outside the new type's bounds;
 *   keyword -> numeric / boolean / ip: the distinct values, paged with a `composite` aggregation (doc values, on
 *   every version: Elasticsearch 7.17 to 9, OpenSearch), are parsed as the target would; a `terms` query on the
 *   ones that do not parse gives the count and the first ids. A text field is checked through a keyword
 *   multi-field when it has one.
 *
 * The query reads the source values; a transform may change them before they are written, so with a transform the
 * answer warns and the sample (which runs the transform) decides. New date fields are judged by the target's own
 * parser (date-violators.ts); what no query can judge (a nested field) is left to the sample as before.
 */
import { isIP } from 'node:net';
import type { Cluster } from '../cluster/client.js';
import type { Obj } from '../store/json.js';
import { flattenFields } from './mapping-diff.js';
import type { Finding } from './preflight.js';

const BOUNDS: Record<string, [number, number]> = {
  byte: [-128, 127],
  short: [-32768, 32767],
  integer: [-2147483648, 2147483647],
};
const INTEGERS = new Set(['byte', 'short', 'integer', 'long']);
const FLOATS = new Set(['half_float', 'float', 'double', 'scaled_float']);
const STRINGY = new Set(['keyword', 'text', 'constant_keyword', 'wildcard']);
const FIRST_IDS = 10;
/** distinct values read before giving up on an exact answer (the sample still runs) */
const MAX_TERMS = 1_000_000;

export interface Violation {
  path: string;
  change: string;
  count: number;
  ids: string[];
  /** some of the values the target refuses */
  examples: string[];
}

type Check =
  | { kind: 'range'; path: string; from: string; to: string; min: number; max: number }
  | { kind: 'parse'; path: string; field: string; from: string; to: string; ok: (v: string) => boolean };

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const LONG: [bigint, bigint] = [-(2n ** 63n), 2n ** 63n - 1n];

/**
 * Whether the target type accepts a string value as Elasticsearch parses it (coerce on, the default; checked
 * against 8.19): "" is taken as no value, surrounding spaces and hex are refused, fractions and exponents are
 * accepted for integer types, and the bounds apply to the value before it is truncated.
 */
function parserFor(to: string): ((v: string) => boolean) | undefined {
  if (INTEGERS.has(to)) {
    const b = BOUNDS[to];
    return (v) => {
      if (v === '') return true;
      if (!NUMBER.test(v)) return false;
      if (/^[+-]?\d+$/.test(v)) {
        const n = BigInt(v);
        return b ? n >= BigInt(b[0]) && n <= BigInt(b[1]) : n >= LONG[0] && n <= LONG[1];
      }
      const n = Number(v);
      return b ? n >= b[0] && n <= b[1] : Math.abs(n) < 2 ** 63;
    };
  }
  if (FLOATS.has(to)) return (v) => v === '' || (NUMBER.test(v) && Number.isFinite(Number(v)));
  if (to === 'boolean') return (v) => v === 'true' || v === 'false' || v === '';
  if (to === 'ip') return (v) => isIP(v) !== 0;
  return undefined;
}

function checksFor(sourceMappings: Obj, targetMappings: Obj): Check[] {
  const s = flattenFields(sourceMappings);
  const t = flattenFields(targetMappings);
  const checks: Check[] = [];
  for (const [path, sf] of s) {
    const tf = t.get(path);
    if (!tf || tf.type === sf.type) continue;
    // Inside a nested object a plain query does not see the field: left to the sample.
    const parts = path.split('.');
    if (parts.some((_, i) => i > 0 && s.get(parts.slice(0, i).join('.'))?.type === 'nested')) continue;
    const b = BOUNDS[tf.type];
    if (INTEGERS.has(sf.type) && b && (!BOUNDS[sf.type] || BOUNDS[sf.type]![1] > b[1])) {
      checks.push({ kind: 'range', path, from: sf.type, to: tf.type, min: b[0], max: b[1] });
      continue;
    }
    const ok = parserFor(tf.type);
    if (!ok || !STRINGY.has(sf.type)) continue;
    let field: string | undefined = path;
    if (sf.type === 'text') {
      const subs = (sf.def.fields ?? {}) as Record<string, { type?: string }>;
      const kw = Object.entries(subs).find(([, d]) => d.type === 'keyword');
      field = kw ? `${path}.${kw[0]}` : undefined;
    }
    if (field) checks.push({ kind: 'parse', path, field, from: sf.type, to: tf.type, ok });
  }
  return checks;
}

/** How many documents match, and the first ids (in index order). */
export async function firstIds(
  source: Cluster,
  index: string,
  query: unknown,
): Promise<{ count: number; ids: string[] }> {
  const r = await source.search(index, {
    size: FIRST_IDS,
    _source: false,
    track_total_hits: true,
    query,
    sort: ['_doc'],
  });
  const total = r.hits.total;
  return {
    count: typeof total === 'number' ? total : (total?.value ?? r.hits.hits.length),
    ids: r.hits.hits.map((h) => h._id),
  };
}

/** The distinct values of `field` that `ok` refuses; undefined when there are too many to read. */
async function refusedTerms(
  source: Cluster,
  index: string,
  field: string,
  ok: (v: string) => boolean,
): Promise<string[] | undefined> {
  const bad: string[] = [];
  let after: Record<string, unknown> | undefined;
  let seen = 0;
  for (;;) {
    const r = (await source.search(index, {
      size: 0,
      aggs: {
        v: {
          composite: { size: 1000, sources: [{ v: { terms: { field } } }], ...(after ? { after } : {}) },
        },
      },
    })) as unknown as {
      aggregations?: { v: { buckets: Array<{ key: { v: unknown } }>; after_key?: Record<string, unknown> } };
    };
    const agg = r.aggregations?.v;
    if (!agg || agg.buckets.length === 0) return bad;
    for (const b of agg.buckets) {
      const v = String(b.key.v);
      if (!ok(v)) bad.push(v);
    }
    seen += agg.buckets.length;
    if (seen > MAX_TERMS) return undefined;
    after = agg.after_key;
    if (!after) return bad;
  }
}

export async function findViolators(
  source: Cluster,
  index: string,
  sourceMappings: Obj,
  targetMappings: Obj,
): Promise<{ violations: Violation[]; unchecked: string[]; checked: string[] }> {
  const violations: Violation[] = [];
  const unchecked: string[] = [];
  const checks = checksFor(sourceMappings, targetMappings);
  for (const c of checks) {
    const change = `${c.from} -> ${c.to}`;
    if (c.kind === 'range') {
      const query = {
        bool: {
          should: [{ range: { [c.path]: { gt: c.max } } }, { range: { [c.path]: { lt: c.min } } }],
          minimum_should_match: 1,
        },
      };
      const r = await firstIds(source, index, query);
      if (r.count > 0)
        violations.push({ path: c.path, change, ...r, examples: [`outside ${c.min}..${c.max}`] });
      continue;
    }
    const bad = await refusedTerms(source, index, c.field, c.ok);
    if (bad === undefined) {
      unchecked.push(`${c.path} (${change}): more than ${MAX_TERMS} distinct values`);
      continue;
    }
    if (bad.length === 0) continue;
    // A terms query takes at most 65,536 terms by default; more bad values than that is answer enough.
    const r = await firstIds(source, index, { terms: { [c.field]: bad.slice(0, 65_536) } });
    violations.push({ path: c.path, change, ...r, examples: bad.slice(0, 5) });
  }
  return { violations, unchecked, checked: checks.map((c) => c.path) };
}

/** Findings like the sample's: above copy.maxDeadLetters a block (--force passes it), within it a warning. */
export function violatorFindings(
  r: { violations: Violation[]; unchecked: string[]; checked: string[] },
  o: { maxDeadLetters: number; transform: boolean },
): Finding[] {
  const out: Finding[] = r.violations.map((v) => {
    const within = v.count <= o.maxDeadLetters;
    return {
      check: 'violators',
      severity: o.transform || within ? ('warn' as const) : ('block' as const),
      message: `${v.path} (${v.change}): ${v.count} source document(s) hold values the target refuses (${v.examples.map((e) => JSON.stringify(e)).join(', ')}); first ids: ${v.ids.map((i) => JSON.stringify(i)).join(', ')}`,
      action: o.transform
        ? 'these are the source values; the transform may change them before they are written, and the sample (which runs it) decides'
        : within
          ? `within copy.maxDeadLetters = ${o.maxDeadLetters}: the copy dead-letters them and goes on`
          : 'fix those documents on the source, widen the target type (target.mappingOverrides), or convert the value in a transform; --max-dead-letters N accepts them as dead letters',
    };
  });
  for (const u of r.unchecked)
    out.push({
      check: 'violators',
      severity: 'info',
      message: `${u}: not checked exactly; the sample dry run checks a sample`,
    });
  if (out.length === 0 && r.checked.length > 0)
    return [
      {
        check: 'violators',
        severity: 'ok',
        message: `every source value of ${r.checked.join(', ')} fits its new type (checked by query, every document)`,
      },
    ];
  return out;
}
