/**
 * Deletes never show up in a search, so they are found by comparing ids: stream the target's ids (PIT slices,
 * bounded memory), `_mget` them on the source, and delete on the target what the source no longer has.
 *
 * The delete is versioned, and its version is the subtle part. It must beat every state of the document the
 * target holds or may still receive (all carry `_seq_no + 1` from the source), and it must not beat a later
 * re-creation of the same id (which gets a new `_seq_no` on the id's own source shard). `max_seq_no + 1` of the
 * id's own source shard, read before the `_mget` that found the id missing, is both: every earlier state has a
 * lower number, every re-creation after the `_mget` a higher one. When a write races the round (a state newer
 * than that maximum is already on the target) the delete is refused as a version conflict and the next round
 * retries it with fresh maxima; under the write freeze nothing races and the round is exact.
 */

import type { Hit } from '../cluster/client.js';
import type { IndexPair } from '../cluster/index-pair.js';
import { type ShardRouter, shardOfViaServer } from '../cluster/routing.js';
import { PitSession, PitSliceReader } from '../copy/reader.js';
import { addResults, type BulkWriter, emptyResult, type WriteOp, type WriteResult } from '../copy/writer.js';
import { delaypoint } from '../ops/failpoints.js';
import type { PitRegistry } from '../store/pit-registry.js';

export interface ReconcileDeps extends IndexPair {
  writer: BulkWriter;
  /** the source's routing, checked against the server; undefined: ask the server per deleted id */
  router?: ShardRouter;
  batchDocs: number;
  keepAlive: string;
  concurrency: number;
  signal?: AbortSignal;
  /** stop (incomplete) once this time (ms since epoch) is reached: the freeze budget */
  deadline?: number;
  /** where the scan's PIT is recorded (the migration's PIT registry), and which of its clusters the target is */
  pits?: { pits: PitRegistry; side: string };
  versionOffset?: number;
  /**
   * Ids among these that must stay on the target although the source lacks them (the reverse sync keeps the
   * old index's documents that the migration's transform dropped on purpose).
   */
  keep?: (hits: Hit[]) => Promise<Set<string>>;
  /**
   * awaited before each page of target ids: the scan gives way to catch-up rounds running beside it (a pause
   * only makes the maxima older, and a tombstone that is then too low is refused and retried, never wrong)
   */
  yieldTo?: (signal?: AbortSignal) => Promise<void>;
  /** told the running total of ids checked after each page (the freeze measures how fast its scan goes) */
  onChecked?: (checked: number) => void;
}

export interface ReconcileResult {
  checked: number;
  /** ids on the target the source no longer has */
  missingOnSource: number;
  result: WriteResult;
  complete: boolean;
  durationMs: number;
}

export class DeadlineReached extends Error {
  override readonly name = 'DeadlineReached';
}

export async function reconcileDeletes(d: ReconcileDeps): Promise<ReconcileResult> {
  const started = Date.now();
  const out: ReconcileResult = {
    checked: 0,
    missingOnSource: 0,
    result: emptyResult(),
    complete: false,
    durationMs: 0,
  };
  // Read before any _mget of this round: see the module comment.
  const maxima = (await d.source.shardSeqNos(d.sourceIndex)).map((m) => m.maxSeqNo);
  await d.target.refresh(d.targetIndex);
  const shards = await d.target.primaryShards(d.targetIndex);
  const pit = new PitSession(d.target, d.targetIndex, d.keepAlive, d.pits);
  const check = () => {
    if (d.deadline !== undefined && Date.now() > d.deadline) throw new DeadlineReached('deadline reached');
  };
  const onPage = async (hits: Hit[]) => {
    await delaypoint('reconcile.page', d.signal);
    check();
    const got = await d.source.mget(
      d.sourceIndex,
      hits.map((h) => ({ _id: h._id, routing: h._routing })),
      { source: false, signal: d.signal },
    );
    let gone = hits.filter((_, i) => !got.docs[i]?.found);
    out.checked += hits.length;
    d.onChecked?.(out.checked);
    if (gone.length && d.keep) {
      const keep = await d.keep(gone);
      gone = gone.filter((h) => !keep.has(h._id));
    }
    if (gone.length === 0) return;
    out.missingOnSource += gone.length;
    const ops: WriteOp[] = [];
    for (const h of gone) {
      const shard = d.router
        ? d.router.shardOf(h._id, h._routing)
        : await shardOfViaServer(d.source, d.sourceIndex, h._routing ?? h._id);
      ops.push({
        kind: 'delete',
        id: h._id,
        routing: h._routing,
        version: maxima[shard]! + 1 + (d.versionOffset ?? 0),
      });
    }
    check();
    out.result = addResults(out.result, await d.writer.write(ops, d.signal));
  };
  try {
    const queue = Array.from({ length: shards }, (_, i) => i);
    const worker = async () => {
      for (let slice = queue.shift(); slice !== undefined; slice = queue.shift()) {
        const reader = new PitSliceReader(d.target, pit, slice, shards, {
          // Ids only: pages can be much larger than the copy's, which cuts round trips under the freeze.
          batchDocs: Math.max(d.batchDocs, 2000),
          keepAlive: d.keepAlive,
          withVersion: false,
          withSource: false,
          signal: d.signal,
        });
        let after: number | null = null;
        for (;;) {
          check();
          if (d.yieldTo) await d.yieldTo(d.signal);
          const hits = await reader.next(after);
          if (hits.length === 0) break;
          after = hits[hits.length - 1]!._seq_no!;
          await onPage(hits);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(d.concurrency, shards)) }, worker));
    out.complete = true;
  } catch (e) {
    if (!(e instanceof DeadlineReached)) throw e;
  } finally {
    await pit.close();
  }
  out.durationMs = Date.now() - started;
  return out;
}
