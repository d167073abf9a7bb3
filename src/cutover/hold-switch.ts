/**
 * The switch of `capture.strategy: proxy`: the proxies hold the application's writes (queued, not refused) while
 * the runner drains the journal up to the hold, runs a last safety-net round, proves the counts and moves the
 * aliases in one request; then the queued writes are released and land, through the aliases, on the new index.
 * Every source change is applied before the swap, never after (the rule freeze.ts keeps with a write block).
 *
 * The hold has a budget the proxies enforce themselves. The runner sends the alias request only while enough of
 * the budget is left for it to land before the proxies' own deadline; a hold that cannot finish in time is
 * released without switching and tried again after more catch-up. Should a release by deadline still cross an
 * alias request, the journal shows every write that landed on the old index afterwards, and the run reports it.
 *
 * Writers that bypass the proxies are not held. Once the journal sync has seen one, the hold also fences the
 * source with the budgeted write freeze of `seqno` (freeze.ts, with its guard): the held writes are not affected
 * (they are queued, not forwarded), only the bypassing writer's are refused for that moment, and the freeze's
 * drained final round, count check and in-budget delete scan make the switch exact for its writes too.
 */
import { existsSync } from 'node:fs';
import type { HoldReport, JournalSync } from '../capture/journal-sync.js';
import type { LiveCapture } from '../capture/live.js';
import type { CaptureContext } from '../capture/strategy.js';
import { sleep } from '../cluster/retry.js';
import { every } from '../ops/every.js';
import type { ProxyFleet } from '../proxy/attach.js';
import type { ProxyInfo } from '../proxy/control.js';
import { GateError } from '../store/errors.js';
import { aliasPlacement, migrationEnds, moveAliases, sendSwitch } from './aliases.js';
import { freezeAndSwitch } from './freeze.js';
import { guardFor } from './freeze-guard.js';
import { FleetHold } from './proxy-hold.js';
import { SourceCountWatch } from './source-count.js';
import { type CountBase, countFromTally, takeCountBase } from './target-count.js';

class Abort extends Error {}

/**
 * Time the hold keeps for the alias request: twice the slowest of the last few alias requests of this migration
 * (300 ms before any was measured), at least 150 ms. The other steps of the hold are no guide: a slow count says
 * nothing about how long the cluster takes to publish an alias change.
 */
export function aliasReserveMs(holds: ReadonlyArray<{ aliasMs?: number }>): number {
  const seen = holds
    .slice(-5)
    .map((h) => h.aliasMs)
    .filter((x): x is number => typeof x === 'number');
  return seen.length === 0 ? 300 : Math.max(150, 2 * Math.max(...seen));
}

/** Reads of the journal just before a hold, at most, while each still found cutover.holdMaxDrain ids or more. */
const PRE_HOLD_READS = 3;
/** Times a switch puts its hold off because the last of those reads was still large; then it holds anyway. */
const MAX_DEFERRED_HOLDS = 5;

/** How long the switch waits for a write proxy to come back before it gives up (exit 3, nothing lost). */
const NO_PROXY_WAIT_MS = 120_000;

export interface HoldSwitchPlan {
  capture: LiveCapture;
  sync: JournalSync;
  fleet: ProxyFleet;
  exactCounts: boolean;
  beforeSwitch?: () => Promise<void>;
  /** a complete id reconcile, for when the journal cannot be trusted to name every change */
  reconcile: () => Promise<void>;
}

/** Catch up, then switch under a hold; retried after more catch-up, at most cutover.maxFreezeAttempts tries. */
export async function holdAndSwitch(c: CaptureContext, p: HoldSwitchPlan): Promise<'moved' | 'already'> {
  const records = c.state.aliases?.records ?? [];
  const sourceIndex = c.state.sourceIndex!;
  const targetIndex = c.spec.target.index;
  const ends = migrationEnds(c);
  let where = await aliasPlacement(records, ends.source, ends.target);
  if (where.placement === 'half') {
    // Across clusters a run ended between adding the aliases on the target cluster and removing them from the
    // source: the switch was decided under the hold (its alias request was sent), so it is finished.
    await moveAliases(records, ends.source, ends.target);
    c.audit.record({ event: 'aliases-switch-finished', from: sourceIndex, to: targetIndex });
    where = await aliasPlacement(records, ends.source, ends.target);
  }
  // A run that ended between its alias request and the record of that hold left the record unfinished.
  const unanswered =
    (where.placement === 'from' || where.placement === 'to') &&
    p.sync.settleUnansweredHold(where.placement === 'to');
  if (unanswered) c.audit.record({ event: 'hold', ...unanswered });
  if (where.placement === 'to') return 'already';
  if (where.placement !== 'from')
    throw new GateError(
      `aliases are not where cutover left them (${where.detail}); someone changed them: fix by hand, then rerun`,
    );
  const maxLagMs = c.spec.capture.maxLagSeconds * 1000;
  const note = every();
  let tries = 0;
  let deferred = 0;
  let last: HoldReport | undefined;
  let noProxySince: number | undefined;
  for (;;) {
    c.signal?.throwIfAborted();
    // Each round also syncs the journal (the capture's afterRound).
    const round = await p.capture.round();
    if (c.spec.postponeFlagPath && existsSync(c.spec.postponeFlagPath)) {
      note(() => c.reporter.info(`cutover postponed while ${c.spec.postponeFlagPath} exists; catching up`));
      await sleep(c.spec.capture.tailIntervalMs, c.signal);
      continue;
    }
    if (round.lagMs > maxLagMs) {
      await sleep(Math.max(0, c.spec.capture.tailIntervalMs - round.durationMs), c.signal);
      continue;
    }
    const demand = p.sync.reconcileNeeded;
    if (demand) {
      // The journal cannot name every change since this position: every id is compared before a switch.
      c.reporter.info(`reconciling every id before the switch: ${demand.why}`);
      const upTo = p.sync.snapshot.pos.seq;
      await p.reconcile();
      p.sync.reconciled(upTo);
      c.audit.record({ event: 'proxy-reconciled', why: demand.why, upTo });
      continue;
    }
    const proxies = await p.fleet.live();
    const ids = proxies.map((x) => x.id);
    if (p.sync.vanished(ids).length > 0) {
      // Read to the end first: a proxy that stopped cleanly has its stop entry there.
      await p.sync.sync(undefined, c.signal);
      const gone = p.sync.vanished(ids);
      if (gone.length > 0) {
        c.reporter.warn(
          `write prox${gone.length === 1 ? 'y' : 'ies'} ${gone.join(', ')} ended without closing the journal and did not come back: every id is reconciled before the switch`,
        );
        p.sync.proxiesVanished(gone);
        c.audit.record({ event: 'proxy-vanished', proxies: gone });
      }
      continue;
    }
    if (proxies.length === 0) {
      // A proxy restarting (deploy, crash) is gone for seconds: catch-up goes on while the run waits for it.
      noProxySince ??= Date.now();
      if (Date.now() - noProxySince > NO_PROXY_WAIT_MS)
        throw new GateError(
          `no write proxy has been running for ${c.spec.name} for ${NO_PROXY_WAIT_MS / 1000} s (journal: ${p.fleet.where}): start \`cutover proxy\` and point the application at it, then rerun; the catch-up position is kept`,
        );
      note(() =>
        c.reporter.warn(
          `no write proxy is running (journal: ${p.fleet.where}); catching up while waiting for one to start`,
        ),
      );
      await sleep(c.spec.capture.tailIntervalMs, c.signal);
      continue;
    }
    noProxySince = undefined;
    // A refresh writes every change since the index's last one, and the hold waits for one of each index: right
    // after the copy the target's covers the whole catch-up (the copy runs without refreshes and nobody searches
    // the target: 2.4 s measured at 2,000 writes/s, a spent hold), the source's every write since the last round.
    // Refreshed here, outside the hold, the ones under it cover only what came since. A node refreshes on one
    // thread per two cores, so the two do not overlap and the order matters: the target's after the journal was
    // read (it then covers what that read wrote), the source's last (under the hold it covers only the moments
    // between it and the grant). The target is counted here too: under the hold its count comes from this one and
    // the writer's answers, without a refresh (target-count.ts), unless cutover.searchableAtSwitch asks for one.
    await p.sync.sync(undefined, c.signal);
    let base: CountBase | undefined;
    let watch: SourceCountWatch | undefined;
    if (p.exactCounts) {
      // The target's count now, with the writer idle: under the hold its count is this plus what the drain's
      // items answered, and the target is not refreshed there (target-count.ts).
      base = await takeCountBase(
        async () => {
          await c.target.refresh(targetIndex);
          return c.target.count(targetIndex);
        },
        () => p.capture.writer.tally,
      );
      // The source is counted the same way: a point in time now, and under the hold what the journal's ids
      // changed since (source-count.ts). What the journal gained during the target's refresh is read beside the
      // source's, not left to the drain.
      const router = await p.capture.shardRouter();
      watch = router ? await SourceCountWatch.start(p.sync, router) : undefined;
    }
    try {
      if (p.exactCounts)
        await Promise.all([
          watch ? watch.snapshot(c.source, sourceIndex, c.signal) : c.source.refresh(sourceIndex),
          p.sync.sync(undefined, c.signal),
        ]);
      // What the drain under the hold copies is what was journaled since the last read: read again while a read
      // still found many (each read is shorter than the last, so less comes in during the next).
      const small = c.spec.cutover.holdMaxDrain;
      let lastRead = 0;
      for (let i = 0; i < PRE_HOLD_READS; i++) {
        const r = await p.sync.sync(undefined, c.signal);
        lastRead = r.written + r.deleted + r.conflicts + r.deadLetters;
        if (lastRead < small) break;
      }
      // Reads that do not get small mean the sync is behind the writes right now (a merge, a burst): a hold now
      // would drain all of that with the application waiting. Catch up and come back, a few times at most, so a
      // steady rate this high still gets its hold.
      if (lastRead >= small && deferred < MAX_DEFERRED_HOLDS) {
        deferred++;
        c.reporter.info(
          `the journal's last read before the hold still found ${lastRead} document(s): catching up before holding (${deferred}/${MAX_DEFERRED_HOLDS})`,
        );
        c.audit.record({ event: 'hold-deferred', lastRead, deferred });
        continue;
      }
      tries++;
      last = await holdOnce(c, p, proxies, tries, records, sourceIndex, targetIndex, base, watch);
    } finally {
      // The sync stops reporting to it and its point in time goes, whatever ended the attempt.
      await watch?.close(c.source);
    }
    p.sync.recordHold(last);
    c.audit.record({ event: 'hold', ...last });
    if (last.switched) {
      // The drained writes were counted, not refreshed: made searchable now, after the hold (the target's own
      // refresh interval would within a second; a failure here changes nothing that interval does not mend).
      if (last.targetCount === 'tally') await c.target.refresh(targetIndex).catch(() => undefined);
      c.reporter.info(
        `aliases moved to ${targetIndex} under a ${last.durationMs} ms hold of the application's writes (attempt ${last.attempt}; ${last.heldRequests} request(s) waited, the longest ${last.longestWaitMs} ms; none refused by the proxy${last.accounted ? '; the journal accounted for every source operation since the last round, so none ran under the hold' : ''}${last.fence?.fenced ? `; writers bypassing the proxy were refused for the ${last.fence.freezeMs ?? '?'} ms write fence of the source` : ''}${last.releasedBy.includes('deadline') ? '; a proxy released its queue at its own deadline, see the late-writes report' : ''})`,
      );
      return 'moved';
    }
    if (tries >= c.spec.cutover.maxFreezeAttempts)
      throw new GateError(
        `switch refused: ${tries} hold(s) could not finish inside cutover.holdBudgetMs = ${c.spec.cutover.holdBudgetMs} ms (last: ${last.reason}). No write was refused; the application still writes to ${sourceIndex} and the catch-up position is kept: run again, raise cutover.holdBudgetMs, or switch at a quieter time.`,
      );
    c.reporter.warn(
      `writes released after a ${last.durationMs} ms hold without switching (${last.reason}); catching up and trying again (${tries}/${c.spec.cutover.maxFreezeAttempts})`,
    );
    // Deletes by a bypassing writer that the fence could not settle in time: settled outside the hold first.
    if (/delete/.test(last.reason ?? '')) await p.reconcile();
    await sleep(Math.min(5_000, 250 * 2 ** Math.min(tries, 4)), c.signal);
  }
}

async function holdOnce(
  c: CaptureContext,
  p: HoldSwitchPlan,
  proxies: ProxyInfo[],
  attempt: number,
  records: NonNullable<CaptureContext['state']['aliases']>['records'],
  sourceIndex: string,
  targetIndex: string,
  base: CountBase | undefined,
  watch: SourceCountWatch | undefined,
): Promise<HoldReport> {
  const budget = c.spec.cutover.holdBudgetMs;
  const started = Date.now();
  const rep: HoldReport = {
    attempt,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    switched: false,
    proxies: proxies.length,
    heldRequests: 0,
    longestWaitMs: 0,
    releasedBy: [],
    syncedInHold: 0,
    phases: {},
  };
  const mark = (phase: string) => {
    rep.phases[phase] = Date.now() - started;
  };
  // The proxies count their deadline from when each started holding, after this moment; the runner's is earlier.
  // The alias request must be sent with room left for it to land (about as slow as the slowest call so far).
  let slowest = 0;
  const timed = async <T>(f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await f();
    } finally {
      slowest = Math.max(slowest, Date.now() - t);
    }
  };
  const left = () => started + budget - Date.now();
  const cut = new AbortController();
  const timer = setTimeout(() => cut.abort(new Abort(`hold budget of ${budget} ms reached`)), budget);
  const hold = new FleetHold(p.fleet, budget, {
    audit: c.audit,
    warn: (m) => c.reporter.warn(m),
    info: (m) => c.reporter.info(m),
  });
  // Recorded before the alias request may go out (durable when this resolves). Should this run end before its
  // answer is recorded, the next one finds where the aliases are and completes this record; the late-write report
  // starts from this journal position. The two files are written off the main thread, side by side.
  const aliasRequestSent = async () => {
    c.state.cutoverJournalEnd = p.sync.snapshot.pos;
    await Promise.all([
      c.store.save(c.state, { offThread: true }),
      p.sync.recordHoldOffThread({ ...rep, durationMs: Date.now() - started, aliasRequestSent: true }),
    ]);
  };
  // Written beside the counts once nothing more is read from the journal under this hold; awaited before the
  // alias request, and before this attempt returns (nothing else may save those files meanwhile).
  let recorded: Promise<void> | undefined;
  // The application moves with the proxies when the new index is on another cluster (proxy.moveApplication).
  const moves = !!c.spec.target.cluster && c.spec.proxy.moveApplication;
  const releaseAll = async (switchedTo?: string) => {
    const r = await hold.release({
      switchedTo,
      ...(switchedTo && moves ? { cluster: 'target' as const } : {}),
    });
    rep.heldRequests += r.heldRequests;
    rep.longestWaitMs = Math.max(rep.longestWaitMs, r.longestWaitMs);
    rep.releasedBy.push(...r.releasedBy);
    rep.durationMs = Date.now() - started;
  };
  try {
    const refused = await hold.take(proxies);
    if (refused) throw new Abort(refused);
    rep.grantWaitMs = hold.inflightWaitMs;
    mark('held');
    // No proxied write reaches the source any more: its refresh for the counts starts now, beside the drain,
    // unless the source can be counted from a point in time and the journal (then only if that fails).
    let sourceRefresh: Promise<void> | undefined;
    const refreshSource = () => {
      sourceRefresh ??= timed(() => c.source.refresh(sourceIndex)).finally(() => mark('source-refresh'));
      sourceRefresh.catch(() => undefined);
      return sourceRefresh;
    };
    if (p.exactCounts && !watch) refreshSource();
    // Every write the proxies forwarded before holding is journaled up to here.
    const drained = await timed(() => p.sync.sync(hold.journalEnd, cut.signal));
    rep.syncedInHold += drained.written + drained.deleted;
    mark('drain');
    // The source's figure is a read of the point in time with the drain's answers (source-count.ts): it starts
    // beside the accounting and is used only if the journal accounts for every operation.
    const sourceFromJournal =
      p.exactCounts && watch && p.sync.snapshot.bypass === 0 ? watch.count(c.source, cut.signal) : undefined;
    sourceFromJournal?.catch(() => undefined);
    // Safety net: writers that bypass the proxies are not held; what they changed so far must be applied now.
    // When the journal accounts for every source operation since the last round (each `_seq_no` of each shard,
    // journal-accounting.ts), there is nothing of theirs to apply and no round is needed.
    const acc =
      p.sync.snapshot.bypass === 0
        ? await timed(() => p.sync.accountsFor(p.capture.snapshot.cursors))
        : undefined;
    rep.accounted = acc?.accounted ?? false;
    if (acc && !acc.accounted) {
      rep.gaps = acc.gaps;
      rep.firstGap = acc.firstGap;
    }
    mark('accounting');
    let roundWrote = 0;
    // Only the drain wrote to the target since the base: its count comes from the writer's answers.
    const tallied = p.exactCounts && !!base && !!acc?.accounted && !c.spec.cutover.searchableAtSwitch;
    if (acc?.accounted) {
      await timed(() =>
        Promise.all([
          p.exactCounts && !watch ? refreshSource() : undefined,
          p.exactCounts && !tallied
            ? c.target.refresh(targetIndex).finally(() => mark('target-refresh'))
            : undefined,
        ]),
      );
    } else {
      // (alone: the journal was just drained up to the hold; nothing proxied can have been added since)
      // The target's refresh for the counts runs beside it (the proxied writes drained above may not be visible
      // yet; refreshed again below only if the round wrote to it). The round refreshes the source again after
      // reading its checkpoints, which serves the source's count.
      const [round] = await timed(() =>
        Promise.all([
          p.capture.round(undefined, cut.signal, { alone: true }).finally(() => mark('round')),
          p.exactCounts ? c.target.refresh(targetIndex).finally(() => mark('target-refresh')) : undefined,
          p.exactCounts ? refreshSource() : undefined,
        ]),
      );
      roundWrote = round.result.written + round.result.deleted;
      rep.syncedInHold += roundWrote;
    }
    mark('final-round');
    if (p.sync.reconcileNeeded)
      throw new Abort(`the journal asks for a reconcile (${p.sync.reconcileNeeded.why})`);
    // A proxy that started since the hold was granted is not holding: its writes would race the switch.
    const now = await p.fleet.live();
    const unheld = now.filter((x) => !hold.holds(x.id));
    if (unheld.length) throw new Abort(`proxy ${unheld[0]!.id} started during the hold`);
    mark('registry');
    if (p.sync.snapshot.bypass === 0) {
      recorded = aliasRequestSent();
      recorded.catch(() => undefined);
    }
    if (p.sync.snapshot.bypass > 0) {
      // Writers bypass the proxies: fence the source for them (see the module comment) and switch under it.
      // The fence must be lifted before any proxy's own deadline: a proxy that released its queue into a source
      // being blocked would see bulks refused in part (a block met by some shards of a bulk and not others).
      const fenceBudget = left() - Math.max(100, 2 * slowest);
      if (fenceBudget < 100)
        throw new Abort(`hold budget of ${budget} ms nearly spent before the bypass fence`);
      rep.fence = { fenced: true };
      const f = await freezeAndSwitch({
        source: c.source,
        target: c.target,
        sourceIndex,
        targetIndex,
        aliases: records,
        capture: p.capture,
        budgetMs: fenceBudget,
        attempt: p.capture.snapshot.freezes.length + 1,
        exactCounts: p.exactCounts,
        markFrozen: async (frozen) => {
          c.state.frozen = frozen
            ? { side: 'source', index: sourceIndex, startedAt: new Date().toISOString(), attempt }
            : undefined;
          await c.store.save(c.state);
        },
        beforeSwitch: async () => {
          await p.beforeSwitch?.();
          await aliasRequestSent();
        },
        guard: guardFor(c.spec, 'source', c.audit.path),
      });
      p.capture.recordFreeze(f);
      c.audit.record({ event: 'freeze', index: sourceIndex, fence: true, ...f });
      rep.fence = { fenced: true, freezeMs: f.durationMs, pendingDeletes: f.pendingDeletes };
      if (!f.switched) throw new Abort(`the bypass fence could not switch: ${f.reason}`);
    } else {
      if (p.exactCounts) {
        const [source, target] = await timed(async () => {
          const fromTally = tallied ? countFromTally(base, p.capture.writer.tally) : undefined;
          rep.targetCount = fromTally === undefined ? 'refresh' : 'tally';
          // A tally that cannot be used after all (an answer lost) falls back to the refresh it replaced.
          const targetReady =
            roundWrote > 0 || (tallied && fromTally === undefined)
              ? c.target.refresh(targetIndex)
              : undefined;
          // The source's figure from the journal holds only when the journal accounts for every operation.
          const sourceNow = async () => {
            // A point in time the cluster lost (or any failure of its searches) only costs the refresh.
            const fromJournal =
              acc?.accounted && sourceFromJournal
                ? await sourceFromJournal.catch((e: unknown) => {
                    if (cut.signal.aborted) throw e;
                    return undefined;
                  })
                : undefined;
            rep.sourceCount = fromJournal === undefined ? 'refresh' : 'journal';
            if (fromJournal !== undefined) return fromJournal;
            await refreshSource();
            return c.source.count(sourceIndex);
          };
          const [all, tgt, dropped] = await Promise.all([
            sourceNow(),
            targetReady
              ? targetReady.then(() => c.target.count(targetIndex))
              : (fromTally ?? c.target.count(targetIndex)),
            p.capture.droppedNow(cut.signal),
          ]);
          if (all - dropped !== tgt && rep.sourceCount === 'journal') {
            // Never trusted against the target: a figure that disagrees is checked by the refresh it replaced.
            rep.sourceCountFromJournal = all;
            rep.sourceCount = 'refresh';
            await refreshSource();
            return [(await c.source.count(sourceIndex)) - dropped, tgt];
          }
          return [all - dropped, tgt];
        });
        mark('counts');
        if (target !== source)
          throw new Abort(
            `counts differ under the hold (source ${source}, target ${target}): ${target > source ? 'a delete the journal did not name (a writer bypassing the proxy?)' : 'a write not yet on the target'}`,
          );
      } else {
        mark('counts');
      }
      // (first: beforeSwitch may save the state too)
      await recorded;
      mark('alias-record');
      await timed(() => p.beforeSwitch?.() ?? Promise.resolve());
      // Room for the alias request itself: never send it when it could land after the proxies gave up the hold.
      const reserve = aliasReserveMs(p.sync.snapshot.holds);
      if (left() < reserve)
        throw new Abort(`hold budget of ${budget} ms nearly spent before the alias request`);
      const aliasFrom = Date.now();
      const ends = migrationEnds(c);
      await sendSwitch(records, ends.source, ends.target);
      rep.aliasMs = Date.now() - aliasFrom;
    }
    rep.switched = true;
    mark('aliases');
    // The state already holds this position (saved with the alias request, and no pass ran since): the held
    // writes go first, the record after.
    await releaseAll(targetIndex);
    mark('release');
    c.state.cutoverJournalEnd = p.sync.snapshot.pos;
    await c.store.save(c.state);
  } catch (e) {
    const why =
      cut.signal.aborted && !rep.switched ? (cut.signal.reason as Error).message : (e as Error).message;
    if (!(e instanceof Abort) && !cut.signal.aborted) {
      if (!hold.released) await releaseAll(rep.switched ? targetIndex : undefined);
      throw e;
    }
    rep.reason = why;
    if (!hold.released) await releaseAll(rep.switched ? targetIndex : undefined);
    mark('release');
  } finally {
    clearTimeout(timer);
    // The hold ended with the release (the records saved after it are not the application's wait).
    if (rep.releasedBy.length === 0) rep.durationMs = Date.now() - started;
    await recorded?.catch(() => undefined);
  }
  return rep;
}
