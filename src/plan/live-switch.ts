/**
 * The switch of a live migration (`capture.strategy: seqno`): catch up until the lag is small, then try a
 * switch under a short write freeze; a freeze that cannot finish inside its budget is lifted and tried again.
 * The postpone flag file holds the switch back while catch-up keeps the target current.
 */
import { existsSync } from 'node:fs';
import { type FreezeRecord, LiveCapture, percentile } from '../capture/live.js';
import type { Cluster } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import { aliasPlacement } from '../cutover/aliases.js';
import { freezeAndSwitch } from '../cutover/freeze.js';
import { guardFor } from '../cutover/freeze-guard.js';
import type { LoadedSpec } from '../spec/load.js';
import { GateError, PreflightError } from './errors.js';
import type { Ctx } from './migrator.js';

export function isLive(spec: Pick<LoadedSpec, 'capture'>): boolean {
  return spec.capture.strategy === 'seqno' || spec.capture.strategy === 'timestamp';
}

export function softDeleteField(spec: Pick<LoadedSpec, 'capture'>): string | undefined {
  return spec.capture.strategy === 'timestamp' ? spec.capture.timestamp?.softDeleteField : undefined;
}

/** The copy's page, bulk and pacing settings, shared by the forward capture and the reverse sync. */
export function captureTuning(c: Ctx) {
  return {
    batchDocs: c.spec.copy.batchDocs,
    batchBytes: c.spec.copy.batchBytes,
    concurrency: c.spec.copy.concurrency,
    keepAlive: c.spec.copy.keepAlive,
    gzip: c.spec.copy.gzip,
    intervalMs: c.spec.capture.tailIntervalMs,
    reporter: c.reporter,
    signal: c.signal,
  };
}

export function liveCapture(c: Ctx): LiveCapture {
  c.live ??= new LiveCapture({
    source: c.source,
    target: c.target,
    sourceIndex: c.state.sourceIndex!,
    targetIndex: c.spec.target.index,
    store: c.store,
    transform: c.transform,
    versioning: c.spec.copy.versioning,
    ...captureTuning(c),
    timestamp:
      c.spec.capture.strategy === 'timestamp' && c.spec.capture.timestamp
        ? { field: c.spec.capture.timestamp.field, marginSeconds: c.spec.capture.timestamp.marginSeconds }
        : undefined,
    softDeleteField: softDeleteField(c.spec),
    // Half the switch threshold: the rounds keep headroom under it while the copy and the id scans wait.
    yieldAboveLagMs: c.spec.capture.copyYields ? (c.spec.capture.maxLagSeconds * 1000) / 2 : undefined,
  });
  return c.live;
}

export function captureSummary(live: LiveCapture): Record<string, unknown> {
  const s = live.snapshot;
  return {
    rounds: s.rounds,
    applied: s.applied,
    deleted: s.deleted,
    droppedByTransform: s.droppedByTransform,
    conflicts: s.conflicts,
    deadLetters: s.deadLetters,
    reconciles: s.reconciles,
    lagP50Ms: percentile(s.lags, 50),
    lagP99Ms: percentile(s.lags, 99),
    freezes: s.freezes.length,
  };
}

export async function convergeAndSwitch(c: Ctx): Promise<'moved' | 'already'> {
  const records = c.state.aliases?.records ?? [];
  const sourceIndex = c.state.sourceIndex!;
  const targetIndex = c.spec.target.index;
  const where = await aliasPlacement(c.source, records, sourceIndex, targetIndex);
  // A crash after the alias request: the application writes to the target now, and a source change copied
  // after the swap could beat a newer application write. Nothing more is read from the source.
  if (where.placement === 'to') return 'already';
  if (where.placement === 'mixed')
    throw new PreflightError(
      `aliases are not where cutover left them (${where.detail}); someone changed them: fix by hand, then rerun`,
    );
  const live = liveCapture(c);
  const t = c.state.totals;
  await switchWhenConverged(c, {
    capture: live,
    from: { cluster: c.source, index: sourceIndex, side: 'source' },
    to: { cluster: c.target, index: targetIndex },
    exactCounts: live.exactCounts(t?.deadLetters ?? 0),
    sourceCountQuery: softDeleteField(c.spec)
      ? { bool: { must_not: { term: { [softDeleteField(c.spec)!]: true } } } }
      : undefined,
    postponeFlag: c.spec.postponeFlagPath,
    beforeSwitch: async () => {
      // Everything on the target now mirrors the source: the reverse sync of the revert window starts here.
      if (c.spec.cutover.revertWindowMinutes > 0) {
        c.state.revertCursors = (await c.target.shardSeqNos(targetIndex)).map((m) => m.maxSeqNo);
        c.store.save(c.state);
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
export async function switchWhenConverged(c: Ctx, p: SwitchPlan): Promise<FreezeRecord> {
  const records = c.state.aliases?.records ?? [];
  const budget = c.spec.cutover.freezeBudgetMs;
  const maxLagMs = c.spec.capture.maxLagSeconds * 1000;
  let tries = 0;
  let lastNote = 0;
  let lastReconcileMs = 0;
  const freezesBefore = p.capture.snapshot.freezes.length;
  let skipped = 0;
  for (;;) {
    c.signal?.throwIfAborted();
    const round = await p.capture.round();
    if (p.postponeFlag && existsSync(p.postponeFlag)) {
      if (Date.now() - lastNote > 10_000) {
        c.reporter.info(
          `cutover postponed while ${p.postponeFlag} exists; catching up (last round: ${round.read} change(s) in ${round.durationMs} ms)`,
        );
        lastNote = Date.now();
      }
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
      aliasCluster: c.source,
      capture: p.capture,
      budgetMs: budget,
      attempt: p.capture.snapshot.freezes.length + 1,
      exactCounts: p.exactCounts,
      sourceCountQuery: p.sourceCountQuery,
      markFrozen: (frozen) => {
        c.state.frozen = frozen
          ? {
              side: p.from.side,
              index: p.from.index,
              startedAt: new Date().toISOString(),
              attempt: p.capture.snapshot.freezes.length + 1,
            }
          : undefined;
        c.store.save(c.state);
      },
      beforeSwitch: p.beforeSwitch,
      guard: guardFor(c.spec, p.from.side, c.audit.path),
    });
    p.capture.recordFreeze(f);
    c.audit.record({ event: 'freeze', index: p.from.index, ...f });
    if (f.switched) {
      c.reporter.info(
        `aliases moved to ${p.to.index} under a ${f.durationMs} ms write freeze (attempt ${f.attempt}; ${f.appliedInFreeze} change(s) and ${f.deletedInFreeze} delete(s) applied while frozen)`,
      );
      return f;
    }
    c.reporter.warn(
      `write freeze lifted after ${f.durationMs} ms without switching (${f.reason}); catching up and trying again`,
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
