/**
 * Whether the source still receives writes, from the cluster's own counters: the primaries' index_total and
 * delete_total of the old index, read twice a few seconds apart. After a manual cutover across clusters this is how
 * an operator sees the application has moved: the old index's counters stand still. Writers that still use the
 * write alias on the source cluster may instead have auto-created an index under its name: that is read too.
 */
import type { Cluster } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';

export interface SourceWrites {
  index: string;
  seconds: number;
  /** index + delete operations on the primaries between the two reads */
  operations: number;
  perSecond: number;
  /** indices on the source cluster named like an alias of the migration (auto-created by a writer), with counts */
  strays: Array<{ index: string; docs: number }>;
}

async function operationsOf(cluster: Cluster, index: string): Promise<number> {
  const r = await cluster.request<{
    _all: { primaries: { indexing?: { index_total?: number; delete_total?: number } } };
  }>({
    method: 'GET',
    path: `/${encodeURIComponent(index)}/_stats/indexing`,
    idempotent: true,
  });
  const i = r.body._all.primaries.indexing ?? {};
  return (i.index_total ?? 0) + (i.delete_total ?? 0);
}

export async function sourceWrites(
  cluster: Cluster,
  index: string,
  aliases: string[],
  seconds: number,
  signal?: AbortSignal,
): Promise<SourceWrites> {
  const before = await operationsOf(cluster, index);
  const t0 = Date.now();
  await sleep(seconds * 1000, signal);
  const after = await operationsOf(cluster, index);
  const took = (Date.now() - t0) / 1000;
  const strays: SourceWrites['strays'] = [];
  for (const alias of aliases) {
    // An alias still present resolves too; only a concrete index under the alias's name is a stray.
    if (Object.keys(await cluster.getAlias(alias)).length > 0) continue;
    if (!(await cluster.indexExists(alias))) continue;
    await cluster.refresh(alias).catch(() => undefined);
    strays.push({ index: alias, docs: await cluster.count(alias) });
  }
  const operations = after - before;
  return { index, seconds: took, operations, perSecond: operations / took, strays };
}

export function describeSourceWrites(w: SourceWrites, sourceUrl: string): string {
  const rate = `${w.operations} write(s) on ${w.index} in ${w.seconds.toFixed(1)} s (${w.perSecond.toFixed(1)}/s, from _stats/indexing index_total + delete_total)`;
  const verdict =
    w.operations === 0
      ? `${rate}: the source receives no writes`
      : `${rate}: something still writes to the old index on ${sourceUrl} (by its concrete name, or the application has not moved yet)`;
  const strays = w.strays.map(
    (s) =>
      `index "${s.index}" exists on ${sourceUrl} with ${s.docs} document(s): a writer still on the source cluster created it by writing to the alias name after the switch; those writes are not on the target`,
  );
  return [verdict, ...strays].join('\n');
}
