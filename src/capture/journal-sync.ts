/**
 * Sync from the write proxy's journal: the ids the application wrote or deleted, in the order the proxy saw them.
 * For each batch of ids the source's *current* state is copied (`_mget`, realtime, with `_seq_no`) through the one
 * versioned writer, and an id the source no longer has is deleted on the target with the tombstone rule of the id
 * reconcile (version = its source shard's `max_seq_no + 1`, read before the `_mget`): above every state the target
 * holds or may still receive, below any later re-creation. So the order of concurrent writes to one id never
 * matters, and the cost grows with the ids changed, not with the index.
 *
 * The position is saved only after the target acknowledged the batch it covers: a crash replays at most that batch,
 * which versions make harmless. A journal that was cut or edited (JournalBroken) is not trusted: the position moves
 * to its end and the whole index must be reconciled before a switch, as for a reconcile marker.
 */
import type { Cluster, Hit } from '../cluster/client.js';
import type { ShardRouter } from '../cluster/routing.js';
import { shardOfViaServer } from '../cluster/routing.js';
import type { DeadLetterSink } from '../copy/dead-letters.js';
import { type DocRef, toWriteOps, type Versioning } from '../copy/slice-copier.js';
import { identity, type TransformFn } from '../copy/transform.js';
import { addResults, type BulkWriter, emptyResult, type WriteOp, type WriteResult } from '../copy/writer.js';
import type { Reporter } from '../ops/reporter.js';
import { JournalBroken, type JournalPos, type JournalReader } from '../proxy/journal.js';
import { readJson, writeFileAtomicAsync, writeJsonAtomic } from '../store/atomic-file.js';
import { type AccountingCheck, JournalAccounting } from './journal-accounting.js';

/**
 * Told of every document entry the sync reads past `from` (a journal seq) and of what the source's realtime `_mget`
 * then found for it: the last `found` of a ref is its state once the journal was read that far.
 */
export interface PresenceWatcher {
  readonly from: number;
  entry(ref: DocRef): void;
  found(ref: DocRef, found: boolean): void;
}

/** Why the whole index must be reconciled before a switch, and the journal position that said so. */
export interface ReconcileDemand {
  seq: number;
  why: string;
  at: string;
  /** a by-query still running as a task: the reconcile waits for it to finish */
  task?: string;
}

export interface HoldReport {
  attempt: number;
  startedAt: string;
  /** runner's view: from the hold request to the last proxy's release */
  durationMs: number;
  switched: boolean;
  reason?: string;
  proxies: number;
  /** application requests the proxies queued, and the longest any of them waited */
  heldRequests: number;
  longestWaitMs: number;
  /** how each proxy's hold ended: released by this runner, or by the proxy at its deadline */
  releasedBy: string[];
  syncedInHold: number;
  /** writers bypass the proxies: the source was also write-fenced for them during the hold */
  fence?: { fenced: boolean; freezeMs?: number; pendingDeletes?: number };
  phases: Record<string, number>;
  /** the longest a proxy waited, before granting, for the writes it had already forwarded to return */
  grantWaitMs?: number;
  /**
   * The journal accounted for every source operation since the last safety-net round (journal-accounting.ts), so
   * no round ran under the hold; false: one ran (and `gaps` operations were not accounted for)
   */
  accounted?: boolean;
  gaps?: number;
  firstGap?: { shard: number; seqNo: number };
  /**
   * How the target's count under the hold was had: from the writer's answers since a count taken before the hold
   * (no refresh under it), or by refreshing and counting
   */
  targetCount?: 'tally' | 'refresh';
  /**
   * How the source's count under the hold was had: a point in time opened before the hold plus what the sync's
   * `_mget`s found for every id journaled since (source-count.ts, no refresh under it), or by refreshing and counting
   */
  sourceCount?: 'journal' | 'refresh';
  /** the journal's figure for the source when it disagreed with the target (then refreshed and counted) */
  sourceCountFromJournal?: number;
  /** ms the alias request took (the reserve the next holds keep for it) */
  aliasMs?: number;
  /** recorded before the alias request may go out, not yet completed: the run may have ended before its answer */
  aliasRequestSent?: true;
  /** completed by a later run, from where it found the aliases (the run that sent the request ended first) */
  settledByNextRun?: true;
}

export interface JournalSyncState {
  format: 1;
  pos: JournalPos;
  /** journal entries read, documents copied and deleted through it */
  entries: number;
  copied: number;
  deleted: number;
  conflicts: number;
  deadLetters: number;
  /** reconcile markers not yet satisfied by a complete id reconcile that started after them */
  demands: ReconcileDemand[];
  /** changes the safety-net rounds applied that the journal never saw (writers that bypass the proxy) */
  bypass: number;
  bypassSample: string[];
  /**
   * Each source shard's highest `_seq_no` just after the sync took its start position: a write at or below it may
   * have been journaled before that position (so never read here), and is not taken for a bypass.
   */
  startMaxSeqNos?: number[];
  /** journal entries whose write landed on the old index after the switch (concrete names) */
  lateOnOldIndex: number;
  /** ms from journaling the oldest entry of a batch to the target's acknowledgement of the batch, recent batches */
  lags: number[];
  holds: HoldReport[];
  /**
   * Proxies whose journal life is open (a start, or any entry, without a stop since): `open`, or `vanished` once
   * a reconcile was demanded because no live proxy answers to that id. Absent in states written before it.
   */
  lives?: Record<string, 'open' | 'vanished'>;
}

export interface JournalSyncOptions {
  source: Cluster;
  sourceIndex: string;
  /** names under which a journaled write concerns the source (its concrete name, its aliases) */
  sourceNames: string[];
  reader: JournalReader;
  writer: BulkWriter;
  transform: TransformFn;
  versioning: Versioning;
  deadLetters: DeadLetterSink;
  router: () => Promise<ShardRouter | null>;
  onDropped: (ids: DocRef[]) => void;
  batchDocs: number;
  statePath: string;
  /** each batch applied, with its lag (ms from journaling its oldest entry to the target's acknowledgement) */
  onBatch?: (lagMs: number) => void;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** A sync behind the journal reads up to this many times `batchDocs` entries at once. */
const MAX_BATCH_FACTOR = 8;

/**
 * The entries the next read asks for: doubled after a read that came back full (more is waiting), back to
 * `base` once one did not. Behind a busy cluster every request waits its turn in the cluster's queues behind the
 * application's own writes (an `_mget`, then a `_bulk`), so while the sync is behind, the ids per request set its
 * pace, not the requests per second; the cap keeps one batch's documents in memory bounded. (Two batches in
 * flight at once, one looked up while the other is written, was tried and made the lag worse here: one more
 * request queued behind the application's at a saturated server; docs/benchmarks.md.)
 */
export function nextBatchSize(asked: number, got: number, base: number): number {
  if (got < asked) return base;
  return Math.min(asked * 2, base * MAX_BATCH_FACTOR);
}

/** How long journaled ids are remembered to tell a bypassing write from a proxied one. */
const RECENT_MS = 120_000;
const MAX_RECENT = 500_000;
const MAX_LAGS = 2000;

export class JournalSync {
  private state: JournalSyncState;
  /** id -> when the sync last read it from the journal (bounded window) */
  private readonly recent = new Map<string, number>();
  /** id -> the `_seq_no` up to which the target holds it through this sync, and when (bounded window) */
  private readonly applied = new Map<string, { seq: number; at: number }>();
  /** ids the safety-net rounds applied, checked once the journal was read past `after` */
  private checks: Array<{ ids: string[]; after: number }> = [];
  /** the source `_seq_no`s of the journaled writes read by this process (not kept across restarts: gaps then) */
  readonly accounting = new JournalAccounting();

  private watcher?: PresenceWatcher;

  constructor(private readonly o: JournalSyncOptions) {
    this.state = readJson<JournalSyncState>(o.statePath) ?? {
      format: 1,
      pos: { seq: 0, offset: 0 },
      entries: 0,
      copied: 0,
      deleted: 0,
      conflicts: 0,
      deadLetters: 0,
      demands: [],
      bypass: 0,
      bypassSample: [],
      lateOnOldIndex: 0,
      lags: [],
      holds: [],
    };
  }

  get snapshot(): Readonly<JournalSyncState> {
    return this.state;
  }

  /**
   * Start reading at the journal's current end: called before the copy opens its point in time, with the
   * proxies alive then (their lives began before this position, so their start entries will never be read).
   */
  async startAtEnd(live: readonly string[] = []): Promise<void> {
    this.state.pos = await this.o.reader.end();
    // Read after the position: every write journaled before it was answered, so numbered, before this.
    this.state.startMaxSeqNos = (await this.o.source.shardSeqNos(this.o.sourceIndex)).map((m) => m.maxSeqNo);
    this.state.lives = Object.fromEntries(live.map((id) => [id, 'open' as const]));
    this.save();
  }

  /**
   * Proxies whose journal life is open but that are not among `live`: each may have answered a write and died
   * before its entry was durable. Read after a pass to the journal's end, so a clean stop is not mistaken.
   */
  vanished(live: readonly string[]): string[] {
    return Object.entries(this.state.lives ?? {})
      .filter(([id, s]) => s === 'open' && !live.includes(id))
      .map(([id]) => id);
  }

  /** The journal's end now (what the proxies have journaled, read or not). */
  journalEnd(): Promise<JournalPos> {
    return this.o.reader.end();
  }

  /** Report entries past `w.from` and what the source holds for them to `w`; undefined stops reporting. */
  watch(w: PresenceWatcher | undefined): void {
    this.watcher = w;
  }

  /** Demand a reconcile for proxies found vanished (once per life: a later entry from one reopens it). */
  proxiesVanished(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.state.lives ??= {};
    const lives = this.state.lives;
    for (const id of ids) lives[id] = 'vanished';
    this.demand(
      this.state.pos.seq,
      `write prox${ids.length === 1 ? 'y' : 'ies'} ${ids.join(', ')} stopped without closing the journal and did not come back: a write answered just before may not be journaled`,
    );
    this.save();
  }

  private noteLife(proxy: string, kind: string): void {
    this.state.lives ??= {};
    const lives = this.state.lives;
    if (kind === 'stop') delete lives[proxy];
    else lives[proxy] = 'open';
  }

  get reconcileNeeded(): ReconcileDemand | undefined {
    return this.state.demands[0];
  }

  /** By-query tasks the pending demands wait for (a reconcile before they finish would miss their later changes). */
  get runningTasks(): string[] {
    return this.state.demands.flatMap((d) => (d.task ? [d.task] : []));
  }

  /** A complete id reconcile that started with the journal read up to `seq` satisfies the demands up to it. */
  reconciled(seq: number): void {
    this.state.demands = this.state.demands.filter((d) => d.seq > seq);
    this.save();
  }

  /**
   * Copy the current source state of every id journaled after the position, up to `upTo` (the end at a hold) or
   * to the journal's end; returns the documents written or deleted.
   */
  sync(upTo?: JournalPos, signal?: AbortSignal): Promise<WriteResult> {
    // One pass at a time: two would read the same entries and could save the position backwards.
    const run = this.queue.then(() => this.pass(upTo, signal));
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private queue: Promise<void> = Promise.resolve();

  /**
   * ms since the start of the last pass that reached the journal's end: every write journaled before then is on
   * the target. The backfill gives way while this is large (capture.copyYields), as it does for the rounds.
   */
  behindMs(now = Date.now()): number {
    return this.caughtUpAt === undefined ? 0 : now - this.caughtUpAt;
  }

  private caughtUpAt?: number;

  private async pass(upTo?: JournalPos, signal?: AbortSignal): Promise<WriteResult> {
    const sig =
      signal && this.o.signal ? AbortSignal.any([signal, this.o.signal]) : (signal ?? this.o.signal);
    const total = emptyResult();
    const startedAt = Date.now();
    const toEnd = upTo === undefined;
    this.caughtUpAt ??= startedAt;
    // A pass ends at the journal's end as it stands now: while the application writes, chasing the end would
    // never finish, and the rounds this pass rides along with would wait for it.
    if (!upTo) upTo = await this.o.reader.end();
    // Asked for on the first entry with a `_seq_no` (null: the routing cannot be computed, nothing is accounted).
    let router: ShardRouter | null | undefined;
    let size = this.o.batchDocs;
    for (;;) {
      sig?.throwIfAborted();
      if (upTo && this.state.pos.seq >= upTo.seq) break;
      let batch: Awaited<ReturnType<JournalReader['read']>>;
      try {
        batch = await this.o.reader.read(this.state.pos, size);
      } catch (e) {
        if (!(e instanceof JournalBroken)) throw e;
        // Not trusted: whatever it lost is found by a reconcile of the whole index.
        const end = await this.o.reader.end();
        this.o.reporter.warn(
          `${e.message}; reading on from its end, and reconciling every id before the switch`,
        );
        this.demand(end.seq, e.message);
        this.state.pos = end;
        this.save();
        continue;
      }
      if (batch.entries.length === 0) break;
      size = nextBatchSize(size, batch.entries.length, this.o.batchDocs);
      const refs = new Map<string, DocRef>();
      // (shard, _seq_no) of the batch's journaled writes: accounted for once the target holds the batch.
      const numbered: Array<[number, number]> = [];
      // The lag of a batch is that of its oldest entry: how long a journaled write waited for the target.
      let oldest = Number.POSITIVE_INFINITY;
      for (const e of batch.entries) {
        if (upTo && e.seq > upTo.seq) break;
        this.state.entries++;
        this.noteLife(e.proxy, e.kind);
        oldest = Math.min(oldest, e.at);
        if (e.kind === 'reconcile') {
          if (e.index === undefined || this.concerns(e.index)) this.demand(e.seq, e.why, e.task);
          continue;
        }
        if (e.kind !== 'doc') continue;
        if (!this.concerns(e.index)) continue;
        // Remembered from when this runner read it, not when it was journaled: a sync far behind must not forget
        // an id before the round that applied it is checked (every such id would count as a bypass).
        this.remember(e.id, Date.now());
        if (e.sn !== undefined) {
          if (router === undefined) router = await this.o.router();
          if (router) numbered.push([router.shardOf(e.id, e.routing), e.sn]);
        }
        const ref: DocRef = { _id: e.id, routing: e.routing };
        refs.set(JSON.stringify([e.id, e.routing ?? null]), ref);
        if (this.watcher && e.seq > this.watcher.from) this.watcher.entry(ref);
      }
      if (refs.size > 0) {
        const r = await this.apply([...refs.values()], sig);
        Object.assign(total, addResults(total, r));
        this.state.copied += r.written;
        this.state.deleted += r.deleted;
        this.state.conflicts += r.conflicts;
        this.state.deadLetters += r.deadLetters;
        // Only now: a safety-net round passes over accounted numbers (accounted-skips.ts), so a number must
        // never be accounted before its id is on the target. A dead letter leaves the batch to the rounds.
        if (r.deadLetters === 0) for (const [shard, sn] of numbered) this.accounting.note(shard, sn);
        const lag = Date.now() - oldest;
        this.state.lags.push(lag);
        this.o.onBatch?.(lag);
        if (this.state.lags.length > MAX_LAGS) this.state.lags.splice(0, this.state.lags.length - MAX_LAGS);
      }
      // A batch read past the hold's end stops there: the rest is read again by the next sync.
      const cut = upTo !== undefined && batch.entries.at(-1)!.seq > upTo.seq;
      this.state.pos = cut ? { ...batch.next, seq: upTo.seq, offset: upTo.offset } : batch.next;
      this.save();
    }
    if (toEnd) this.caughtUpAt = startedAt;
    this.checkBypass(startedAt);
    return total;
  }

  private concerns(index: string): boolean {
    return this.o.sourceNames.includes(index);
  }

  private demand(seq: number, why: string, task?: string): void {
    this.state.demands.push({ seq, why, at: new Date().toISOString(), ...(task ? { task } : {}) });
    if (this.state.demands.length > 100) this.state.demands.splice(1, this.state.demands.length - 100);
  }

  private remember(id: string, at: number): void {
    this.recent.delete(id);
    this.recent.set(id, at);
    prune(this.recent, MAX_RECENT);
  }

  /** The current source state of these ids onto the target; absent ids become versioned deletes. */
  private async apply(refs: DocRef[], signal?: AbortSignal): Promise<WriteResult> {
    // Read before the _mget: see the module comment.
    const maxima = (await this.o.source.shardSeqNos(this.o.sourceIndex)).map((m) => m.maxSeqNo);
    // No transform: the documents' text is copied as it came (search-page.ts), never parsed.
    const got =
      this.o.transform === identity
        ? await this.o.source.mgetLean(this.o.sourceIndex, refs, signal)
        : await this.o.source.mget(this.o.sourceIndex, refs, { signal });
    const present: Hit[] = [];
    const ops: WriteOp[] = [];
    const router = await this.o.router();
    // What the target will hold once this batch is written: a present id at its _seq_no, an absent one deleted
    // above every operation its shard had seen.
    const covers: Array<[string, number]> = [];
    for (const [i, d] of got.docs.entries()) {
      const ref = refs[i]!;
      this.watcher?.found(ref, d.found);
      if (d.found) {
        present.push({ ...d, _index: this.o.sourceIndex, _routing: d._routing ?? ref.routing });
        if (typeof d._seq_no === 'number') covers.push([ref._id, d._seq_no]);
        continue;
      }
      const shard = router
        ? router.shardOf(ref._id, ref.routing)
        : await shardOfViaServer(this.o.source, this.o.sourceIndex, ref.routing ?? ref._id);
      ops.push({ kind: 'delete', id: ref._id, routing: ref.routing, version: maxima[shard]! + 1 });
      covers.push([ref._id, maxima[shard]!]);
    }
    if (present.length > 0) {
      const t = await toWriteOps(present, {
        transform: this.o.transform,
        versioning: this.o.versioning,
        sourceIndex: this.o.sourceIndex,
        deadLetters: this.o.deadLetters,
        dropAsDelete: true,
      });
      if (t.droppedIds.length) this.o.onDropped(t.droppedIds);
      ops.push(...t.ops);
    }
    const r = await this.o.writer.write(ops, signal);
    // A batch with a dead letter covers nothing: the round copies those ids again (and dead-letters them again).
    if (r.deadLetters === 0) {
      const at = Date.now();
      for (const [id, seq] of covers) {
        this.applied.delete(id);
        this.applied.set(id, { seq, at });
      }
      prune(this.applied, MAX_RECENT);
    }
    return r;
  }

  /**
   * Whether the journal read so far accounts for every source operation above the safety-net rounds' cursors, up
   * to each shard's `max_seq_no` now (read here, realtime). Only meaningful once the journal was synced past every
   * write the proxies answered (under a hold, after its drain): then "accounted" means a round would copy nothing.
   */
  async accountsFor(cursors: readonly number[]): Promise<AccountingCheck> {
    const maxima = (await this.o.source.shardSeqNos(this.o.sourceIndex)).map((m) => m.maxSeqNo);
    return this.accounting.check(cursors, maxima);
  }

  /**
   * The target holds `id` at `seqNo` or newer through this sync (the safety-net round need not copy it again).
   * Only a recent, successful sync of the id counts; anything else is copied by the round as before.
   */
  covers(id: string, seqNo: number): boolean {
    const a = this.applied.get(id);
    return a !== undefined && a.seq >= seqNo;
  }

  /**
   * The safety-net rounds applied these ids: each should have been journaled by the time the journal was read
   * past the round's end (the proxy journals within milliseconds of the cluster's answer). One that was not came
   * from a writer that bypasses the proxy: its deletes are invisible to everything but an id reconcile.
   */
  noteRoundApplied(shard: number, hits: ReadonlyArray<{ _id: string; _seq_no?: number }>): void {
    // A write numbered before the sync's start may be journaled before its start position: the first rounds read
    // from checkpoints that can lag such a write (an earlier write still in flight), and would call it a bypass.
    const before = this.state.startMaxSeqNos?.[shard] ?? -1;
    const ids = hits.filter((h) => h._seq_no === undefined || h._seq_no > before).map((h) => h._id);
    if (ids.length) this.checks.push({ ids, after: Date.now() + 1_000 });
  }

  private checkBypass(journalReadFrom: number): void {
    const now = Date.now();
    for (const [id, at] of this.recent) {
      if (now - at <= RECENT_MS) break;
      this.recent.delete(id);
    }
    for (const [id, a] of this.applied) {
      if (now - a.at <= RECENT_MS) break;
      this.applied.delete(id);
    }
    const due = this.checks.filter((c) => c.after <= journalReadFrom);
    if (due.length === 0) return;
    this.checks = this.checks.filter((c) => c.after > journalReadFrom);
    let found = 0;
    for (const c of due)
      for (const id of c.ids)
        if (!this.recent.has(id)) {
          found++;
          if (this.state.bypassSample.length < 10) this.state.bypassSample.push(id);
        }
    if (found === 0) return;
    const first = this.state.bypass === 0;
    this.state.bypass += found;
    // Their deletes cannot be seen as they happen: the switch fences the source for them (hold-switch.ts).
    this.save();
    if (first)
      this.o.reporter.warn(
        `writes bypass the proxy: ${found} change(s) on ${this.o.sourceIndex} the journal never saw (e.g. ${this.state.bypassSample.slice(0, 3).join(', ')}). Point every writer at the proxy; until then their updates are caught by the seqno rounds, their deletes only by an id scan, and the switch refuses their writes for a moment (a write freeze of the source inside the hold)`,
      );
  }

  /** After the switch: journaled writes that still landed on the old index (a client using its concrete name). */
  async lateWrites(from: JournalPos, oldIndex: string): Promise<{ count: number; sample: string[] }> {
    let pos = from;
    let count = 0;
    const sample: string[] = [];
    for (;;) {
      const b = await this.o.reader.read(pos, 5000);
      if (b.entries.length === 0) break;
      for (const e of b.entries)
        if (e.kind === 'doc' && e.index === oldIndex) {
          count++;
          if (sample.length < 10) sample.push(e.id);
        }
      pos = b.next;
    }
    this.state.lateOnOldIndex = count;
    this.save();
    return { count, sample };
  }

  /** Record a hold; it replaces the record its own alias request left (same start). */
  recordHold(h: HoldReport): void {
    this.addHold(h);
    this.save();
  }

  /**
   * The same, written off the main thread (under a hold, beside the counts). Nothing else may save this sync's
   * state until it resolves: the temporary file is one per process.
   */
  async recordHoldOffThread(h: HoldReport): Promise<void> {
    this.addHold(h);
    await writeFileAtomicAsync(this.o.statePath, `${JSON.stringify(this.state, null, 2)}\n`);
  }

  private addHold(h: HoldReport): void {
    const last = this.state.holds.at(-1);
    if (last?.aliasRequestSent && last.startedAt === h.startedAt)
      this.state.holds[this.state.holds.length - 1] = h;
    else this.state.holds.push(h);
  }

  /**
   * A run that ended between its alias request and the record of that hold: the next run, which found the aliases
   * on the target (`switched`) or still on the source, completes the record. Returns it, if there was one.
   */
  settleUnansweredHold(switched: boolean): HoldReport | undefined {
    const last = this.state.holds.at(-1);
    if (!last?.aliasRequestSent) return undefined;
    delete last.aliasRequestSent;
    last.settledByNextRun = true;
    last.switched = switched;
    if (!switched)
      last.reason =
        'the run ended under the hold, before the answer to an alias request (if it sent one); the aliases had not moved';
    this.save();
    return last;
  }

  private save(): void {
    writeJsonAtomic(this.o.statePath, this.state);
  }
}

/** Keep an insertion-ordered map (oldest first) at most `max` long. */
function prune<V>(m: Map<string, V>, max: number): void {
  while (m.size > max) {
    const first = m.keys().next().value;
    if (first === undefined) return;
    m.delete(first);
  }
}
