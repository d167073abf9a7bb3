/**
 * The switch under a write freeze. With the source write-blocked, nothing can change it: drain what was in
 * flight, apply the last changes, prove no delete is pending, move the aliases in one request, lift the block.
 * Every source change lands before the swap, never after it (after the swap the application writes to the target
 * with internal versions, and a late copy carrying `seq_no + 1` could beat a newer write).
 *
 * The budget is a promise to the application: a freeze that cannot finish inside it is lifted without switching,
 * and the caller tries again after more catch-up.
 */

import type { FreezeRecord, LiveCapture } from '../capture/live.js';
import type { Cluster } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import { delaypoint, failpoint } from '../ops/failpoints.js';
import type { AliasRecord } from '../store/state.js';
import { sendSwitch } from './aliases.js';
import { type GuardSpec, startFreezeGuard } from './freeze-guard.js';

export const WRITE_BLOCK = 'index.blocks.write';

export interface FreezeOptions {
  source: Cluster;
  target: Cluster;
  sourceIndex: string;
  targetIndex: string;
  aliases: AliasRecord[];
  capture: LiveCapture;
  budgetMs: number;
  attempt: number;
  /** counts prove no delete is pending (no dead letters, complete registry of dropped ids) */
  exactCounts: boolean;
  /** persist "a block may be on the source" before setting it, so a crash never leaves writes blocked */
  markFrozen: (frozen: boolean) => Promise<void>;
  /** documents of the source expected on the target (timestamp capture: not soft-deleted) */
  sourceCountQuery?: unknown;
  /** called under the freeze right before the alias request: the last moment both sides are equal */
  beforeSwitch?: () => Promise<void>;
  /**
   * ms the lift took in recent freezes: the deadline keeps that much room for it (under load the lift is often
   * slower than setting the block was, and the budget counts until the lift is acknowledged)
   */
  liftReserveMs?: number;
  /** how a separate process reaches the source to lift the block should this one die or hang in the freeze */
  guard?: GuardSpec;
}

class Abort extends Error {}

export async function freezeAndSwitch(o: FreezeOptions): Promise<FreezeRecord> {
  // Running before the block is set, and told "done" only once this process lifted it.
  const guard = o.guard && (await startFreezeGuard(o.guard, o.sourceIndex, o.budgetMs));
  const started = Date.now();
  const rec: FreezeRecord = {
    attempt: o.attempt,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    switched: false,
    appliedInFreeze: 0,
    deletedInFreeze: 0,
  };
  // Where the time went, for the report and the benchmark: ms since the start at the end of each phase.
  rec.phases = {};
  const mark = (phase: string) => {
    rec.phases![phase] = Date.now() - started;
  };
  await o.markFrozen(true);
  let blockMs = 0;
  let pending = 0;
  const cut = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    // The add-index-block API, not the setting alone: it returns once the writes admitted before the block have
    // completed on every shard (the setting does not wait for them, and one still without its `_seq_no` could land
    // after the drain below saw every shard settled: a lost write, the likely cause of a stale document seen once
    // in the suite).
    const block = await o.source.addWriteBlock(o.sourceIndex);
    blockMs = Date.now() - started;
    mark('block');
    if (!block.confirmed)
      throw new Abort(`the write block on ${o.sourceIndex} was not confirmed by every shard`);
    failpoint('freeze.after-block');
    await delaypoint('freeze.stall');
    // Keep room for the alias request (about as slow as setting the block was) and for the lift (as slow as
    // recent lifts were, and no faster than the block: measured 115 ms vs 470 ms on a busy 2-core box).
    const deadline = started + o.budgetMs - blockMs - Math.max(blockMs, o.liftReserveMs ?? 0) - 150;
    const left = () => {
      if (Date.now() > deadline) throw new Abort(`freeze budget of ${o.budgetMs} ms reached`);
    };
    // Requests still running at the deadline are cut off rather than awaited: the budget is the promise. What
    // takes no signal is abandoned (`within`): its answer no longer matters once the freeze is being lifted.
    timer = setTimeout(
      () => cut.abort(new Abort(`freeze budget of ${o.budgetMs} ms reached`)),
      Math.max(0, deadline - Date.now()),
    );
    // Writes admitted before the block finish on their own; the block refuses anything new. Drained means every
    // copy has them (global checkpoint), since a search with preference=_shards:N may be served by a replica.
    let maxima: number[] = [];
    for (;;) {
      await within(delaypoint('freeze.drain'), cut.signal);
      const marks = await within(o.source.shardSeqNos(o.sourceIndex), cut.signal);
      if (marks.every((m) => m.localCheckpoint === m.maxSeqNo && m.globalCheckpoint === m.maxSeqNo)) {
        maxima = marks.map((m) => m.maxSeqNo);
        break;
      }
      left();
      await sleep(5);
    }
    mark('drain');
    left();
    const round = await o.capture.round(maxima, cut.signal);
    rec.appliedInFreeze = round.result.written;
    rec.deletedInFreeze = round.result.deleted;
    mark('final-round');
    left();
    await within(o.target.refresh(o.targetIndex), cut.signal);
    if (o.exactCounts) {
      const [all, target0, dropped] = await within(
        Promise.all([
          o.source.count(o.sourceIndex, o.sourceCountQuery),
          o.target.count(o.targetIndex),
          o.capture.droppedNow(cut.signal),
        ]),
        cut.signal,
      );
      // Source documents the target should hold: all of them but those the transform drops now.
      const source = all - dropped;
      let target = target0;
      mark('counts');
      if (target < source)
        throw new Abort(
          `target has ${source - target} document(s) fewer than the source after the final catch-up`,
        );
      if (target > source) {
        // Deletes still pending: settle them now if the budget allows (small indices), else later.
        pending = rec.pendingDeletes = target - source;
        left();
        // Measured even when cut off: whether a scan could ever fit decides what the next try does.
        const scanFrom = Date.now();
        let checked = 0;
        const measure = () => {
          rec.scan = {
            targetDocs: target0,
            checked,
            ms: Date.now() - scanFrom,
            availableMs: Math.max(0, deadline - scanFrom),
          };
        };
        const r = await o.capture
          .reconcile(deadline, cut.signal, {
            onChecked: (n) => {
              checked = n;
            },
          })
          .finally(measure);
        rec.deletedInFreeze += r.result.deleted;
        if (!r.complete)
          throw new Abort(`${target - source} delete(s) pending and no time left to find them`);
        await within(o.target.refresh(o.targetIndex), cut.signal);
        target = await within(o.target.count(o.targetIndex), cut.signal);
        if (target !== source)
          throw new Abort(
            `counts differ after the delete reconcile (source ${all} - ${dropped} dropped by the transform, target ${target})`,
          );
      }
    } else {
      // Documents were dropped or dead-lettered on purpose, so counts prove nothing: reconcile every id.
      const r = await o.capture.reconcile(deadline, cut.signal);
      rec.deletedInFreeze += r.result.deleted;
      if (!r.complete) throw new Abort('no time left to reconcile deletes id by id');
    }
    mark('deletes-checked');
    left();
    failpoint('freeze.before-switch');
    await within(o.beforeSwitch?.() ?? Promise.resolve(), cut.signal);
    // The alias request is never abandoned: once sent it may land, and it must land before the lift. Across
    // clusters it is two requests (add on the arriving cluster, then remove from the frozen index: sendSwitch),
    // both under the freeze, so no write reaches the frozen index by alias after its last change was applied.
    left();
    await sendSwitch(
      o.aliases,
      { cluster: o.source, index: o.sourceIndex },
      { cluster: o.target, index: o.targetIndex },
    );
    rec.switched = true;
    mark('aliases');
    failpoint('freeze.after-switch');
  } catch (e) {
    if (cut.signal.aborted && !rec.switched) rec.reason = (cut.signal.reason as Error).message;
    else if (e instanceof Abort) rec.reason = e.message;
    else throw e;
    if (pending > 0 && !/delete/.test(rec.reason ?? ''))
      rec.reason = `${pending} delete(s) pending; the id scan to find them did not fit (${rec.reason})`;
  } finally {
    clearTimeout(timer);
    // Lifted whatever happened above, errors included: a stuck block is an outage.
    const liftFrom = Date.now();
    await liftWriteBlock(o.source, o.sourceIndex).catch((e) => {
      guard?.handOver();
      throw e;
    });
    rec.liftMs = Date.now() - liftFrom;
    mark('lift');
    rec.durationMs = Date.now() - started;
    await guard?.done();
    await o.markFrozen(false);
  }
  return rec;
}

/** `p`, or the signal's reason as soon as it aborts; `p` is left to settle on its own (its errors ignored). */
function within<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export async function liftWriteBlock(source: Cluster, index: string): Promise<void> {
  await source.putSettings(index, { [WRITE_BLOCK]: null });
}
