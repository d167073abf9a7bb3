/** Seeding test indices and reading them back whole, for document-by-document comparisons. */
import { Cluster } from '../../src/cluster/client.js';
import type { TestCluster } from './clusters.js';

export function clusterOf(t: TestCluster): Cluster {
  return new Cluster({
    url: t.url,
    auth: t.username && t.password ? { username: t.username, password: t.password } : undefined,
    tls: t.caFile ? { caFile: t.caFile } : undefined,
  });
}

export type Docs = Map<string, { source: Record<string, unknown>; routing?: string }>;

export async function seed(
  c: Cluster,
  index: string,
  count: number,
  make: (i: number) => { id: string; doc: Record<string, unknown>; routing?: string },
  body: { settings?: unknown; mappings?: unknown; aliases?: unknown } = {
    settings: { number_of_shards: 3, number_of_replicas: 0 },
  },
): Promise<Docs> {
  await c.createIndex(index, body);
  const docs: Docs = new Map();
  for (let start = 0; start < count; start += 1000) {
    let nd = '';
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const { id, doc, routing } = make(i);
      docs.set(id, { source: doc, routing });
      nd += `${JSON.stringify({ index: { _index: index, _id: id, routing } })}\n${JSON.stringify(doc)}\n`;
    }
    const r = await c.bulk(nd);
    if (r.errors)
      throw new Error(`seed ${index}: ${JSON.stringify(r.items.find((i) => Object.values(i)[0]?.error))}`);
  }
  await c.refresh(index);
  return docs;
}

/** Every document of an index (small test indices only), via PIT-less sorted pages on _seq_no per shard. */
export async function readAll(c: Cluster, index: string): Promise<Docs> {
  await c.refresh(index);
  const out: Docs = new Map();
  let res = await c.search(index, { size: 1000, sort: ['_doc'] }, { scroll: '1m' });
  while (res.hits.hits.length > 0) {
    if (res._shards.failed > 0) throw new Error('readAll: shard failures');
    for (const h of res.hits.hits) {
      if (out.has(h._id)) throw new Error(`readAll: duplicate id ${h._id} in ${index}`);
      out.set(h._id, { source: h._source ?? {}, routing: h._routing });
    }
    res = await c.scroll(res._scroll_id!, '1m');
  }
  if (res._scroll_id) await c.clearScroll(res._scroll_id);
  return out;
}

/** Canonical JSON: key order does not matter, everything else does. */
export function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export interface Diff {
  missing: string[];
  extra: string[];
  changed: string[];
}

/** Compare an expected id -> source map with what an index holds, id by id and source by source. */
export function diffDocs(expected: Docs, actual: Docs, compareRouting = true): Diff {
  const d: Diff = { missing: [], extra: [], changed: [] };
  for (const [id, e] of expected) {
    const a = actual.get(id);
    if (!a) d.missing.push(id);
    else if (
      canon(a.source) !== canon(e.source) ||
      (compareRouting && (a.routing ?? null) !== (e.routing ?? null))
    )
      d.changed.push(id);
  }
  for (const id of actual.keys()) if (!expected.has(id)) d.extra.push(id);
  return d;
}

export function summarize(d: Diff): string {
  return `missing ${d.missing.length} ${d.missing.slice(0, 5).join(',')} | extra ${d.extra.length} ${d.extra.slice(0, 5).join(',')} | changed ${d.changed.length} ${d.changed.slice(0, 5).join(',')}`;
}
