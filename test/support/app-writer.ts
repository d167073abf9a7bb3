/**
 * A sequential application writer for engine tests: index, partial update and delete over the scenario's ids and
 * new ones, through the write alias. Being sequential, its log of acknowledged writes is the exact expected
 * state (the eight-writer chaos harness is test/support/writers.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../../src/cluster/client.js';
import { ClusterError } from '../../src/cluster/errors.js';
import { canon } from './data.js';
import { makeDoc, type Scenario } from './scenario.js';

export interface Log {
  /** id -> state after the last acknowledged write (null: deleted) and the index that took it */
  state: Map<string, { doc: Record<string, unknown> | null; index: string }>;
  acked: number;
  refusedByFreeze: number;
  otherFailures: string[];
  kinds: Record<string, number>;
}

/** The application: a sequential writer over existing and new ids, through the write alias. */
export function application(
  s: Scenario,
  stop: () => boolean,
  opts: { deletes?: () => boolean } = {},
): { log: Log; done: Promise<void> } {
  const log: Log = { state: new Map(), acked: 0, refusedByFreeze: 0, otherFailures: [], kinds: {} };
  for (const [id, d] of s.seeded) log.state.set(id, { doc: d.source, index: s.source });
  const c: Cluster = s.c;
  let n = 0;
  const pick = () =>
    Math.random() < 0.7 ? `d${Math.floor(Math.random() * s.seeded.size)}` : `new-${n % 300}`;
  const done = (async () => {
    while (!stop()) {
      n++;
      const id = pick();
      const routing = s.seeded.get(id)?.routing;
      const q = routing ? { routing } : undefined;
      // Without deletes, their share becomes partial updates.
      const roll = opts.deletes && !opts.deletes() ? Math.random() * 0.7 : Math.random();
      try {
        if (roll < 0.35) {
          const doc = { ...makeDoc(n).doc, title: `written ${n}` };
          delete (doc as { drop?: boolean }).drop;
          const r = await c.request<{ _index: string }>({
            method: 'PUT',
            path: `/${s.writeAlias}/_doc/${id}`,
            query: q,
            body: doc,
          });
          log.state.set(id, { doc, index: r.body._index });
          log.kinds.index = (log.kinds.index ?? 0) + 1;
        } else if (roll < 0.7) {
          const r = await c.request<{ _index: string; get?: { _source: Record<string, unknown> } }>({
            method: 'POST',
            path: `/${s.writeAlias}/_update/${id}`,
            query: q,
            body: { doc: { title: `updated ${n}`, n }, _source: true },
            okStatuses: [404],
          });
          if (r.status === 404) continue;
          log.state.set(id, { doc: r.body.get!._source, index: r.body._index });
          log.kinds.update = (log.kinds.update ?? 0) + 1;
        } else {
          const r = await c.request<{ _index: string }>({
            method: 'DELETE',
            path: `/${s.writeAlias}/_doc/${id}`,
            query: q,
            okStatuses: [404],
          });
          if (r.status === 404) continue;
          log.state.set(id, { doc: null, index: r.body._index });
          log.kinds.delete = (log.kinds.delete ?? 0) + 1;
        }
        log.acked++;
      } catch (e) {
        if (e instanceof ClusterError && e.type === 'cluster_block_exception') log.refusedByFreeze++;
        else log.otherFailures.push(`${id}: ${(e as Error).message}`);
      }
      await sleep(3);
    }
  })();
  return { log, done };
}

/**
 * An index compared id by id with the writers' log, documents as the writers wrote them (the old index after a
 * rollback: what the application wrote on either side must be there, untransformed). First five of each kind, or
 * every one with `all`.
 */
export function differencesAsWritten(
  log: Log,
  actual: Map<string, { source: Record<string, unknown> }>,
  opts: { all?: boolean } = {},
) {
  const lost: string[] = [];
  const stale: string[] = [];
  const resurrected: string[] = [];
  for (const [id, { doc }] of log.state) {
    const have = actual.get(id);
    if (doc === null) {
      if (have) resurrected.push(id);
    } else if (!have) lost.push(id);
    else if (canon(have.source) !== canon(doc)) stale.push(id);
  }
  const extra = [...actual.keys()].filter((id) => !log.state.has(id));
  if (opts.all) return { lost, stale, resurrected, extra };
  return {
    lost: lost.slice(0, 5),
    stale: stale.slice(0, 5),
    resurrected: resurrected.slice(0, 5),
    extra: extra.slice(0, 5),
  };
}

/** The log shows both writes and deletes acknowledged on `index` (e.g. the new index between switch and rollback). */
export function wroteAndDeletedOn(log: Log, index: string): { writes: boolean; deletes: boolean } {
  const written = [...log.state.values()];
  return {
    writes: written.some((w) => w.index === index && w.doc !== null),
    deletes: written.some((w) => w.index === index && w.doc === null),
  };
}
