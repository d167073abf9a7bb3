/**
 * The runner's seat in the coordination service (copy.workers): one record in a NATS JetStream key-value bucket,
 * leased by one runner of the migration at a time, holding what a runner on another machine needs to go on: the
 * migration's state (the steps done, what was changed and must be put back, where the switch stands) and the
 * capture positions. Every state save reaches the record by a compare-and-set of the seat's holder before it
 * returns, so what a runner did next (a write block, an alias move) was in the bucket first; a runner that lost its
 * seat fails its next save and its signal is aborted at once. The capture files follow within a second: a position
 * behind is safe to resume from, because every change is applied again with its version.
 *
 * The local state directory stays a cache of the seat: at the seat's taking, whichever of the two was written last
 * (by the save counter both carry) is what the runner goes on from.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileAtomic, writeJsonAtomic } from './atomic-file.js';
import { type HolderId, KvBucket, type Lease, LeaseTable } from './kv-leases.js';
import { LockError } from './lock.js';
import type { MigrationState, StateStore } from './state.js';

export interface SeatConfig {
  servers: string;
  bucket?: string;
  leaseSeconds: number;
}

/** The files of the state directory that travel with the state (relative names); the checkpoints are the copy's. */
export const SEAT_FILES = [
  'capture.json',
  'journal-sync.json',
  'revert.json',
  'proof-watermarks.json',
  'dropped-ids.ndjson',
] as const;

/**
 * Files that can grow large (the dropped ids: 50,000 at most) travel under a key of their own, sent only when they
 * changed, so a state save under a hold never carries them; the record names the digest it goes with.
 */
const SIDE_FILES: ReadonlySet<string> = new Set(['dropped-ids.ndjson']);

/** NATS refuses messages over its max_payload (1 MB by default): the record and each side file stay under it. */
const MAX_RECORD_BYTES = 800_000;

/** How often the capture files are looked at for changes to send. */
const FILES_EVERY_MS = 1000;

export interface SeatRecord {
  /** one more on every write: the local state carries the same number (seatSeq) */
  seq: number;
  state: MigrationState | null;
  /** file name -> its text, gzipped, base64 */
  files: Record<string, string>;
  /** files too large for the record, not mirrored */
  omitted?: string[];
  /** side files (their own key, `file.<name>`) -> sha256 of the text this record goes with */
  side?: Record<string, string>;
  writtenAt: string;
}

const KEY = 'runner';

/** The bucket of a migration's seat: beside the copy's bucket (copy.workers.bucket), or named after the migration. */
export function seatBucketOf(migration: string, cfg: SeatConfig): string {
  return cfg.bucket ? `${cfg.bucket}-run` : `cutover-run-${migration.replaceAll('.', 'D')}`;
}

export interface Restored {
  /** who wrote the record this runner went on from */
  by: HolderId | null;
  writtenAt: string;
  seq: number;
  /** what the state directory had: nothing, or an older save */
  localSeq: number | undefined;
  omitted: string[];
}

export class RunSeat {
  private seq: number;
  private sentFiles = new Map<string, string>();
  private lastState: MigrationState | null;
  private timer?: NodeJS.Timeout;
  private filesBusy = false;
  private readonly packed = new Map<string, { mtimeMs: number; size: number; text: string }>();
  /** side file -> digest of the text last sent under its key */
  private readonly sentSide = new Map<string, string>();

  private constructor(
    private readonly bucket: KvBucket,
    private readonly lease: Lease<SeatRecord>,
    private readonly store: StateStore,
    record: SeatRecord,
    readonly restored: Restored | undefined,
  ) {
    this.seq = Math.max(record.seq, store.load()?.seatSeq ?? 0);
    this.lastState = record.state;
    for (const [name, text] of Object.entries(record.files)) this.sentFiles.set(name, text);
    for (const [name, sha] of Object.entries(record.side ?? {})) this.sentSide.set(name, sha);
  }

  get bucketName(): string {
    return this.bucket.name;
  }

  /** Aborted (reason: LeaseLost) once another runner holds the seat. */
  get lost(): AbortSignal {
    return this.lease.lost;
  }

  /**
   * Take the seat of `migration`: at once when it is free or its holder is a dead process of this host, after a
   * whole lease of silence when its holder is on another machine. A holder that renews is a live runner: refused
   * (LockError) with who it is. The state directory is brought up to the record when the record is newer.
   */
  static async take(
    cfg: SeatConfig,
    migration: string,
    store: StateStore,
    me: HolderId,
    opts: { signal?: AbortSignal; onWaiting?: (holder: HolderId, bucket: string) => void } = {},
  ): Promise<RunSeat> {
    const leaseMs = cfg.leaseSeconds * 1000;
    const bucket = await KvBucket.open(cfg.servers, seatBucketOf(migration, cfg), true);
    try {
      const table = new LeaseTable<SeatRecord>(bucket, me, leaseMs);
      await table.ensure(KEY, { seq: 0, state: null, files: {}, writtenAt: new Date().toISOString() });
      let lease: Lease<SeatRecord> | undefined;
      let firstRevision: number | undefined;
      while (!lease) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        lease = await table.tryTake(KEY, () => true);
        if (lease) break;
        const e = await table.read(KEY);
        if (!e?.holder) continue;
        if (firstRevision === undefined) {
          firstRevision = e.revision;
          opts.onWaiting?.(e.holder, bucket.name);
        } else if (e.revision !== firstRevision && !(await releasing(table, e.holder, leaseMs)))
          throw new LockError(
            `migration ${migration} is being run by ${e.holder.host} pid ${e.holder.pid}: it renews its seat in the NATS bucket ${bucket.name}; stop it first (a runner whose machine is gone is taken over ${cfg.leaseSeconds} s after its last renewal)`,
            undefined,
            false,
          );
        await sleep(Math.min(500, leaseMs / 6));
      }
      const record = lease.value;
      const restored = await restoreIfNewer(bucket, store, record, lease.takenFrom);
      return new RunSeat(bucket, lease, store, record, restored);
    } catch (e) {
      await bucket.close();
      throw e;
    }
  }

  /** The save counter the next state save carries, locally and in the record. */
  nextSeq(): number {
    return ++this.seq;
  }

  /** One state save, in the record before it resolves; throws LeaseLost when the seat is another runner's. */
  async put(state: MigrationState): Promise<void> {
    // A snapshot: the update is sent after those queued before it, and the runbook changes its state meanwhile.
    const snap = structuredClone(state);
    this.lastState = snap;
    if (this.lost.aborted) throw this.lost.reason;
    await this.sendSide();
    await this.lease.update(this.recordNow(snap));
  }

  /** The capture files looked at every second and sent when they changed (with the state as last saved). */
  start(): void {
    this.timer = setInterval(() => {
      if (this.filesBusy || this.lost.aborted) return;
      const changed = SEAT_FILES.some((f) =>
        SIDE_FILES.has(f) ? !this.sideSent(f) : this.fileText(f) !== this.sentFiles.get(f),
      );
      if (!changed) return;
      this.filesBusy = true;
      this.sendSide()
        .then(() => this.lease.update(this.recordNow(this.lastState)))
        .catch(() => undefined)
        .finally(() => {
          this.filesBusy = false;
        });
    }, FILES_EVERY_MS);
    this.timer.unref();
  }

  /** Give the seat up with the files as they are now: another runner takes it at once. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    if (!this.lost.aborted)
      await this.sendSide()
        .then(() => this.lease.release(this.recordNow(this.lastState)))
        .catch(() => undefined);
    await this.bucket.close();
  }

  /** The file as the record holds it; compressed again only when its size or mtime moved (the ids can be MBs). */
  private fileText(name: string): string | undefined {
    const p = join(this.store.dir, name);
    let st: { mtimeMs: number; size: number };
    try {
      st = statSync(p);
    } catch {
      this.packed.delete(name);
      return undefined;
    }
    const had = this.packed.get(name);
    if (had && had.mtimeMs === st.mtimeMs && had.size === st.size) return had.text;
    const text = gzipSync(readFileSync(p)).toString('base64');
    this.packed.set(name, { mtimeMs: st.mtimeMs, size: st.size, text });
    return text;
  }

  private sideDigest(name: string): string | undefined {
    const text = this.fileText(name);
    return text === undefined ? undefined : createHash('sha256').update(text).digest('hex');
  }

  /** The side file as it is now was sent (or found too large to send): nothing new to say about it. */
  private sideSent(name: string): boolean {
    const sha = this.sideDigest(name);
    const sent = this.sentSide.get(name);
    return sha === undefined || sent === sha || sent === `too-large:${sha}`;
  }

  /** Side files that changed since they were last sent, each under its own key, before the record naming them. */
  private async sendSide(): Promise<void> {
    for (const f of SIDE_FILES) {
      const text = this.fileText(f);
      if (text === undefined) continue;
      const sha = createHash('sha256').update(text).digest('hex');
      if (this.sentSide.get(f) === sha) continue;
      if (text.length > MAX_RECORD_BYTES) {
        this.sentSide.set(f, `too-large:${sha}`);
        continue;
      }
      await this.bucket.put(`file.${f}`, { sha, text });
      this.sentSide.set(f, sha);
    }
  }

  private recordNow(state: MigrationState | null): SeatRecord {
    const files: Record<string, string> = {};
    const side: Record<string, string> = {};
    const omitted: string[] = [];
    let size = Buffer.byteLength(JSON.stringify(state ?? null));
    for (const f of SEAT_FILES) {
      const text = this.fileText(f);
      if (text === undefined) continue;
      if (SIDE_FILES.has(f)) {
        const sha = this.sentSide.get(f);
        // Too large for its key, or not sent yet: said at a restore, never restored stale.
        if (sha && sha === this.sideDigest(f)) side[f] = sha;
        else omitted.push(f);
        continue;
      }
      if (size + text.length > MAX_RECORD_BYTES) {
        omitted.push(f);
        continue;
      }
      size += text.length;
      files[f] = text;
    }
    this.sentFiles = new Map(Object.entries(files));
    return {
      seq: state?.seatSeq ?? this.seq,
      state,
      files,
      ...(Object.keys(side).length ? { side } : {}),
      ...(omitted.length ? { omitted } : {}),
      writtenAt: new Date().toISOString(),
    };
  }
}

/**
 * A holder seen writing may be letting the seat go (a run ending, a revert window handing over to rollback): it is
 * looked at once more a moment later before it counts as a live runner.
 */
async function releasing(table: LeaseTable<SeatRecord>, holder: HolderId, leaseMs: number): Promise<boolean> {
  await sleep(Math.min(1000, leaseMs / 3));
  const now = await table.read(KEY);
  return !now?.holder || now.holder.id !== holder.id;
}

/** The record's state and files written into a state directory; files the record does not hold are removed. */
export async function writeSeatFiles(
  bucket: KvBucket,
  store: StateStore,
  record: SeatRecord,
): Promise<string[]> {
  mkdirSync(store.dir, { recursive: true });
  const omitted = [...(record.omitted ?? [])];
  for (const f of SEAT_FILES) {
    const p = join(store.dir, f);
    let text = record.files[f];
    const sha = record.side?.[f];
    if (sha) {
      const e = await bucket.get<{ sha: string; text: string }>(`file.${f}`);
      // Another runner's newer text under the key than this record names: not this record's, not restored.
      if (e?.value.sha === sha) text = e.value.text;
      else omitted.push(f);
    }
    if (text !== undefined) writeFileAtomic(p, gunzipSync(Buffer.from(text, 'base64')).toString('utf8'));
    else if (!omitted.includes(f)) rmSync(p, { force: true });
  }
  writeJsonAtomic(store.statePath, record.state);
  return omitted;
}

/** The seat as it is, read without taking it (status on another machine); undefined when there is none yet. */
export async function peekSeat(
  cfg: SeatConfig,
  migration: string,
): Promise<
  | {
      record: SeatRecord;
      holder: HolderId | null;
      bucket: string;
      /** the record's state and files into a state directory */
      write(store: StateStore): Promise<void>;
      close(): Promise<void>;
    }
  | undefined
> {
  const bucket = await KvBucket.open(cfg.servers, seatBucketOf(migration, cfg), false);
  if (!bucket) return undefined;
  try {
    const e = await new LeaseTable<SeatRecord>(bucket, { id: '', host: '', pid: 0 }, 0).read(KEY);
    if (!e?.value.state) return undefined;
    const record = e.value;
    return {
      record,
      holder: e.holder,
      bucket: bucket.name,
      write: async (store) => {
        await writeSeatFiles(bucket, store, record);
      },
      close: () => bucket.close(),
    };
  } catch (err) {
    await bucket.close();
    throw err;
  }
}

/**
 * The record is newer than the state directory (another machine ran the migration since, or this one has none):
 * its state and files replace the directory's. Files the record does not hold were not there: removed.
 */
async function restoreIfNewer(
  bucket: KvBucket,
  store: StateStore,
  record: SeatRecord,
  by: HolderId | null,
): Promise<Restored | undefined> {
  if (!record.state) return undefined;
  const local = store.load();
  if (local && (local.seatSeq ?? 0) >= record.seq) return undefined;
  const omitted = await writeSeatFiles(bucket, store, record);
  return { by, writtenAt: record.writtenAt, seq: record.seq, localSeq: local?.seatSeq, omitted };
}
