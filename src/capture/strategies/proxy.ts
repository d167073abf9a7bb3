/**
 * `capture.strategy: proxy`: the application writes through `cutover proxy`, which journals every id it writes or
 * deletes before answering. The runner copies each journaled id's current source state (deletes included, as they
 * happen), so nothing depends on an id scan of the whole index; `_seq_no` rounds keep running as a safety net for
 * writers that bypass the proxy, and they are counted. The switch holds the writes in the proxies instead of
 * refusing them with a write block.
 */

import { sleep } from '../../cluster/retry.js';
import { FileDeadLetters } from '../../copy/dead-letters.js';
import { aliasPlacement, migrationEnds, moveAliases } from '../../cutover/aliases.js';
import { rollBackUnderHold, tellProxiesRolledBack } from '../../cutover/hold-rollback.js';
import { aliasReserveMs, holdAndSwitch } from '../../cutover/hold-switch.js';
import {
  drainedRollback,
  keepOldIndexInSync,
  leftBehindIds,
  reverseCapture,
  revertWindowOpen,
} from '../../cutover/revert-window.js';
import { COPY_SETTINGS } from '../../cutover/target.js';
import { every } from '../../ops/every.js';
import { LagPacer } from '../../ops/lag-pacer.js';
import { attachProxies, type ProxyFleet } from '../../proxy/attach.js';
import type { ProxyStatus } from '../../proxy/control.js';
import type { LoadedSpec } from '../../spec/load.js';
import { readJson } from '../../store/atomic-file.js';
import { GateError, PreflightError } from '../../store/errors.js';
import { StateStore } from '../../store/state.js';
import type { Finding } from '../../verify/preflight.js';
import { AccountedSkips } from '../accounted-skips.js';
import { JournalSync } from '../journal-sync.js';
import { type LiveCapture, percentile } from '../live.js';
import type { CaptureContext, CaptureStrategy } from '../strategy.js';
import { WritesSinceSwitch } from '../writes-since-switch.js';
import { forwardCapture } from './forward-capture.js';

/**
 * How long a safety-net round leaves a `_seq_no` the journal does not account for to later rounds: the proxy
 * journals a write once the cluster answered it, which under load comes a while after the number was given (the
 * translog is synced first). Longer only delays finding a write that bypassed the proxies.
 */
const GAP_GRACE_MS = 1_000;

export interface SyncBridge {
  /** stop after the pass under way; rethrows the error that ended the loop, if one did */
  stop(): Promise<void>;
  /** passes run, and documents they wrote or deleted on the target */
  readonly done: { passes: number; applied: number };
}

/** Journal sync passes one after another until stopped. */
export function syncUntilCopy(sj: Pick<JournalSync, 'sync'>, signal?: AbortSignal): SyncBridge {
  let stopped = false;
  const done = { passes: 0, applied: 0 };
  const loop = (async () => {
    while (!stopped) {
      signal?.throwIfAborted();
      const r = await sj.sync(undefined, signal);
      done.passes++;
      done.applied += r.written + r.deleted;
      if (!stopped) await sleep(50, signal);
    }
  })();
  // Kept for stop(): an error must not go unhandled while the copy step prepares.
  loop.catch(() => undefined);
  return {
    done,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export function proxyCapture(spec: LoadedSpec): CaptureStrategy {
  let live: LiveCapture | undefined;
  let sync: JournalSync | undefined;
  let fleet: Promise<ProxyFleet> | undefined;
  /** while the copy runs: its bulks in flight follow the journal sync's lag */
  let pacer: LagPacer | undefined;
  /** the journal sync between its start position and the copy's own loop (syncUntilCopy) */
  let bridge: SyncBridge | undefined;
  const proxies = (c: Pick<CaptureContext, 'spec' | 'store'>) => {
    fleet ??= attachProxies(c.spec, c.store);
    return fleet;
  };
  const journal = async (c: CaptureContext): Promise<JournalSync> => {
    if (sync) return sync;
    const f = await proxies(c);
    const sourceIndex = c.state.sourceIndex!;
    sync = new JournalSync({
      source: c.source,
      sourceIndex,
      sourceNames: [
        ...new Set([
          sourceIndex,
          c.spec.source.index,
          ...(c.state.aliases?.records ?? []).map((r) => r.alias),
        ]),
      ],
      reader: f.reader,
      writer: capture(c).writer,
      transform: c.transform,
      versioning: c.spec.copy.versioning,
      deadLetters: new FileDeadLetters(c.store.deadLetterPath),
      router: () => capture(c).shardRouter(),
      onDropped: (ids) => capture(c).noteDropped(ids),
      batchDocs: c.spec.copy.batchDocs,
      statePath: c.store.journalSyncPath,
      onBatch: (lagMs) => pacer?.batch(lagMs),
      reporter: c.reporter,
      signal: c.signal,
    });
    return sync;
  };
  // What the application wrote through the proxies since the switch: the reverse sync's view of deletes of
  // documents the migration left on the old index only (writes-since-switch.ts).
  const sinceSwitch = async (c: CaptureContext, f: ProxyFleet): Promise<WritesSinceSwitch | undefined> => {
    const from = c.state.cutoverJournalEnd;
    if (!from) return undefined;
    const behind = leftBehindIds(c);
    return new WritesSinceSwitch({
      reader: f.reader,
      from,
      oldIndex: c.state.sourceIndex!,
      leftBehind: () => behind,
    });
  };
  const capture = (c: CaptureContext): LiveCapture => {
    live ??= forwardCapture(c, {
      skips: new AccountedSkips(
        (shard, from, upTo) => sync?.accounting.accountedUpTo(shard, from, upTo) ?? from,
        GAP_GRACE_MS,
      ),
      onApplied: (shard, hits) => sync?.noteRoundApplied(shard, hits),
      // A round lists the changes after its checkpoints, syncs the journal, and copies only what the journal did
      // not: the safety net costs a read of ids, not a second copy of every proxied write.
      covered: (id, seqNo) => sync?.covers(id, seqNo) ?? false,
      afterMarks: async (signal) => {
        await (await journal(c)).sync(undefined, signal);
      },
      // The journal sync rides along wherever rounds run: beside the copy, the proof, the wait for the switch.
      afterRound: async (signal) => {
        const sj = await journal(c);
        await sj.sync(undefined, signal);
        // What the rounds have passed needs no accounting any more (journal-accounting.ts).
        sj.accounting.settled(capture(c).snapshot.cursors);
      },
    });
    return live;
  };
  const maxLag = spec.capture.maxLagSeconds;
  const reconcile = async (c: CaptureContext) => {
    const lc = capture(c);
    // A by-query still running would change documents after the scan passed them: it finishes first.
    for (const task of sync?.runningTasks ?? []) {
      c.reporter.info(`waiting for the by-query task ${task} to finish before reconciling`);
      await c.source.waitForTask(task, c.signal);
    }
    const r = await lc.alongside(() => lc.reconcile(undefined, undefined, { giveWay: true }));
    c.reporter.info(
      `reconcile: ${r.checked} target ids checked, ${r.missingOnSource} deleted on the source and not yet on the target`,
    );
  };

  return {
    mode: 'proxy',
    summary:
      'proxy: the application writes through `cutover proxy`, which journals every written and deleted id; the runner copies their current state as they come, seqno rounds run as a safety net, and the switch holds writes in the proxy (they wait, none is refused)',
    createOnly: false,
    countGate: 'under-freeze',
    proofSkipsTargetPass: false,
    keepsTombstonesUntilSwitch: true,
    canPostpone: true,
    // Deletes come from the journal as they happen, unless it said it cannot name them (a reconcile marker: a
    // by-query, a proxy restarted after a crash, a broken journal) or writers bypass it: then the proof's id scans
    // are needed, or a document deleted that way stays extra on the target and fails the proof. Before this
    // process read the journal it does not know yet, so it scans.
    get seesDeletes() {
      return sync !== undefined && !sync.reconcileNeeded && sync.snapshot.bypass === 0;
    },
    copySettings: () => COPY_SETTINGS,
    switchNotes: (s) => [
      `under a hold: every live proxy queues the application's writes to ${s.source.index} (reads go on) for at most cutover.holdBudgetMs = ${s.cutover.holdBudgetMs} ms, enforced by the proxy itself; the journal is drained, the last safety-net round applied (skipped when the journal accounts for every source \`_seq_no\` since the previous round) and the counts compared, then the aliases move and the queued writes land on ${s.target.index}; none is refused`,
      'a hold that cannot finish in time is released without switching and tried again; if writers bypass the proxy, the source is also write-fenced for them inside the hold',
    ],
    copyNotes: () => [
      `journal sync: every id the proxy journals is copied from the source's current state (deletes as versioned tombstones) after each catch-up round`,
    ],

    async preflight(f) {
      if (!spec.aliases?.write)
        throw new PreflightError(
          'capture.strategy proxy: aliases.write is required (the held writes are released through it, onto the new index)',
        );
      if (String(f.settings['index.blocks.write']) === 'true')
        throw new PreflightError(
          `capture.strategy proxy: ${f.sourceIndex} is write-blocked (index.blocks.write); use capture.strategy none`,
        );
      // The plan says whether the proxies are up; the run refuses to open the copy's point in time without one.
      const store = new StateStore(spec.migrationDir);
      const fleet = await attachProxies(spec, store);
      try {
        const up = await fleet.live();
        if (up.length === 0)
          return [
            {
              check: 'proxy.running',
              severity: 'warn',
              message: `no write proxy is running for ${spec.name} (journal: ${fleet.where}); \`run\` refuses to start the copy without one`,
              action: `start \`cutover proxy ${spec.file || '<spec>'}\` and point the application's cluster URL at the address it prints (${spec.proxy.listen} by default)`,
            },
          ];
        const status = await Promise.all(up.map((p) => fleet.control(p).status()));
        return [
          {
            check: 'proxy.running',
            severity: 'ok',
            message: `${up.length} write proxy(ies) journaling: ${status.map((s) => `${s.id} at ${s.listen} (journal at position ${s.journalEnd.seq})`).join(', ')}`,
          },
          ...moveFindings(spec, status),
        ];
      } finally {
        await fleet.close();
      }
    },

    beforeCopy: [
      {
        name: 'start-capture',
        title:
          'Proxy capture: check the proxies journal, record where the journal and the safety-net rounds start',
        changes: (s) => [
          `nothing: checks that a write proxy is up and journaling (${s.proxy.journal.kind} journal), then records the journal's end and each source shard's checkpoint, before the copy opens its point in time`,
        ],
        async run(c) {
          const f = await proxies(c);
          const up = await f.live();
          if (up.length === 0)
            throw new GateError(
              `no write proxy is running for ${c.spec.name} (journal: ${f.where}): start \`cutover proxy ${c.spec.file || '<spec>'}\`, point the application at the address it prints, then rerun. Nothing was copied yet`,
            );
          const status = await Promise.all(up.map((p) => f.control(p).status()));
          const sj = await journal(c);
          await sj.startAtEnd(up.map((x) => x.id));
          // From here on every journaled write waits for the sync: what comes before the copy's own loop (the
          // rounds' checkpoints, and the copy step's refresh and count of the source under the application's
          // load, its plan, its point in time) takes seconds, and writes journaled meanwhile would start the copy
          // that far behind. Independent of the rounds: versions decide, whichever writes first.
          bridge = syncUntilCopy(sj, c.signal);
          await capture(c).start();
          c.reporter.info(
            `${up.length} write proxy(ies) journaling (${status.map((s) => `${s.id} at ${s.listen}`).join(', ')}); journal sync starts at position ${sj.snapshot.pos.seq}`,
          );
          c.audit.record({
            event: 'capture-started',
            cursors: capture(c).snapshot.cursors,
            journal: sj.snapshot.pos,
            proxies: up.map((p) => p.id),
          });
          return 'continue';
        },
      },
    ],

    async alongsideCopy(c, copy) {
      const lc = capture(c);
      const sj = await journal(c);
      // The copy's rounds take the sync over (its error, if it had one, ends the run here).
      if (bridge) {
        const b = bridge;
        bridge = undefined;
        await b.stop();
        c.reporter.info(
          `journal sync before the copy: ${b.done.passes} pass(es), ${b.done.applied} document(s) written or deleted on ${c.spec.target.index}`,
        );
        c.audit.record({ event: 'journal-sync-before-copy', ...b.done });
      }
      const maxBehindMs = (maxLag * 1000) / 2;
      if (c.spec.capture.copyYields) pacer = new LagPacer(c.throttle, maxBehindMs, c.spec.copy.concurrency);
      try {
        return await lc.alongside(() =>
          copy({
            onDropped: (ids) => lc.noteDropped(ids),
            // Live changes first: the backfill waits while the rounds or the journal sync are behind.
            yieldTo: async (signal) => {
              await lc.yieldWhileBehind(signal);
              if (!c.spec.capture.copyYields) return;
              while (sj.behindMs() > maxBehindMs) await sleep(20, signal);
            },
          }),
        );
      } finally {
        if (pacer)
          c.reporter.info(
            `the copy kept at most ${pacer.high} of its ${c.spec.copy.concurrency} bulk(s) in flight to keep the journal sync under ${maxBehindMs / 2} ms (halved ${pacer.halvings} time(s))`,
          );
        pacer?.stop();
        pacer = undefined;
      }
    },

    afterCopy: [
      {
        name: 'catch-up',
        title: 'Proxy capture: apply the journal and the safety-net rounds until the lag is small',
        changes: (s) => [
          `catch-up rounds and journal sync until the lag is under ${s.capture.maxLagSeconds} s; an id reconcile only if the journal asks for one (by-query writes, a proxy restart, writes that bypass the proxy)`,
        ],
        async run(c) {
          const lc = capture(c);
          const sj = await journal(c);
          const note = every();
          for (;;) {
            c.signal?.throwIfAborted();
            const round = await lc.round();
            if (round.lagMs <= maxLag * 1000) {
              c.reporter.info(
                `caught up: journal at position ${sj.snapshot.pos.seq} (${sj.snapshot.copied} copied, ${sj.snapshot.deleted} deleted through it); last round lag ${round.lagMs} ms`,
              );
              break;
            }
            note(() => c.reporter.info(`catching up: lag ${round.lagMs} ms (target: under ${maxLag} s)`));
          }
          // What the journal could not name (by-query, a proxy crash, a broken journal) is settled before the
          // proof, which would otherwise find those deletes missing on the target.
          const demand = sj.reconcileNeeded;
          if (demand) {
            c.reporter.info(`reconciling every id: ${demand.why}`);
            const upTo = sj.snapshot.pos.seq;
            await reconcile(c);
            sj.reconciled(upTo);
            c.audit.record({ event: 'proxy-reconciled', why: demand.why, upTo });
          }
          c.audit.record({ event: 'caught-up', capture: summary(lc, sj) });
          return 'continue';
        },
      },
    ],

    afterSwitch: [
      {
        name: 'late-writes',
        title: 'After the switch: report writes that still landed on the old index',
        changes: (s) => [
          `nothing: reads the journal after the switch; writes naming the old index by its concrete name are reported (proxy.concreteNames: ${s.proxy.concreteNames})`,
        ],
        async run(c) {
          const from = c.state.cutoverJournalEnd;
          if (!from) return 'continue';
          const sj = await journal(c);
          const late = await sj.lateWrites(from, c.state.sourceIndex!);
          if (late.count > 0)
            c.reporter.warn(
              `${late.count} write(s) landed on the old index ${c.state.sourceIndex} after the switch (e.g. ${late.sample.slice(0, 3).join(', ')}): a client names it by its concrete name. Set proxy.concreteNames: route, or make that client use the alias ${c.spec.aliases?.write}`,
            );
          c.audit.record({ event: 'late-writes', count: late.count, sample: late.sample });
          return 'continue';
        },
      },
      {
        name: 'revert-window',
        title: "Revert window: copy the new index's changes back to the old one until the window closes",
        changes: (s) =>
          s.cutover.revertWindowMinutes === 0
            ? ['skipped (cutover.revertWindowMinutes = 0)']
            : [
                `for ${s.cutover.revertWindowMinutes} min after the switch: tails ${s.target.index} by _seq_no into the old index`,
              ],
        async run(c) {
          if (!revertWindowOpen(c)) return 'continue';
          const since = await proxies(c).then(
            (f) => sinceSwitch(c, f),
            (e: unknown) => {
              c.reporter.warn(
                `cannot read the write proxies' journal (${(e as Error).message}): the revert window goes on without it, and documents left on ${c.state.sourceIndex} that the application deletes meanwhile may come back on a rollback`,
              );
              return undefined;
            },
          );
          return (await keepOldIndexInSync(c, since)) === 'handover' ? 'pause' : 'continue';
        },
      },
    ],

    captureDeadLetters: (c) => capture(c).snapshot.deadLetters + (sync?.snapshot.deadLetters ?? 0),
    proofCompanion: (c) => capture(c),
    async switchAliases(c) {
      const lc = capture(c);
      const sj = await journal(c);
      const t = c.state.totals;
      return holdAndSwitch(c, {
        capture: lc,
        sync: sj,
        fleet: await proxies(c),
        exactCounts: lc.exactCounts((t?.deadLetters ?? 0) + sj.snapshot.deadLetters),
        reconcile: () => reconcile(c),
        beforeSwitch: async () => {
          if (c.spec.cutover.revertWindowMinutes > 0) {
            c.state.revertCursors = (await c.target.shardSeqNos(c.spec.target.index)).map((m) => m.maxSeqNo);
            await c.store.save(c.state);
          }
        },
      });
    },
    revertWindowOpen: (c, now) => revertWindowOpen(c, now),
    // The NATS journal's reader and registry hold connections open: a finished run would never exit.
    async close() {
      await bridge?.stop().catch(() => undefined);
      bridge = undefined;
      const f = fleet;
      fleet = undefined;
      sync = undefined;
      await (await f?.catch(() => undefined))?.close();
    },

    async rollBack(c) {
      const records = c.state.aliases?.records ?? [];
      const ends = migrationEnds(c);
      const where = await aliasPlacement(records, ends.source, ends.target);
      if (where.placement === 'from' && c.state.cutoverAt) {
        // Already back: an earlier rollback ended after its alias request, maybe before the proxies heard of it.
        await tellProxiesRolledBack(c, await proxies(c));
        return 'already';
      }
      // Not switched (or a switch stopped between its two requests): the proxies were never told of a switch.
      if (where.placement !== 'to') return moveAliases(records, ends.target, ends.source);
      const windowOpen = revertWindowOpen(c);
      if (!windowOpen && c.state.cutoverAt)
        c.reporter.warn(
          `writes made on ${c.spec.target.index} since the switch at ${c.state.cutoverAt} are not on ${c.state.sourceIndex} (no revert window open): readers lose sight of them`,
        );
      const forward = capture(c);
      const t = c.state.totals;
      let f: ProxyFleet | undefined;
      try {
        f = await proxies(c);
      } catch (e) {
        c.reporter.warn(
          `cannot reach the write proxies (${(e as Error).message}): rolling back without a hold${windowOpen ? '; nor can their journal say which documents left on the old index the application deleted since the switch: such documents may come back' : ''}`,
        );
      }
      const since = windowOpen && f ? await sinceSwitch(c, f) : undefined;
      let revert: { capture: LiveCapture; exactCounts: boolean } | undefined;
      if (windowOpen) {
        const rev = await reverseCapture(c, since);
        await rev.start(c.state.revertCursors);
        // Documents the migration dropped stay on the old index only, so counts prove nothing then.
        revert = {
          capture: rev,
          exactCounts:
            forward.exactCounts(t?.deadLetters ?? 0) && forward.droppedEver === 0 && (t?.dropped ?? 0) === 0,
        };
      }
      const withoutHold = async () => {
        if (!windowOpen) return moveAliases(records, ends.target, ends.source);
        const fr = await drainedRollback(c, forward, since);
        c.audit.record({ event: 'rollback-drained', freezeMs: fr.durationMs });
        return 'moved' as const;
      };
      if (!f) return withoutHold();
      const holds = readJson<{ holds?: Array<{ aliasMs?: number }> }>(c.store.journalSyncPath)?.holds ?? [];
      return rollBackUnderHold(c, { fleet: f, reserveMs: aliasReserveMs(holds), revert, withoutHold });
    },
  };
}

function summary(live: LiveCapture, sync: JournalSync): Record<string, unknown> {
  const s = live.snapshot;
  const j = sync.snapshot;
  return {
    rounds: s.rounds,
    applied: s.applied,
    coveredByJournal: s.coveredByJournal ?? 0,
    journalEntries: j.entries,
    journalCopied: j.copied,
    journalDeleted: j.deleted,
    bypass: j.bypass,
    journalLagP50Ms: percentile(j.lags, 50),
    journalLagP99Ms: percentile(j.lags, 99),
    lagP50Ms: percentile(s.lags, 50),
    lagP99Ms: percentile(s.lags, 99),
  };
}

/** Can every proxy move the application to the target cluster at the switch? Checked before anything moves. */
function moveFindings(spec: LoadedSpec, status: ProxyStatus[]): Finding[] {
  const t = spec.target.cluster;
  if (!t || !spec.proxy.moveApplication) return [];
  const out: Finding[] = [];
  for (const s of status) {
    if (!s.moveTo) {
      out.push({
        check: 'proxy.move-application',
        severity: 'block',
        message: `proxy ${s.id} was started without a target cluster: at the switch it would keep sending the application to the source cluster`,
        action: `restart \`cutover proxy\` with this spec (target.cluster is set, proxy.moveApplication is true)`,
      });
      continue;
    }
    const where = `the target cluster ${s.moveTo.url}`;
    if (s.moveTo.check === 'ok')
      out.push({
        check: 'proxy.move-application',
        severity: 'ok',
        message: `proxy ${s.id}: at the switch every request moves to ${where} (${s.moveTo.auth === 'mapped' ? 'credentials from proxy.targetAuth, answered' : 'answered; the application credentials are forwarded'})`,
      });
    else if (s.moveTo.auth === 'forward' && /^HTTP 40[13]$/.test(s.moveTo.check ?? ''))
      out.push({
        check: 'proxy.move-application',
        severity: 'warn',
        message: `proxy ${s.id}: ${where} wants credentials (${s.moveTo.check}); at the switch the application's own Authorization header is forwarded there`,
        action:
          'make sure the application user exists on the target cluster with the same roles, or set proxy.targetAuth to credentials the proxy uses there',
      });
    else
      out.push({
        check: 'proxy.move-application',
        severity: 'block',
        message: `proxy ${s.id}: ${where} does not answer as needed (${s.moveTo.check ?? 'not checked yet'}); the application cannot move there`,
        action:
          s.moveTo.auth === 'mapped'
            ? 'check proxy.targetAuth (the credentials the proxy uses on the target cluster) and the URL'
            : 'check target.cluster.url, the network from the proxy host, and TLS',
      });
  }
  return out;
}
