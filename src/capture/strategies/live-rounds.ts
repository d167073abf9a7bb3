/**
 * What the modes with catch-up rounds share (`seqno`, `timestamp`): one LiveCapture per command, started before
 * the copy opens its point in time and running beside it; deletes found by an id reconcile; the switch under a
 * budgeted write freeze of the source; the revert window after it. The modes differ only in how a round finds
 * changes (by `_seq_no`, or by a timestamp field) and in their preflight.
 */

import { aliasPlacement, migrationEnds, moveAliases } from '../../cutover/aliases.js';
import { convergeAndSwitch } from '../../cutover/live-switch.js';
import { drainedRollback, keepOldIndexInSync, revertWindowOpen } from '../../cutover/revert-window.js';
import { COPY_SETTINGS } from '../../cutover/target.js';
import { every } from '../../ops/every.js';
import type { LoadedSpec } from '../../spec/load.js';
import { PreflightError } from '../../store/errors.js';
import type { Finding } from '../../verify/preflight.js';
import { type LiveCapture, percentile } from '../live.js';
import type { CaptureContext, CaptureStrategy, SourceFacts } from '../strategy.js';
import { forwardCapture } from './forward-capture.js';

export interface LiveMode {
  mode: 'seqno' | 'timestamp';
  summary: string;
  timestamp?: { field: string; marginSeconds: number };
  softDeleteField?: string;
  /** this mode's own requirements, after the shared ones */
  preflight(f: SourceFacts): Promise<Finding[]>;
}

export function liveRounds(spec: LoadedSpec, m: LiveMode): CaptureStrategy {
  // One capture per command: its position, registry of dropped ids and yield gate are shared by every step.
  let live: LiveCapture | undefined;
  const capture = (c: CaptureContext): LiveCapture => {
    live ??= forwardCapture(c, { timestamp: m.timestamp, softDeleteField: m.softDeleteField });
    return live;
  };
  const maxLag = spec.capture.maxLagSeconds;
  return {
    mode: m.mode,
    summary: m.summary,
    createOnly: false,
    countGate: 'under-freeze',
    proofSkipsTargetPass: false,
    keepsTombstonesUntilSwitch: true,
    canPostpone: true,
    softDeleteField: m.softDeleteField,
    copySettings: () => COPY_SETTINGS,
    switchNotes: (s) => [
      `under a write freeze of ${s.source.index} (index.blocks.write) of at most cutover.freezeBudgetMs = ${s.cutover.freezeBudgetMs} ms: the application's writes are refused (403) meanwhile; the last changes are applied and the counts compared first`,
    ],
    copyNotes: () =>
      spec.capture.copyYields
        ? [
            `live changes first: the copy waits while catch-up is more than ${maxLag / 2} s behind (capture.copyYields), so it slows down while the application writes a lot`,
          ]
        : [],

    async preflight(f) {
      if (!spec.aliases?.write)
        throw new PreflightError(
          `capture.strategy ${m.mode}: aliases.write is required (the application's writes must move to the target in the same atomic request that ends the freeze)`,
        );
      if (String(f.settings['index.blocks.write']) === 'true')
        throw new PreflightError(
          `capture.strategy ${m.mode}: ${f.sourceIndex} is already write-blocked (index.blocks.write); nothing can change it, so use capture.strategy none`,
        );
      return m.preflight(f);
    },

    beforeCopy: [
      {
        name: 'start-capture',
        title: 'Live capture: record where catch-up starts, before the copy opens its point in time',
        changes: () => [
          "nothing: records each source shard's checkpoint; every change above it is applied by the catch-up rounds, in parallel with the copy and after it",
        ],
        async run(c) {
          await capture(c).start();
          c.audit.record({ event: 'capture-started', cursors: capture(c).snapshot.cursors });
          return 'continue';
        },
      },
    ],

    async alongsideCopy(c, copy) {
      const lc = capture(c);
      const r = await lc.alongside(() =>
        copy({
          // Counts under the freeze need to know which documents were left off on purpose.
          onDropped: (ids) => lc.noteDropped(ids),
          // Live changes first: the backfill waits while the catch-up rounds are behind.
          yieldTo: (signal) => lc.yieldWhileBehind(signal),
        }),
      );
      const held = lc.snapshot;
      if (held.heldBackMs)
        c.reporter.info(
          `the copy waited ${(held.heldBackMs / 1000).toFixed(1)} s in ${held.heldBack} pause(s) while catch-up was more than ${maxLag / 2} s behind (capture.copyYields)`,
        );
      return r;
    },

    afterCopy: [
      {
        name: 'catch-up',
        title: 'Live capture: apply deletes found by id reconcile, catch up until the lag is small',
        changes: (s) => [
          `versioned deletes on ${s.target.index} for ids the source no longer has (tombstone version = max_seq_no + 1 of the id's source shard)`,
          `catch-up rounds until the lag (time from a round's checkpoint read to the end of the next round) is under ${s.capture.maxLagSeconds} s`,
        ],
        async run(c) {
          const lc = capture(c);
          // The id scan takes a while on a large index: rounds keep going beside it so the lag does not pile up
          // (versions make the two safe to race: a tombstone is never above a later re-creation).
          const r = await lc.alongside(() => lc.reconcile(undefined, undefined, { giveWay: true }));
          c.reporter.info(
            `reconcile: ${r.checked} target ids checked, ${r.missingOnSource} deleted on the source since the copy read them`,
          );
          const note = every();
          for (;;) {
            c.signal?.throwIfAborted();
            const round = await lc.round();
            if (round.lagMs <= maxLag * 1000) {
              c.reporter.info(`caught up: last round applied ${round.read} change(s); lag ${round.lagMs} ms`);
              break;
            }
            note(() =>
              c.reporter.info(
                `catching up: last round applied ${round.read} change(s); lag ${round.lagMs} ms (target: under ${maxLag} s)`,
              ),
            );
          }
          c.audit.record({ event: 'caught-up', capture: summary(lc) });
          return 'continue';
        },
      },
    ],

    afterSwitch: [
      {
        name: 'revert-window',
        title: "Revert window: copy the new index's changes back to the old one until the window closes",
        changes: (s) =>
          s.cutover.revertWindowMinutes === 0
            ? [
                'skipped (cutover.revertWindowMinutes = 0): a rollback after the switch does not bring back writes made since',
              ]
            : [
                `for ${s.cutover.revertWindowMinutes} min after the switch: tails ${s.target.index} by _seq_no and writes its changes into the old index (versions offset by 2^52); \`cutover rollback\` inside the window drains it under a short freeze and loses no write`,
              ],
        async run(c) {
          if (!revertWindowOpen(c)) return 'continue';
          return (await keepOldIndexInSync(c)) === 'handover' ? 'pause' : 'continue';
        },
      },
    ],

    captureDeadLetters: (c) => capture(c).snapshot.deadLetters,
    proofCompanion: (c) => capture(c),
    switchAliases: (c) =>
      convergeAndSwitch(
        c,
        capture(c),
        m.softDeleteField ? { bool: { must_not: { term: { [m.softDeleteField]: true } } } } : undefined,
      ),
    revertWindowOpen: (c, now) => revertWindowOpen(c, now),

    async rollBack(c) {
      const records = c.state.aliases?.records ?? [];
      const ends = migrationEnds(c);
      const where = await aliasPlacement(records, ends.source, ends.target);
      if (where.placement === 'to' && revertWindowOpen(c)) {
        const f = await drainedRollback(c, capture(c));
        c.audit.record({ event: 'rollback-drained', freezeMs: f.durationMs });
        return 'moved';
      }
      if (where.placement === 'to' && c.state.cutoverAt)
        c.reporter.warn(
          `writes made on ${c.spec.target.index} since the switch at ${c.state.cutoverAt} are not on ${c.state.sourceIndex} (no revert window open): readers lose sight of them`,
        );
      return moveAliases(records, ends.target, ends.source);
    },
  };
}

function summary(live: LiveCapture): Record<string, unknown> {
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
