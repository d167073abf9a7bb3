/**
 * Every source value a new date field refuses, found by asking both clusters, not by sampling.
 *
 * A date format is parsed by the target's own Java formatter; no client-side re-implementation is exact, so the
 * target judges: the distinct source values are read with a `composite` aggregation (as violators.ts does for
 * numbers) and indexed, value by value, into a scratch index on the target holding only that field with its
 * target mapping; the items the target refuses are the violating values, and a `terms` query on the source gives
 * the count and the first ids.
 *
 *   keyword (or text with a keyword multi-field) -> date / date_nanos: the distinct values are doc values.
 *   date -> date with another format: the source keeps only the instant in doc values, and the target parses the
 *   text the application sent, which only `_source` holds. The distinct texts are read by a painless script over
 *   `_source` (where the source cluster has painless); the count is of documents holding the same instant as a
 *   refused text (a value written twice in two spellings counts twice). Without painless the field is named as
 *   unchecked and the sample decides.
 *
 *   date -> date_nanos: date_nanos holds 1970-01-01 to 2262-04-11 only; a `range` query finds the instants outside.
 *
 * A target field with `ignore_malformed: true` refuses nothing (it drops the value), so it is not checked here.
 */
import type { Cluster } from '../cluster/client.js';
import type { Obj } from '../store/json.js';
import { flattenFields } from './mapping-diff.js';
import { firstIds, type Violation } from './violators.js';

const DEFAULT_FORMAT = 'strict_date_optional_time||epoch_millis';
const DATES = new Set(['date', 'date_nanos']);
const STRINGY = new Set(['keyword', 'constant_keyword', 'wildcard']);
const PAGE = 1000;
/** distinct values read before giving up on an exact answer (the sample still runs) */
const MAX_VALUES = 1_000_000;
/** the last instant date_nanos holds, in ms (2262-04-11T23:47:16.854Z) */
const NANOS_MAX_MS = 9_223_372_036_854;

interface DateCheck {
  path: string;
  from: string;
  to: string;
  /** how the distinct values are read on the source */
  values: { field: string } | { script: string[] };
  /** the target's mapping of the field (what the scratch index holds) */
  targetDef: Obj;
}

function formatOf(def: Obj): string {
  return typeof def.format === 'string' ? def.format : DEFAULT_FORMAT;
}

export function dateChecksFor(
  sourceMappings: Obj,
  targetMappings: Obj,
): { checks: DateCheck[]; skipped: string[]; nanos: Array<{ path: string; change: string }> } {
  const s = flattenFields(sourceMappings);
  const t = flattenFields(targetMappings);
  const checks: DateCheck[] = [];
  const skipped: string[] = [];
  const nanos: Array<{ path: string; change: string }> = [];
  for (const [path, tf] of t) {
    const sf = s.get(path);
    if (!sf || !DATES.has(tf.type) || tf.def.ignore_malformed === true) continue;
    const parts = path.split('.');
    // Inside a nested object a plain aggregation does not see the field; a multi-field has no _source of its own.
    if (parts.some((_, i) => i > 0 && s.get(parts.slice(0, i).join('.'))?.type === 'nested')) continue;
    if (parts.some((_, i) => i > 0 && s.get(parts.slice(0, i).join('.'))?.def.fields)) continue;
    const change = `${sf.type}${DATES.has(sf.type) ? ` "${formatOf(sf.def)}"` : ''} -> ${tf.type} "${formatOf(tf.def)}"`;
    const targetDef: Obj = { type: tf.type, format: formatOf(tf.def) };
    if (typeof tf.def.locale === 'string') targetDef.locale = tf.def.locale;
    if (STRINGY.has(sf.type)) {
      checks.push({ path, from: sf.type, to: change, values: { field: path }, targetDef });
      continue;
    }
    if (sf.type === 'text') {
      const subs = (sf.def.fields ?? {}) as Record<string, { type?: string }>;
      const kw = Object.entries(subs).find(([, d]) => d.type === 'keyword');
      if (kw)
        checks.push({ path, from: sf.type, to: change, values: { field: `${path}.${kw[0]}` }, targetDef });
      else skipped.push(`${path} (${change}): a text field without a keyword multi-field`);
      continue;
    }
    // date_nanos holds 1970-01-01 to 2262-04-11 only: an instant outside is refused whatever its text.
    if (sf.type === 'date' && tf.type === 'date_nanos') nanos.push({ path, change: 'date -> date_nanos' });
    if (DATES.has(sf.type) && formatOf(sf.def) !== formatOf(tf.def))
      checks.push({ path, from: sf.type, to: change, values: { script: parts }, targetDef });
  }
  return { checks, skipped, nanos };
}

/** The distinct texts of a field from `_source` (several per document for an array). */
const SOURCE_TEXTS = `
def v = params['_source'];
for (p in params.path) { if (!(v instanceof Map) || !v.containsKey(p)) { return null; } v = v.get(p); }
if (v == null) { return null; }
if (v instanceof List) { def out = []; for (x in v) { if (x != null) { out.add(x.toString()); } } return out; }
return v.toString();`;

/** The distinct values of a check, page by page; stops (returns false) past MAX_VALUES. */
async function eachValuePage(
  source: Cluster,
  index: string,
  c: DateCheck,
  onPage: (values: string[]) => Promise<void>,
): Promise<boolean> {
  const terms =
    'field' in c.values
      ? { field: c.values.field }
      : { script: { lang: 'painless', source: SOURCE_TEXTS, params: { path: c.values.script } } };
  let after: Record<string, unknown> | undefined;
  let seen = 0;
  for (;;) {
    const r = (await source.search(index, {
      size: 0,
      aggs: { v: { composite: { size: PAGE, sources: [{ v: { terms } }], ...(after ? { after } : {}) } } },
    })) as unknown as {
      aggregations?: { v: { buckets: Array<{ key: { v: unknown } }>; after_key?: Record<string, unknown> } };
    };
    const agg = r.aggregations?.v;
    if (!agg || agg.buckets.length === 0) return true;
    await onPage(agg.buckets.map((b) => String(b.key.v)));
    seen += agg.buckets.length;
    if (seen > MAX_VALUES) return false;
    after = agg.after_key;
    if (!after) return true;
  }
}

function nest(path: string, leaf: unknown): Obj {
  let node = leaf;
  for (const part of path.split('.').reverse()) node = { [part]: node };
  return node as Obj;
}

function nestMapping(path: string, def: Obj): Obj {
  let node: Obj = def;
  for (const part of path.split('.').reverse()) node = { properties: { [part]: node } };
  return node;
}

/** The values the target refuses, judged by indexing each into the scratch index. */
async function refusedByTarget(
  target: Cluster,
  scratch: string,
  path: string,
  values: string[],
): Promise<string[]> {
  let nd = '';
  for (const [i, v] of values.entries())
    nd += `${JSON.stringify({ index: { _index: scratch, _id: String(i) } })}\n${JSON.stringify(nest(path, v))}\n`;
  const r = await target.bulk(nd);
  const bad: string[] = [];
  for (const [i, item] of r.items.entries()) {
    const res = Object.values(item)[0];
    if (res?.error) bad.push(values[i]!);
  }
  return bad;
}

export interface DateViolatorInput {
  source: Cluster;
  sourceIndex: string;
  sourceMappings: Obj;
  target: Cluster;
  targetMappings: Obj;
  /** a scratch index name on the target (created and deleted here) */
  scratch: string;
}

export async function findDateViolators(
  o: DateViolatorInput,
): Promise<{ violations: Violation[]; unchecked: string[]; checked: string[] }> {
  const { checks, skipped, nanos } = dateChecksFor(o.sourceMappings, o.targetMappings);
  const violations: Violation[] = [];
  const unchecked = [...skipped];
  const checked: string[] = [];
  for (const n of nanos) {
    const r = await firstIds(o.source, o.sourceIndex, {
      bool: {
        should: [
          { range: { [n.path]: { lt: 0, format: 'epoch_millis' } } },
          { range: { [n.path]: { gt: NANOS_MAX_MS, format: 'epoch_millis' } } },
        ],
        minimum_should_match: 1,
      },
    });
    checked.push(n.path);
    if (r.count > 0)
      violations.push({
        path: n.path,
        change: n.change,
        ...r,
        examples: ['before 1970-01-01 or after 2262-04-11'],
      });
  }
  if (checks.length === 0) return { violations, unchecked, checked };
  const painless = (await o.source.capabilities()).painless;
  for (const c of checks) {
    if ('script' in c.values && !painless) {
      unchecked.push(
        `${c.path} (${c.to}): the source keeps the text the target parses only in _source, which needs painless on the source cluster to read`,
      );
      continue;
    }
    if (await o.target.indexExists(o.scratch)) await o.target.deleteIndex(o.scratch);
    await o.target.createIndex(o.scratch, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: { dynamic: false, ...nestMapping(c.path, c.targetDef) },
    });
    const bad: string[] = [];
    let complete: boolean;
    try {
      complete = await eachValuePage(o.source, o.sourceIndex, c, async (values) => {
        bad.push(...(await refusedByTarget(o.target, o.scratch, c.path, values)));
      });
    } finally {
      await o.target.deleteIndex(o.scratch).catch(() => undefined);
    }
    if (!complete) {
      unchecked.push(`${c.path} (${c.to}): more than ${MAX_VALUES} distinct values`);
      continue;
    }
    checked.push(c.path);
    if (bad.length === 0) continue;
    // A terms query takes at most 65,536 terms by default; more bad values than that is answer enough.
    const r = await firstIds(o.source, o.sourceIndex, {
      terms: { ['field' in c.values ? c.values.field : c.path]: bad.slice(0, 65_536) },
    });
    violations.push({ path: c.path, change: c.to, ...r, examples: bad.slice(0, 5) });
  }
  return { violations, unchecked, checked };
}
