/**
 * Rollback when the application writes through proxies: the aliases go back to the old index under a hold, as
 * they left it, and the proxies learn of it in the same release. Without that, a proxy would keep acting on the
 * switch it was told of: route writes that name the old index to the new one, or, after a move to another
 * cluster (proxy.moveApplication), keep sending the whole application there, where the aliases no longer exist
 * (a write through one could create an index of that name).
 *
 * Inside a revert window the reverse sync is drained under the hold, with the freeze of the new index that the
 * `seqno` rollback uses (freeze.ts): the proxies' writes are queued, not refused; only writers that bypass the
 * proxies meet the block. A hold that cannot finish in time is released without moving anything and tried
 * again; the alias request is only sent while the hold has room left for it to land before the proxies'
 * deadline. With no proxy running, the aliases move back without a hold, and the switch record this host's
 * proxy would read at its next start is removed.
 */
import { existsSync, unlinkSync } from 'node:fs';
import type { LiveCapture } from '../capture/live.js';
import type { CaptureContext } from '../capture/strategy.js';
import { sleep } from '../cluster/retry.js';
import { failpoint } from '../ops/failpoints.js';
import type { ProxyFleet } from '../proxy/attach.js';
import type { ProxyInfo } from '../proxy/control.js';
import { forgetSwitch, switchStatePathOf } from '../proxy/switch-state.js';
import { GateError } from '../store/errors.js';
import { aliasPlacement, migrationEnds, moveAliases } from './aliases.js';
import { freezeAndSwitch } from './freeze.js';
import { guardFor } from './freeze-guard.js';
import { FleetHold } from './proxy-hold.js';

class Abort extends Error {}

export interface HoldRollbackPlan {
  fleet: ProxyFleet;
  /** ms the hold keeps for the alias request (hold-switch.ts aliasReserveMs) */
  reserveMs: number;
  /** the revert window's reverse sync (started at its cursors), when the window is open */
  revert?: { capture: LiveCapture; exactCounts: boolean };
  /** the rollback without a hold, for when no proxy runs (the strategy's own: drained or a plain move) */
  withoutHold: () => Promise<'moved' | 'already'>;
}

export interface RollbackHold {
  attempt: number;
  durationMs: number;
  moved: boolean;
  reason?: string;
  proxies: number;
  heldRequests: number;
  longestWaitMs: number;
  releasedBy: string[];
  /** the revert window's freeze of the new index, for writers that bypass the proxies */
  freezeMs?: number;
}

export async function rollBackUnderHold(
  c: CaptureContext,
  p: HoldRollbackPlan,
): Promise<'moved' | 'already'> {
  const records = c.state.aliases?.records ?? [];
  const ends = migrationEnds(c);
  let tries = 0;
  try {
    for (;;) {
      c.signal?.throwIfAborted();
      if (p.revert) {
        // Settled outside the hold: the deletes made on the new index (an id scan) and the changes so far.
        await p.revert.capture.reconcile();
        await p.revert.capture.round();
      }
      const proxies = await p.fleet.live();
      if (proxies.length === 0) {
        c.reporter.warn(
          `no write proxy is running (journal: ${p.fleet.where}): the aliases move back without a hold. A proxy started later on another host would still act on the switch: delete ${switchStatePathOf(c.store.journalPath)} there before starting it`,
        );
        const r = await p.withoutHold();
        forgetSwitch(switchStatePathOf(c.store.journalPath));
        return r;
      }
      tries++;
      const h = await rollbackHoldOnce(proxies, tries);
      c.audit.record({ event: 'rollback-hold', ...h });
      if (h.moved) {
        const told = h.releasedBy.filter((r) => r === 'runner').length;
        (told === h.proxies ? c.reporter.info : c.reporter.warn).call(
          c.reporter,
          `aliases moved back to ${ends.source.index} under a ${h.durationMs} ms hold of the application's writes (attempt ${h.attempt}; ${h.heldRequests} request(s) waited, the longest ${h.longestWaitMs} ms; ${told === h.proxies ? 'the proxies send' : `${told} of ${h.proxies} proxies confirmed they send`} the application to ${ends.source.index}${c.spec.target.cluster ? ' on the source cluster' : ''} again${told === h.proxies ? '' : '; the others did not confirm the release (see above): check that their status shows no switch and upstream source'})`,
        );
        return 'moved';
      }
      if (tries >= c.spec.cutover.maxFreezeAttempts)
        throw new GateError(
          `rollback refused: ${tries} hold(s) could not finish inside cutover.holdBudgetMs = ${c.spec.cutover.holdBudgetMs} ms (last: ${h.reason}). Nothing moved and no write was refused by the proxies: the application still uses ${c.spec.target.index}. Rerun rollback, or raise cutover.holdBudgetMs`,
        );
      c.reporter.warn(
        `writes released after a ${h.durationMs} ms hold without rolling back (${h.reason}); trying again (${tries}/${c.spec.cutover.maxFreezeAttempts})`,
      );
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(tries, 4)), c.signal);
    }
  } finally {
    if (existsSync(c.store.rollbackRequestPath)) unlinkSync(c.store.rollbackRequestPath);
  }

  async function rollbackHoldOnce(proxies: ProxyInfo[], attempt: number): Promise<RollbackHold> {
    const budget = c.spec.cutover.holdBudgetMs;
    const started = Date.now();
    const left = () => started + budget - Date.now();
    const rep: RollbackHold = {
      attempt,
      durationMs: 0,
      moved: false,
      proxies: proxies.length,
      heldRequests: 0,
      longestWaitMs: 0,
      releasedBy: [],
    };
    const hold = new FleetHold(p.fleet, budget, {
      audit: c.audit,
      warn: (m) => c.reporter.warn(m),
      info: (m) => c.reporter.info(m),
    });
    const release = async () => {
      const r = await hold.release(rep.moved ? { rolledBack: true } : {});
      rep.heldRequests = r.heldRequests;
      rep.longestWaitMs = r.longestWaitMs;
      rep.releasedBy = r.releasedBy;
    };
    try {
      const refused = await hold.take(proxies);
      if (refused) throw new Abort(refused);
      if (p.revert) {
        const f = await freezeAndSwitch({
          source: c.target,
          target: c.source,
          sourceIndex: ends.target.index,
          targetIndex: ends.source.index,
          aliases: records,
          capture: p.revert.capture,
          budgetMs: Math.max(50, left() - p.reserveMs),
          attempt: p.revert.capture.snapshot.freezes.length + 1,
          exactCounts: p.revert.exactCounts,
          markFrozen: async (frozen) => {
            c.state.frozen = frozen
              ? { side: 'target', index: ends.target.index, startedAt: new Date().toISOString(), attempt }
              : undefined;
            await c.store.save(c.state);
          },
          guard: guardFor(c.spec, 'target', c.audit.path),
        });
        p.revert.capture.recordFreeze(f);
        c.audit.record({ event: 'freeze', index: ends.target.index, rollback: true, ...f });
        rep.freezeMs = f.durationMs;
        if (!f.switched) throw new Abort(`the revert window could not be drained: ${f.reason}`);
      } else {
        if (left() < p.reserveMs)
          throw new Abort(`hold budget of ${budget} ms nearly spent before the alias request`);
        await moveAliases(records, ends.target, ends.source);
      }
      rep.moved = true;
      failpoint('rollback.after-aliases');
      await release();
    } catch (e) {
      // An alias request that failed on its way back (a timeout) may still have moved the aliases: the proxies
      // must then hear that the switch is undone, or they keep acting on it.
      if (!(e instanceof Abort) && !hold.released)
        rep.moved = await aliasPlacement(records, ends.source, ends.target).then(
          (w) => w.placement === 'from',
          () => false,
        );
      if (!hold.released) await release();
      if (!(e instanceof Abort)) throw e;
      rep.reason = e.message;
    } finally {
      rep.durationMs = Date.now() - started;
    }
    return rep;
  }
}

/**
 * The aliases are already back on the old index, but an earlier rollback may have ended between its alias request
 * and the release that tells the proxies (a crash, a timeout): every live proxy still acting on the switch is
 * held and released with `rolledBack`, nothing else moves. Returns how many proxies were told.
 */
export async function tellProxiesRolledBack(c: CaptureContext, fleet: ProxyFleet): Promise<number> {
  const proxies = await fleet.live();
  if (proxies.length === 0) {
    forgetSwitch(switchStatePathOf(c.store.journalPath));
    return 0;
  }
  const statuses = await Promise.all(
    proxies.map((info) =>
      fleet
        .control(info)
        .status()
        .then((st) => ({ info, switched: !!st.switchedTo || st.upstream === 'target' }))
        // One that does not answer is treated as still switched: the hold below finds out.
        .catch(() => ({ info, switched: true })),
    ),
  );
  const behind = statuses.filter((x) => x.switched).map((x) => x.info);
  if (behind.length === 0) return 0;
  const hold = new FleetHold(fleet, c.spec.cutover.holdBudgetMs, {
    audit: c.audit,
    warn: (m) => c.reporter.warn(m),
    info: (m) => c.reporter.info(m),
  });
  const refused = await hold.take(behind);
  // Released to all that granted, with rolledBack even if one refused: nothing moves, they only forget the switch.
  const r = await hold.release({ rolledBack: true });
  const told = r.releasedBy.filter((x) => x === 'runner').length;
  c.audit.record({ event: 'proxies-told-rolled-back', proxies: behind.map((x) => x.id), told });
  if (refused || told < behind.length)
    throw new GateError(
      `the aliases are back on ${migrationEnds(c).source.index}, but ${behind.length - told} of ${behind.length} write prox${behind.length === 1 ? 'y' : 'ies'} still act on the switch (${refused ?? 'no confirmation of the release'}): rerun rollback to tell them`,
    );
  c.reporter.info(
    `the aliases were already back on ${migrationEnds(c).source.index}; ${told} write prox${told === 1 ? 'y' : 'ies'} still acting on the switch now send the application there again`,
  );
  return told;
}
