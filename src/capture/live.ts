/**
 * Live capture for `seqno` (and, through the same cursors, `timestamp`): the catch-up rounds, the delete
 * reconcile, and their persisted position. Everything goes through the one versioned writer; the position is
 * saved only after the target acknowledged what it covers, so a crash replays at most one round.
 */

import { existsSync, readFileSync } from 'node:fs';
import type { Hit } from '../cluster/client.js';
import type { IndexPair } from '../cluster/index-pair.js';
import { sleep } from '../cluster/retry.js';
import { routingTable, type ShardRouter, selfCheck } from '../cluster/routing.js';
import { FileDeadLetters } from '../copy/dead-letters.js';
import type { DocRef, Versioning } from '../copy/slice-copier.js';
import type { TransformFn } from '../copy/transform.js';
import { BulkWriter } from '../copy/writer.js';
import { delaypoint } from '../ops/failpoints.js';
import type { Reporter } from '../ops/reporter.js';
import type { Throttle } from '../ops/throttle.js';
import { appendLineDurable, readJson, writeJsonAtomic } from '../store/atomic-file.js';
import { PitRegistry } from '../store/pit-registry.js';
import type { StateStore } from '../store/state.js';
import type { AccountedSkips } from './accounted-skips.js';
import { type ReconcileResult, reconcileDeletes } from './reconcile.js';
import { type RoundResult, startCursors, tailRound } from './tail.js';
import { YieldGate } from './yield-gate.js';

export interface FreezeRecord {
  attempt: number;
  startedAt: string;
  /** from the request that set the write block to the acknowledged lift: what writers saw as refused writes */
  durationMs: number;
  switched: boolean;
  /** why a freeze was lifted without switching */
  reason?: string;
  appliedInFreeze: number;
  deletedInFreeze: number;
  /** ms the lift of the block took (from its request to its acknowledgement) */
  liftMs?: number;
  /** ms from the start of the freeze to the end of each phase (block, drain, final-round, ...) */
  phases?: Record<string, number>;
  /** deletes the counts showed pending under the freeze (found by an id scan inside the budget, or not) */
  pendingDeletes?: number;
  /** the id scan under the freeze: target ids to check, ids checked, ms it ran, ms the deadline left it */
  scan?: { targetDocs: number; checked: number; ms: number; availableMs: number };
}

/** The last complete id scan outside a freeze: how long it worked, and the source's delete counter at its start. */
export interface ScanRecord {
  startedAt: string;
  /** duration without the time it waited for catch-up (capture.copyYields) */
  workMs: number;
  deletesAtStart: number;
}

export interface CaptureState {
  format: 1;
  cursors: number[];
  rounds: number;
  /** states applied to the target by catch-up rounds */
  applied: number;
  /** versioned deletes applied (found by reconcile, or documents the transform now drops) */
  deleted: number;
  droppedByTransform: number;
  conflicts: number;
  deadLetters: number;
  reconciles: number;
  lastReconcileAt?: string;
  /** catch-up lag of recent rounds, ms (bounded) */
  lags: number[];
  freezes: FreezeRecord[];
  /** timestamp capture: the next round reads documents whose field is at least this (ISO time) */
  since?: string;
  /** more ids were dropped by the transform than the registry keeps: counts can no longer prove deletes done */
  droppedOverflow?: boolean;
  /** time the backfill and background id scans spent waiting for catch-up (capture.copyYields), and how often */
  heldBackMs?: number;
  heldBack?: number;
  lastScan?: ScanRecord;
  /**
   * proxy capture: changes the rounds found the journal sync had already applied, listed without being copied again
   * or passed over without a read (accounted for by the journal)
   */
  coveredByJournal?: number;
  /** proxy capture: rounds that read nothing and refreshed nothing (the journal accounted for every change) */
  roundsUnread?: number;
}

/** Ids kept in the dropped-by-transform registry before it gives up (memory and freeze time stay bounded). */
const MAX_DROPPED_IDS = 50_000;

const MAX_LAGS = 2000;

export interface LiveCaptureOptions extends IndexPair {
  store: StateStore;
  transform: TransformFn;
  versioning: Versioning;
  batchDocs: number;
  batchBytes: number;
  concurrency: number;
  keepAlive: string;
  gzip: boolean;
  intervalMs: number;
  reporter: Reporter;
  signal?: AbortSignal;
  /** where the position is kept: capture.json forward, revert.json for the reverse sync */
  statePath?: string;
  /**
   * which of the migration's clusters `target` is ('target' forward, 'source' for the reverse sync): the id
   * scans record their PITs under it
   */
  targetSide: 'source' | 'target';
  versionOffset?: number;
  keep?: (hits: Hit[]) => Promise<Set<string>>;
  /** what the writes are for, in messages */
  label?: string;
  /** capture.strategy timestamp */
  timestamp?: { field: string; marginSeconds: number };
  softDeleteField?: string;
  /** capture.copyYields: the backfill and background id scans wait while the rounds are further behind than this */
  yieldAboveLagMs?: number;
  /** what each round applied, page by page: the shard, and each id with the `_seq_no` it was read at */
  onApplied?: (shard: number, hits: ReadonlyArray<{ _id: string; _seq_no?: number }>) => void;
  /** background rounds wait while it is paused (the operator, the watchdog); rounds take no tokens */
  throttle?: Throttle;
  /** runs after every round outside a freeze (proxy capture: the journal sync rides along wherever rounds run) */
  afterRound?: (signal?: AbortSignal) => Promise<void>;
  /** proxy capture: changes the journal sync already applied are listed, not copied again (tail.ts) */
  covered?: (id: string, seqNo: number) => boolean;
  /** runs inside each round outside a freeze, once its checkpoints are read (proxy capture: a journal sync pass) */
  afterMarks?: (signal?: AbortSignal) => Promise<void>;
  /** proxy capture: rounds pass over what the journal accounts for */
  skips?: AccountedSkips;
}

export class LiveCapture {
  private state: CaptureState;
  private router?: ShardRouter | null;
  readonly writer: BulkWriter;
  private readonly deadLetters: FileDeadLetters;
  private previousReadAt?: number;
  private readonly gate: YieldGate;
  private readonly heldBefore: { ms: number; holds: number };
  /** every document the transform ever dropped (a superset of those dropped now), by JSON [id, routing] */
  private readonly dropped = new Set<string>();

  constructor(private readonly o: LiveCaptureOptions) {
    this.state = readJson<CaptureState>(this.path) ?? {
      format: 1,
      cursors: [],
      rounds: 0,
      applied: 0,
      deleted: 0,
      droppedByTransform: 0,
      conflicts: 0,
      deadLetters: 0,
      reconciles: 0,
      lags: [],
      freezes: [],
    };
    this.deadLetters = new FileDeadLetters(o.store.deadLetterPath);
    this.gate = new YieldGate(o.yieldAboveLagMs);
    this.heldBefore = { ms: this.state.heldBackMs ?? 0, holds: this.state.heldBack ?? 0 };
    if (!o.statePath && existsSync(o.store.droppedIdsPath))
      for (const line of readFileSync(o.store.droppedIdsPath, 'utf8').split('\n'))
        if (line) this.dropped.add(line);
    this.writer = new BulkWriter(o.target, o.targetIndex, {
      deadLetters: this.deadLetters,
      maxBytes: o.batchBytes,
      gzip: o.gzip,
      signal: o.signal,
      onBulk: (b) => o.reporter.bulk?.(b),
      onRetry: (why, n, ms) =>
        o.reporter.warn(
          `${o.targetIndex} refused ${n} ${o.label ?? 'catch-up'} write(s) for now (${why}); retrying in ${ms} ms`,
        ),
    });
  }

  get snapshot(): Readonly<CaptureState> {
    return this.state;
  }

  get started(): boolean {
    return this.state.cursors.length > 0;
  }

  /** Fix where catch-up starts; must run before the backfill opens its point in time. */
  async start(cursors?: number[]): Promise<void> {
    if (this.started) return;
    if (this.o.timestamp) this.state.since = this.sinceFrom(Date.now());
    this.state.cursors = cursors ?? (await startCursors(this.o.source, this.o.sourceIndex));
    this.save();
  }

  /**
   * Counts can prove that no delete is pending when no document was dead-lettered and the registry of dropped
   * ids is complete: then target = source - (ids dropped now), see droppedNow().
   */
  exactCounts(backfillDeadLetters: number): boolean {
    return (
      backfillDeadLetters === 0 &&
      this.state.deadLetters === 0 &&
      !this.state.droppedOverflow &&
      // A dropped id later soft-deleted would be subtracted twice (the source count already leaves it out).
      !(this.o.softDeleteField && this.dropped.size > 0)
    );
  }

  get droppedEver(): number {
    return this.dropped.size;
  }

  /** Remember ids the transform dropped, durably, before the position that covers them is saved. */
  noteDropped(refs: DocRef[]): void {
    const fresh = [...new Set(refs.map((r) => JSON.stringify([r._id, r.routing ?? null])))].filter(
      (k) => !this.dropped.has(k),
    );
    if (fresh.length === 0 || this.state.droppedOverflow) return;
    if (this.dropped.size + fresh.length > MAX_DROPPED_IDS) {
      this.state.droppedOverflow = true;
      this.save();
      return;
    }
    for (const k of fresh) this.dropped.add(k);
    appendLineDurable(this.o.store.droppedIdsPath, fresh.join('\n'));
  }

  /**
   * How many source documents the transform drops now, under the freeze after the final round: the registry
   * holds every id ever dropped, and among them exactly those on the source and not on the target are dropped
   * now (a kept state is on the target after the final round; a dropped one is not).
   */
  async droppedNow(signal?: AbortSignal): Promise<number> {
    const refs = [...this.dropped].map((k) => {
      const [id, routing] = JSON.parse(k) as [string, string | null];
      return { _id: id, routing: routing ?? undefined };
    });
    let n = 0;
    for (let i = 0; i < refs.length; i += 1000) {
      const chunk = refs.slice(i, i + 1000);
      const [src, tgt] = await Promise.all([
        this.o.source.mget(this.o.sourceIndex, chunk, { source: false, signal }),
        this.o.target.mget(this.o.targetIndex, chunk, { source: false, signal }),
      ]);
      src.docs.forEach((d, j) => {
        if (d.found && !tgt.docs[j]?.found) n++;
      });
    }
    return n;
  }

  private sinceFrom(ms: number): string {
    return new Date(ms - (this.o.timestamp?.marginSeconds ?? 0) * 1000).toISOString();
  }

  /** One catch-up round; `upTo` under the freeze (the drained maxima). */
  /** `signal` cuts the round short (the freeze budget); the cursors only move for shards finished. */
  async round(
    upTo?: number[],
    signal?: AbortSignal,
    /**
     * `readGaps`: every change made before the round began is on the target when it ends (no gap is left for a
     * later round, accounted-skips.ts); what the proof's re-checks rely on
     */
    opts: { alone?: boolean; readGaps?: boolean } = {},
  ): Promise<RoundResult & { lagMs: number }> {
    if (!upTo) await delaypoint('capture.round', both(this.o.signal, signal)); // tests: slow catch-up, never in a freeze
    const startedAt = Date.now();
    const r = await tailRound(
      {
        source: this.o.source,
        sourceIndex: this.o.sourceIndex,
        writer: this.writer,
        transform: this.o.transform,
        deadLetters: this.deadLetters,
        versioning: this.o.versioning,
        batchDocs: this.o.batchDocs,
        concurrency: this.o.concurrency,
        signal: both(this.o.signal, signal),
        saveCursor: () => this.save(),
        versionOffset: this.o.versionOffset,
        softDeleteField: this.o.softDeleteField,
        onDropped: (ids) => this.noteDropped(ids),
        onApplied: this.o.onApplied,
        covered: this.o.covered,
        skips: this.o.skips,
        deferGaps: !opts.readGaps,
        afterMarks: this.o.afterMarks ? () => this.o.afterMarks!(both(this.o.signal, signal)) : undefined,
        timestamp:
          this.o.timestamp && this.state.since
            ? { field: this.o.timestamp.field, since: this.state.since }
            : undefined,
      },
      this.state.cursors,
      upTo,
    );
    // The next pass starts at this one's start minus the margin: writes stamped while it ran are read again.
    if (this.o.timestamp) this.state.since = this.sinceFrom(startedAt);
    this.state.rounds++;
    this.state.applied += r.result.written;
    if (r.passedOver && !r.refreshed) this.state.roundsUnread = (this.state.roundsUnread ?? 0) + 1;
    if (r.covered || r.passedOver)
      this.state.coveredByJournal = (this.state.coveredByJournal ?? 0) + r.covered + r.passedOver;
    this.state.deleted += r.result.deleted;
    this.state.droppedByTransform += r.dropped;
    this.state.conflicts += r.result.conflicts;
    this.state.deadLetters += r.result.deadLetters + r.transformFailures;
    // A change made just after the previous round read its checkpoints waits for this whole round: that is the
    // lag (pause between rounds included), not this round's duration.
    const lagMs = Date.now() - (this.previousReadAt ?? r.readAt);
    this.previousReadAt = r.readAt;
    this.gate.roundFinished(r.readAt);
    this.state.lags.push(lagMs);
    if (this.state.lags.length > MAX_LAGS) this.state.lags.splice(0, this.state.lags.length - MAX_LAGS);
    this.save();
    if (!upTo && !opts.alone) await this.o.afterRound?.(both(this.o.signal, signal));
    return { ...r, lagMs };
  }

  /**
   * Find and apply deletes; incomplete when the deadline passes first. `giveWay`: the scan runs beside the
   * background rounds and waits while they are behind (never from inside the loop: it would wait on itself).
   */
  async reconcile(
    deadline?: number,
    signal?: AbortSignal,
    opts: { giveWay?: boolean; onChecked?: (checked: number) => void } = {},
  ): Promise<ReconcileResult> {
    // Outside a freeze, note where the source's delete counter stood: deletes after it may still be pending.
    const deletesAtStart =
      deadline === undefined
        ? await this.o.source.deleteTotal(this.o.sourceIndex).catch(() => undefined)
        : undefined;
    const heldBefore = this.gate.heldMs;
    const startedAt = new Date().toISOString();
    const r = await reconcileDeletes({
      source: this.o.source,
      sourceIndex: this.o.sourceIndex,
      target: this.o.target,
      targetIndex: this.o.targetIndex,
      writer: this.writer,
      router: (await this.shardRouter()) ?? undefined,
      batchDocs: this.o.batchDocs,
      keepAlive: this.o.keepAlive,
      concurrency: this.o.concurrency,
      signal: both(this.o.signal, signal),
      deadline,
      versionOffset: this.o.versionOffset,
      keep: this.o.keep,
      pits: { pits: new PitRegistry(this.o.store.pitsPath), side: this.o.targetSide },
      yieldTo: opts.giveWay ? (s) => this.yieldWhileBehind(s) : undefined,
      onChecked: opts.onChecked,
    });
    this.state.deleted += r.result.deleted;
    this.state.conflicts += r.result.conflicts;
    this.state.deadLetters += r.result.deadLetters;
    if (r.complete) {
      this.state.reconciles++;
      this.state.lastReconcileAt = new Date().toISOString();
      if (deletesAtStart !== undefined)
        this.state.lastScan = {
          startedAt,
          workMs: Math.max(0, r.durationMs - (this.gate.heldMs - heldBefore)),
          deletesAtStart,
        };
    }
    this.save();
    return r;
  }

  /**
   * The source's routing computed here, but only once it agreed with the server on a sample of every shard;
   * otherwise null, and each deleted id's shard is asked of the server.
   */
  async shardRouter(): Promise<ShardRouter | null> {
    if (this.router !== undefined) return this.router;
    try {
      const router = await routingTable(this.o.source, this.o.sourceIndex);
      const check = await selfCheck(this.o.source, this.o.sourceIndex, router);
      this.router = check.mismatches === 0 ? router : null;
      if (this.router === null)
        this.o.reporter.warn(
          `shard routing computed here disagrees with the server for ${check.mismatches} of ${check.checked} documents; asking the server for each deleted id instead`,
        );
    } catch (e) {
      this.o.reporter.warn(
        `cannot compute the source's shard routing (${(e as Error).message}); asking the server`,
      );
      this.router = null;
    }
    return this.router;
  }

  recordFreeze(f: FreezeRecord): void {
    this.state.freezes.push(f);
    this.save();
  }

  /**
   * Catch-up rounds until `stop()` says so; the backfill runs meanwhile. A round starts at most every
   * `intervalMs`: a round that took longer is followed at once by the next. Errors end the loop and are rethrown.
   */
  async background(stop: () => boolean, alsoReconcile = false): Promise<void> {
    this.gate.loopStarted();
    // The afterRound work (the proxy's journal sync) gets a loop of its own here, so neither waits for the other;
    // its rounds run alone. The first error of either ends both.
    let failed = false;
    const side = this.o.afterRound;
    const sideLoop = side
      ? (async () => {
          try {
            while (!stop() && !failed) {
              await this.whilePaused(stop, false);
              if (stop() || failed) break;
              await side(this.o.signal);
              await sleep(50, this.o.signal);
            }
          } catch (e) {
            failed = true;
            throw e;
          }
        })()
      : Promise.resolve();
    sideLoop.catch(() => undefined);
    try {
      while (!stop() && !failed) {
        // A pause pauses the rounds too (between rounds: each one's position is saved when it ends).
        await this.whilePaused(stop);
        if (stop() || failed) break;
        const startedAt = Date.now();
        await this.round(undefined, undefined, { alone: !!side });
        if (alsoReconcile && !stop()) await this.reconcile();
        const rest = this.o.intervalMs - (Date.now() - startedAt);
        for (let waited = 0; waited < rest && !stop() && !failed; waited += 50)
          await sleep(Math.min(50, rest - waited), this.o.signal);
      }
      await sideLoop;
      this.gate.loopEnded();
    } catch (e) {
      failed = true;
      await sideLoop.catch(() => undefined);
      this.gate.loopEnded(e);
      throw e;
    }
  }

  /** Wait while the throttle is paused, or until `stop()` says the work beside which the rounds run is over. */
  private async whilePaused(stop: () => boolean, say = true): Promise<void> {
    const t = this.o.throttle;
    if (!t?.view().paused) return;
    const noted = Date.now();
    while (t.view().paused && !stop()) {
      const ac = new AbortController();
      const tick = setInterval(() => stop() && ac.abort(), 50);
      try {
        await t.whilePaused(both(this.o.signal, ac.signal));
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      } finally {
        clearInterval(tick);
      }
    }
    if (say)
      this.o.reporter.info(
        `catch-up rounds resumed after a pause of ${Math.round((Date.now() - noted) / 1000)} s`,
      );
  }

  /**
   * Run `work` (the copy, an id scan, the proof) with catch-up rounds going on beside it, so the lag does not pile
   * up meanwhile; the first error of either wins.
   */
  async alongside<T>(work: () => Promise<T>, alsoReconcile = false): Promise<T> {
    let working = true;
    const rounds = this.background(() => !working, alsoReconcile).then(
      () => undefined,
      (e: unknown) => e,
    );
    let r: T;
    try {
      r = await work();
    } finally {
      working = false;
      await rounds;
    }
    const failed = await rounds;
    if (failed) throw failed;
    return r;
  }

  /**
   * Hold the caller (a backfill slice or an id scan, before it reads its next page) while the background rounds
   * are more than capture.maxLagSeconds / 2 behind (capture.copyYields): see YieldGate.
   */
  async yieldWhileBehind(signal?: AbortSignal): Promise<void> {
    const before = this.gate.holds;
    await this.gate.wait(signal);
    // Totals from the gate (callers waiting together share one hold), on top of what an earlier process saved.
    if (this.gate.holds !== before) {
      this.state.heldBackMs = this.heldBefore.ms + this.gate.heldMs;
      this.state.heldBack = this.heldBefore.holds + this.gate.holds;
    }
  }

  private get path(): string {
    return this.o.statePath ?? this.o.store.capturePath;
  }

  private save(): void {
    writeJsonAtomic(this.path, this.state);
  }
}

function both(a?: AbortSignal, b?: AbortSignal): AbortSignal | undefined {
  return a && b ? AbortSignal.any([a, b]) : (a ?? b);
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
