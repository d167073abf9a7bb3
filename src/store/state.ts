/**
 * The persisted state of one migration. It is written atomically after every step, so a crash at any moment
 * leaves either the state before the step or after it; every step is idempotent against either.
 */
import { join } from 'node:path';
import { readJson, writeFileAtomicAsync, writeJsonAtomic } from './atomic-file.js';

/** The alias as it stood on the source before cutover: restored as is by rollback. */
export interface AliasRecord {
  alias: string;
  isWriteIndex?: boolean;
  isHidden?: boolean;
  filter?: unknown;
  routing?: string;
  indexRouting?: string;
  searchRouting?: string;
}

/** Index settings cutover changes temporarily on the target; `null` means "was unset (default)". */
export type TemporarySettings = Record<
  'index.number_of_replicas' | 'index.refresh_interval' | 'index.gc_deletes',
  string | null
>;

export type Phase =
  | 'new'
  | 'running'
  | 'awaiting-cutover'
  | 'cut-over'
  | 'rolled-back'
  | 'cleaned-up'
  | 'failed';

export interface CopyTotals {
  sourceDocs: number;
  copied: number;
  conflicts: number;
  dropped: number;
  deadLetters: number;
  bytes: number;
  retries: number;
}

export function emptyTotals(sourceDocs = 0): CopyTotals {
  return { sourceDocs, copied: 0, conflicts: 0, dropped: 0, deadLetters: 0, bytes: 0, retries: 0 };
}

/** One warm-up query before the switch: client-side ms on the new index (first run, median) and the old one. */
export interface WarmupQueryRecord {
  query: number;
  targetFirstMs: number;
  targetMedianMs: number;
  sourceMedianMs?: number;
}

export interface MigrationState {
  format: 1;
  name: string;
  phase: Phase;
  /** step name -> ISO time it completed */
  completed: Record<string, string>;
  sourceIndex?: string;
  targetIndex: string;
  /** the warm-up run before the switch (cutover.warmup) */
  warmup?: WarmupQueryRecord[];
  sourceShards?: number;
  /** copy.workers: names this copy in the shared bucket, so a restarted runner joins its own copy only */
  copyId?: string;
  /** the copy's streams, decided when the copy first started (absent: one per shard) */
  copyRanges?: CopyRange[];
  /** this migration created the target (so rollback/cleanup may reason about it) */
  createdTarget?: boolean;
  /** the target's own values, read before cutover changed them; kept until restored */
  originalSettings?: TemporarySettings;
  temporarySettingsApplied?: boolean;
  aliases?: { records: AliasRecord[]; write?: string };
  /** lifecycle (ILM/ISM) settings of the source, held back from the target until cutover */
  parkedSettings?: Record<string, unknown>;
  totals?: CopyTotals;
  copyStartedAt?: string;
  copyFinishedAt?: string;
  countGate?: { source: number; target: number; expectedTarget: number; at: string };
  cutoverAt?: string;
  rolledBackAt?: string;
  /** the old index is kept at least until then */
  retainUntil?: string;
  lastError?: { at: string; step: string; message: string };
  /** a write block may be on this index (set before the block request, cleared after the lift) */
  frozen?: { side: 'source' | 'target'; index: string; startedAt?: string; attempt?: number };
  /** revert window: the target's max_seq_no per shard at the switch; the reverse sync starts there */
  revertCursors?: number[];
  /** the reverse sync ends then; a rollback before it loses no write made after the switch */
  revertUntil?: string;
  /** proxy capture: the journal position at the switch; later writes that landed on the old index are reported */
  cutoverJournalEnd?: { seq: number; offset?: number };
  /** what the state was made for: a spec naming other clusters or indices is refused, not silently followed */
  madeFor?: { sourceCluster: string; sourceIndex: string; targetCluster: string; targetIndex: string };
  /** live capture: the target's own gc_deletes goes back only after the switch (tombstones must outlive it) */
  gcDeletesPending?: boolean;
  /** copy.workers: the save counter of the runner's seat in the bucket (run-seat.ts); the higher one is newer */
  seatSeq?: number;
  updatedAt: string;
}

/** One stream of the copy: a source shard, or a `_seq_no` range of one (src/copy/ranges.ts makes the plan). */
export interface CopyRange {
  shard: number;
  /** lowest `_seq_no` of the range */
  from: number;
  /** first `_seq_no` above the range; null: no upper bound (the last range of its shard) */
  to: number | null;
  /** newest-first copies: only the documents whose date falls in this window */
  window?: DateWindow;
}

/**
 * A time window of a newest-first copy, in epoch milliseconds: `gte` <= date < `lt` (null: unbounded), or the
 * documents without the field. The windows of a plan are disjoint and cover every document.
 */
export type DateWindow =
  | { field: string; gte: number | null; lt: number | null }
  | { field: string; missing: true };

export interface SliceCheckpoint {
  slice: number;
  /** the shard and `_seq_no` range this slice reads; absent in checkpoints of one slice per shard (slice = shard) */
  range?: CopyRange;
  /** last source _seq_no whose document is acknowledged on the target; null: nothing yet */
  after: number | null;
  done: boolean;
  copied: number;
  conflicts: number;
  dropped: number;
  deadLetters: number;
  bytes: number;
  retries: number;
  updatedAt: string;
}

/** Where every state save also goes before it counts as made (the runner's seat in the coordination service). */
export interface StateSeat {
  nextSeq(): number;
  put(state: MigrationState): Promise<void>;
}

export class StateStore {
  private seat?: StateSeat;

  constructor(readonly dir: string) {}

  /** copy.workers: from now on a save resolves once the seat holds it too (undefined: local files only). */
  seatedAt(seat: StateSeat | undefined): void {
    this.seat = seat;
  }

  /** the watchdog's pauses (red clusters) with their allocation explain, for the report */
  get watchdogPath(): string {
    return join(this.dir, 'watchdog.json');
  }

  /** copy.engine reindex: the task to find again after a crash, the attempts, the ids left out */
  get reindexPath(): string {
    return join(this.dir, 'reindex.json');
  }

  get statePath(): string {
    return join(this.dir, 'state.json');
  }
  get lockPath(): string {
    return join(this.dir, 'lock');
  }
  get auditPath(): string {
    return join(this.dir, 'audit.jsonl');
  }
  get deadLetterPath(): string {
    return join(this.dir, 'dead-letters.ndjson');
  }
  get proofWatermarksPath(): string {
    return join(this.dir, 'proof-watermarks.json');
  }
  get proofPath(): string {
    return join(this.dir, 'proof.json');
  }
  get capturePath(): string {
    return join(this.dir, 'capture.json');
  }
  /** the points in time this migration has open (pit-registry.ts) */
  get pitsPath(): string {
    return join(this.dir, 'pits.json');
  }
  get droppedIdsPath(): string {
    return join(this.dir, 'dropped-ids.ndjson');
  }
  get revertPath(): string {
    return join(this.dir, 'revert.json');
  }
  /** `rollback` asks a run still in its revert window to hand over by creating this file */
  get rollbackRequestPath(): string {
    return join(this.dir, 'rollback-requested');
  }
  get reportPath(): string {
    return join(this.dir, 'report.json');
  }
  /** the write proxy's journal (file journal), its lock, its registration and the control token */
  get journalPath(): string {
    return join(this.dir, 'proxy', 'journal.log');
  }
  /** where the runner stands in the proxy journal, and the holds of the switch */
  get journalSyncPath(): string {
    return join(this.dir, 'journal-sync.json');
  }
  get proxyLockPath(): string {
    return join(this.dir, 'proxy', 'lock');
  }
  get proxyInfoPath(): string {
    return join(this.dir, 'proxy', 'proxy.json');
  }
  get proxyTokenPath(): string {
    return join(this.dir, 'proxy', 'control.token');
  }
  /** the status server's control token (0600), shared by the runner's and the proxy's status servers */
  get statusTokenPath(): string {
    return join(this.dir, 'status', 'control.token');
  }
  /** where a running command's status server listens (address, pid): `cutover ctl` reads it */
  statusInfoPath(role: 'run' | 'proxy'): string {
    return join(this.dir, 'status', `${role}.json`);
  }
  checkpointPath(slice: number): string {
    return join(this.dir, 'checkpoints', `slice-${slice}.json`);
  }

  load(): MigrationState | undefined {
    return readJson<MigrationState>(this.statePath);
  }

  /**
   * Durable in the state directory at once; with a seat, resolved only once the seat holds it too (the seat first:
   * a crash between the two leaves the seat ahead, and the seat's copy wins at the next start). A seat lost to
   * another runner rejects (LeaseLost) and this directory is left as it was.
   */
  async save(state: MigrationState, o: { offThread?: boolean } = {}): Promise<void> {
    state.updatedAt = new Date().toISOString();
    // Off the main thread (a save under a write proxy's hold, beside other work): nothing else may save the state
    // until it resolves, since the temporary file is one per process.
    const write = async () =>
      o.offThread
        ? writeFileAtomicAsync(this.statePath, `${JSON.stringify(state, null, 2)}\n`)
        : writeJsonAtomic(this.statePath, state);
    if (!this.seat) return write();
    const seq = this.seat.nextSeq();
    const was = state.seatSeq;
    state.seatSeq = seq;
    try {
      await this.seat.put(state);
    } catch (e) {
      state.seatSeq = was;
      throw e;
    }
    await write();
  }

  loadCheckpoint(slice: number): SliceCheckpoint | undefined {
    return readJson<SliceCheckpoint>(this.checkpointPath(slice));
  }

  /** Durable when it resolves; one save per slice at a time (the slice's copier awaits each). */
  async saveCheckpoint(cp: SliceCheckpoint): Promise<void> {
    cp.updatedAt = new Date().toISOString();
    await writeFileAtomicAsync(this.checkpointPath(cp.slice), `${JSON.stringify(cp, null, 2)}\n`);
  }
}

export function newState(
  name: string,
  targetIndex: string,
  madeFor?: MigrationState['madeFor'],
): MigrationState {
  return {
    format: 1,
    name,
    phase: 'new',
    completed: {},
    targetIndex,
    madeFor,
    updatedAt: new Date().toISOString(),
  };
}
