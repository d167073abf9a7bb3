/**
 * The switch of a live migration (`capture.strategy: seqno`): catch up until the lag is small, then try a
 * switch under a short write freeze; a freeze that cannot finish inside its budget is lifted and tried again.
 * The postpone flag file holds the switch back while catch-up keeps the target current.
 */
import { existsSync } from 'node:fs';
import type { FreezeRecord, LiveCapture } from '../capture/live.js';
import type { CaptureContext } from '../capture/strategy.js';
import type { Cluster } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import { every } from '../ops/every.js';
import { GateError } from '../store/errors.js';
import { aliasPlacement, migrationEnds } from './aliases.js';
import { freezeAndSwitch } from './freeze.js';
import { guardFor } from './freeze-guard.js';

/**
 * The forward switch: catch up, then move the aliases under a freeze of the source. `sourceCountQuery` counts
 * the source documents the target should hold (timestamp capture leaves soft-deleted ones out).
 */
export async function convergeAndSwitch(
  c: CaptureContext,
  live: LiveCapture,
  sourceCountQuery?: unknown,
): Promise<'moved' | 'already'> {
  const records = c.state.aliases?.records ?? [];
  const sourceIndex = c.state.sourceIndex!;
  const targetIndex = c.spec.target.index;
  const ends = migrationEnds(c);
  const where = await aliasPlacement(records, ends.source, ends.target);
  // A crash after the alias request: the application writes to the target now, and a source change copied
  // after the swap could beat a newer application write. Nothing more is read from the source.
  if (where.placement === 'to') return 'already';
  // 'half' (across clusters, stopped between the add and the remove) is finished before the stale freeze is
  // lifted (Migration.liftStaleFreeze), so it is not met here; anything but 'from' is someone else's change.
  if (where.placement !== 'from')
    throw new GateError(
      `aliases are not where cutover left them (${where.detail}); someone changed them: fix by hand, then rerun`,
    );
  const t = c.state.totals;
  await switchWhenConverged(c, {
    capture: live,
    from: { cluster: c.source, index: sourceIndex, side: 'source' },
    to: { cluster: c.target, index: targetIndex },
    exactCounts: live.exactCounts(t?.deadLetters ?? 0),
    sourceCountQuery,
    postponeFlag: c.spec.postponeFlagPath,
    beforeSwitch: async () => {
      // Everything on the target now mirrors the source: the reverse sync of the revert window starts here.
      if (c.spec.cutover.revertWindowMinutes > 0) {
        c.state.revertCursors = (await c.target.shardSeqNos(targetIndex)).map((m) => m.maxSeqNo);
        await c.store.save(c.state);
      }
    },
  });
  return 'moved';
}

export interface SwitchPlan {
  capture: LiveCapture;
  /** the index writes are frozen on, and the aliases leave */
  from: { cluster: Cluster; index: string; side: 'source' | 'target' };
  to: { cluster: Cluster; index: string };
  exactCounts: boolean;
  sourceCountQuery?: unknown;
  postponeFlag?: string;
  beforeSwitch?: () => Promise<void>;
}

/**
 * How long the id scan of a freeze that found deletes pending would have needed to check every target id, at the
 * rate it went; undefined when no scan ran or it finished. A scan cut before its first page counts as needing
 * more than it had.
 */
export function scanNeededMs(f: FreezeRecord): number | undefined {
  const s = f.scan;
  if (!s || (f.pendingDeletes ?? 0) === 0 || s.checked >= s.targetDocs) return undefined;
  if (s.checked === 0) return s.ms >= 0.9 * s.availableMs ? Number.POSITIVE_INFINITY : undefined;
  return (s.targetDocs / s.checked) * s.ms;
}

const needText = (ms: number) =>
  Number.isFinite(ms) ? `about ${(ms / 1000).toFixed(1)} s` : 'more than one page of ids in the whole window';

const DELETES_ADVICE =
  'Raise cutover.freezeBudgetMs above the scan time, switch when deletes pause, or use capture.strategy timestamp with a soft-delete field (deletes then need no scan).';

/**
 * Catch up until the lag is under capture.maxLagSeconds, then try the switch under a freeze of at most
 * cutover.freezeBudgetMs; retried after more catch-up, at most cutover.maxFreezeAttempts tries.
 */
export async function switchWhenConverged(c: CaptureContext, p: SwitchPlan): Promise<FreezeRecord> {
  const records = c.state.aliases?.records ?? [];
  const budget = c.spec.cutover.freezeBudgetMs;
  const maxLagMs = c.spec.capture.maxLagSeconds * 1000;
  let tries = 0;
  const note = every();
  let lastReconcileMs = 0;
  const freezesBefore = p.capture.snapshot.freezes.length;
  let skipped = 0;
  for (;;) {
    c.signal?.throwIfAborted();
    const round = await p.capture.round();
    if (p.postponeFlag && existsSync(p.postponeFlag)) {
      note(() =>
        c.reporter.info(
          `cutover postponed while ${p.postponeFlag} exists; catching up (last round: ${round.read} change(s) in ${round.durationMs} ms)`,
        ),
      );
      await sleep(c.spec.capture.tailIntervalMs, c.signal);
      continue;
    }
    if (round.lagMs > maxLagMs) {
      // Behind: the next round starts at once if this one took the whole interval.
      await sleep(Math.max(0, c.spec.capture.tailIntervalMs - round.durationMs), c.signal);
      continue;
    }
    // A freeze that finds deletes pending needs an id scan under it. Once one showed that the scan cannot fit
    // (at the rate it went, it would need well over the time the deadline left it), another freeze is futile
    // while deletes keep coming: it would only refuse writes. So wait for a pause in deletes instead (the
    // source's delete counter has not moved since the last complete scan started), scanning again meanwhile.
    // A scan that nearly fitted is simply tried again; so is everything after an earlier run's freezes
    // (perhaps under a smaller budget). A skipped try counts towards cutover.maxFreezeAttempts; the freeze's
    // count check stays the proof either way.
    const scan = p.capture.snapshot.lastScan;
    const last = p.capture.snapshot.freezes.slice(freezesBefore).at(-1);
    const need = last && !last.switched ? scanNeededMs(last) : undefined;
    if (scan && need !== undefined && need > 1.5 * last!.scan!.availableMs) {
      const deletes = await p.from.cluster.deleteTotal(p.from.index).catch(() => undefined);
      if (deletes !== undefined && deletes > scan.deletesAtStart) {
        tries++;
        skipped++;
        const since = deletes - scan.deletesAtStart;
        c.audit.record({
          event: 'freeze-skipped',
          index: p.from.index,
          deletesSinceScan: since,
          scanMs: scan.workMs,
        });
        c.reporter.warn(
          `not freezing writes yet: ${since} delete(s) on ${p.from.index} since the last id scan started, and the scan that finds them needs ${needText(need)} under a freeze, which leaves it ${(last!.scan!.availableMs / 1000).toFixed(1)} s; scanning again until deletes pause (${tries}/${c.spec.cutover.maxFreezeAttempts})`,
        );
        if (tries >= c.spec.cutover.maxFreezeAttempts)
          throw new GateError(
            `switch refused: deletes on ${p.from.index} never paused for the ${(scan.workMs / 1000).toFixed(1)} s an id scan takes (${needText(need)} under a freeze), so no write freeze of ${budget} ms could settle them (${tries} tries, of which ${p.capture.snapshot.freezes.length - freezesBefore} write freeze(s); the others refused no writes). The application still writes to ${p.from.index} and the catch-up position is kept. ${DELETES_ADVICE}`,
          );
        await p.capture.reconcile();
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(tries, 4)), c.signal);
        continue;
      }
    }
    tries++;
    const f = await freezeAndSwitch({
      source: p.from.cluster,
      target: p.to.cluster,
      sourceIndex: p.from.index,
      targetIndex: p.to.index,
      aliases: records,
      capture: p.capture,
      budgetMs: budget,
      attempt: p.capture.snapshot.freezes.length + 1,
      exactCounts: p.exactCounts,
      sourceCountQuery: p.sourceCountQuery,
      markFrozen: async (frozen) => {
        c.state.frozen = frozen
          ? {
              side: p.from.side,
              index: p.from.index,
              startedAt: new Date().toISOString(),
              attempt: p.capture.snapshot.freezes.length + 1,
            }
          : undefined;
        await c.store.save(c.state);
      },
      beforeSwitch: p.beforeSwitch,
      guard: guardFor(c.spec, p.from.side, c.audit.path),
      // The slowest of the last few lifts (this run's and earlier runs'): the deadline keeps room for it.
      liftReserveMs: Math.max(0, ...p.capture.snapshot.freezes.slice(-5).map((x) => x.liftMs ?? 0)),
    });
    p.capture.recordFreeze(f);
    c.audit.record({ event: 'freeze', index: p.from.index, ...f });
    if (f.switched) {
      c.reporter.info(
        `aliases moved to ${p.to.index} under a ${f.durationMs} ms write freeze (attempt ${f.attempt}; ${f.appliedInFreeze} change(s) and ${f.deletedInFreeze} delete(s) applied while frozen)`,
      );
      return f;
    }
    const futile = p.capture.snapshot.freezes.slice(freezesBefore).filter((x) => !x.switched).length;
    const maxFutile = c.spec.cutover.maxFutileFreezes;
    if (futile >= maxFutile) {
      // Every futile freeze refused the application's writes for nothing: the run stops costing it more.
      throw new GateError(
        `switch refused: ${futile} write freeze(s) in this run were lifted without switching (cutover.maxFutileFreezes = ${maxFutile}; last: ${f.reason}), each refusing the application's writes for up to ${budget} ms. The application still writes to ${p.from.index} and the catch-up position is kept. Run again at a quieter time, raise cutover.freezeBudgetMs, or capture.maxLagSeconds lower so the freeze has less to apply.${/delete/.test(f.reason ?? '') ? ` ${DELETES_ADVICE}` : ''}`,
      );
    }
    c.reporter.warn(
      `write freeze lifted after ${f.durationMs} ms without switching (${f.reason}); catching up and trying again (${futile}/${maxFutile} futile freezes allowed)`,
    );
    if (tries >= c.spec.cutover.maxFreezeAttempts) {
      const deletes = /delete/.test(f.reason ?? '')
        ? ` Deletes keep arriving and finding them takes an id scan of ${(lastReconcileMs / 1000).toFixed(1)} s here. ${DELETES_ADVICE}`
        : '';
      throw new GateError(
        `switch refused: ${tries - skipped} write freeze(s) could not finish inside cutover.freezeBudgetMs = ${budget} ms (last: ${f.reason})${skipped ? `, and ${skipped} tries were skipped while deletes kept coming` : ''}. The application still writes to ${p.from.index} and the catch-up position is kept: run again, raise cutover.freezeBudgetMs, or switch at a quieter time.${deletes}`,
      );
    }
    // Whatever the freeze found pending, settle it outside the freeze before the next try.
    lastReconcileMs = (await p.capture.reconcile()).durationMs;
    await sleep(Math.min(5_000, 250 * 2 ** Math.min(tries, 4)), c.signal);
  }
}
