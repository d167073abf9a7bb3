/**
 * One copy shared by many processes (copy.workers): the plan and every slice's checkpoint live in a NATS JetStream
 * key-value bucket, and a process copies a slice only while it holds the slice's lease. The checkpoint is the
 * lease's value, so it moves only by a compare-and-set of the slice's holder: it never says more than the holder's
 * acknowledged bulks, whoever held the slice before. A slice continued by another process restarts at that
 * checkpoint; documents written twice meanwhile are harmless, because every write carries the source's version.
 *
 * The bucket belongs to one copy (the plan's copyId): a bucket of another copy still under way under the same name
 * is refused, never joined. Once every slice is done the runner marks the plan done: workers end at once, and the
 * final checkpoints and dropped ids stay for a runner that goes on after a crash (on any machine); a later copy
 * under the same name starts the bucket afresh.
 */

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PreflightError } from '../store/errors.js';
import { CoordinationError, type HolderId, KvBucket, type Lease, LeaseTable } from '../store/kv-leases.js';
import type { CopyRange, SliceCheckpoint } from '../store/state.js';
import type { SliceClaims } from './backfill.js';
import type { DeadLetter } from './dead-letters.js';
import type { DocRef, Versioning } from './slice-copier.js';

export interface WorkersConfig {
  servers: string;
  bucket?: string;
  leaseSeconds: number;
}

/** What a worker needs to copy slices exactly as the runner would; published once by the runner. */
export interface SharedPlan {
  copyId: string;
  migration: string;
  sourceIndex: string;
  targetIndex: string;
  /** the source's primary shards */
  shards: number;
  ranges: CopyRange[];
  versioning: Versioning;
  createOnly: boolean;
  softDeleteField?: string;
  /** sha256 of the transform module (null: none): a worker with another one is refused */
  transformSha?: string | null;
  publishedAt: string;
  /** every slice was done then: the slices are gone, a worker started now ends at once */
  doneAt?: string;
}

/** A migration name as a bucket name part ([A-Za-z0-9_-]): names are lowercase, so '.' becomes 'D', one to one. */
export function bucketOf(migration: string, cfg: WorkersConfig): string {
  return cfg.bucket ?? `cutover-copy-${migration.replaceAll('.', 'D')}`;
}

export function holderId(): HolderId {
  return { id: randomUUID(), host: hostname(), pid: process.pid };
}

const sliceKey = (i: number) => `slice.${i}`;

/** How long taking a slice may keep failing (NATS unreachable or timing out) before the process gives up. */
const TAKE_PATIENCE_MS = 60_000;

function foreignBucket(name: string, had: SharedPlan): PreflightError {
  return new PreflightError(
    `the NATS bucket ${name} (copy.workers) holds the plan of another copy (${had.copyId}, ${had.sourceIndex} -> ${had.targetIndex}, published ${had.publishedAt}): if no worker of it runs any more, remove it (nats kv rm ${name}) or name another copy.workers.bucket`,
  );
}

/**
 * Before anything is created: the coordination service answers, and the bucket this copy would use is free or
 * already its own (`copyId`: the state's, undefined before the copy began).
 */
export async function checkBucket(
  cfg: WorkersConfig,
  migration: string,
  copyId: string | undefined,
): Promise<void> {
  const name = bucketOf(migration, cfg);
  const bucket = await KvBucket.open(cfg.servers, name, false);
  try {
    const had = await bucket?.get<SharedPlan>('plan');
    if (had && !had.value.doneAt && had.value.copyId !== copyId) throw foreignBucket(name, had.value);
  } finally {
    await bucket?.close();
  }
}

/**
 * Open slices in the order to take them: the first range of every shard, then the second of every shard, ...: the
 * processes spread over the shards instead of all reading the ranges of one shard first.
 */
export function interleaved(open: readonly SliceCheckpoint[]): SliceCheckpoint[] {
  const rank = new Map<number, number>();
  const seen = new Map<number, number>();
  for (const cp of open) {
    const shard = cp.range?.shard ?? cp.slice;
    const k = seen.get(shard) ?? 0;
    seen.set(shard, k + 1);
    rank.set(cp.slice, k);
  }
  return [...open].sort((a, b) => rank.get(a.slice)! - rank.get(b.slice)! || a.slice - b.slice);
}

export type Take = { lease: Lease<SliceCheckpoint> } | 'wait' | 'done';

/**
 * The runner's pauses (the operator's, a flag file's, the watchdog's, a panic), for every process of the copy (key
 * `pauses`): a worker holds a pause of its own while this lists any, so one pause stops the whole copy.
 */
export interface SharedPauses {
  pausedBy: Array<{ by: string; why: string }>;
  /** the runner that published it */
  by: HolderId;
  at: string;
}

export class SliceBoard {
  private readonly table: LeaseTable<SliceCheckpoint>;

  private constructor(
    private readonly bucket: KvBucket,
    readonly me: HolderId,
    readonly leaseMs: number,
    readonly plan: SharedPlan,
  ) {
    this.table = new LeaseTable(bucket, me, leaseMs);
  }

  get bucketName(): string {
    return this.bucket.name;
  }

  /**
   * The runner: create the bucket, its slices (from the checkpoints in the state directory, where the bucket has
   * none yet) and then the plan. A bucket holding another copy's plan is refused with what to do.
   */
  static async publish(
    cfg: WorkersConfig,
    plan: SharedPlan,
    local: readonly SliceCheckpoint[],
    me = holderId(),
    pausedBy: SharedPauses['pausedBy'] = [],
  ): Promise<SliceBoard> {
    const name = bucketOf(plan.migration, cfg);
    const bucket = await KvBucket.open(cfg.servers, name, true);
    try {
      let had = await bucket.get<SharedPlan>('plan');
      if (had && !had.value.doneAt && had.value.copyId !== plan.copyId) throw foreignBucket(name, had.value);
      // Another copy over: this one starts the bucket afresh. This copy over (its runner went on after a crash before
      // it saved the copy step): its final checkpoints and dropped ids are there, kept as they are.
      if (had?.value.doneAt && had.value.copyId !== plan.copyId) {
        await bucket.reset();
        had = undefined;
      }
      const board = new SliceBoard(bucket, me, cfg.leaseSeconds * 1000, plan);
      for (const cp of local) await board.table.ensure(sliceKey(cp.slice), cp);
      // Before the plan, so a worker that joins sees this runner's pauses (and no stale ones of a runner before it).
      await board.publishPauses(pausedBy);
      if (!had) await bucket.create('plan', plan);
      return board;
    } catch (e) {
      await bucket.close();
      throw e;
    }
  }

  /**
   * A worker: wait until the runner published the plan of `migration` (or the signal aborts). Undefined when the
   * wait ends without one.
   */
  static async join(
    cfg: WorkersConfig,
    migration: string,
    opts: {
      signal?: AbortSignal;
      onWaiting?: (bucket: string) => void;
      onError?: (e: Error) => void;
      pollMs?: number;
    } = {},
  ): Promise<SliceBoard | undefined> {
    const name = bucketOf(migration, cfg);
    let told = false;
    while (!opts.signal?.aborted) {
      const bucket = await KvBucket.open(cfg.servers, name, false);
      // Not answering yet: said, and waited on (the runner may be restarting NATS).
      const plan = await bucket?.get<SharedPlan>('plan').catch((e: unknown) => {
        opts.onError?.(e as Error);
        return undefined;
      });
      if (bucket && plan) return new SliceBoard(bucket, holderId(), cfg.leaseSeconds * 1000, plan.value);
      await bucket?.close();
      if (!told) opts.onWaiting?.(name);
      told = true;
      await sleep(opts.pollMs ?? 1000, undefined, { signal: opts.signal }).catch(() => undefined);
    }
    return undefined;
  }

  /** Every slice's checkpoint as the bucket holds it (undefined: the bucket was removed, or holds another copy). */
  async checkpoints(): Promise<SliceCheckpoint[] | undefined> {
    const plan = await this.bucket.get<SharedPlan>('plan').catch((err: unknown) => {
      if (/stream not found|bucket not found/i.test(String((err as Error).message))) return undefined;
      throw err;
    });
    if (!plan || plan.value.copyId !== this.plan.copyId) return undefined;
    const out: SliceCheckpoint[] = [];
    for (let i = 0; i < this.plan.ranges.length; i++) {
      const e = await this.table.read(sliceKey(i)).catch((err: unknown) => {
        if (/stream not found|bucket not found/i.test(String((err as Error).message))) return null;
        throw err;
      });
      if (e === null) return undefined;
      if (!e)
        throw new PreflightError(
          `the NATS bucket ${this.bucketName} has no slice ${i}: it was changed by hand`,
        );
      out.push(e.value);
    }
    return out;
  }

  /**
   * A slice to copy: the first one not done that is free, or whose holder died or stopped renewing. 'wait': every
   * slice left is held by a live process; 'done': every slice is done (or the copy is over).
   */
  async take(): Promise<Take> {
    const cps = await this.checkpoints();
    if (!cps) return 'done';
    const open = interleaved(cps.filter((cp) => !cp.done));
    if (open.length === 0) return 'done';
    for (const cp of open) {
      const lease = await this.table.tryTake(sliceKey(cp.slice), (v) => !v.done);
      if (lease) return { lease };
    }
    return 'wait';
  }

  /** The runner: its pauses as they are now, for the workers (see SharedPauses). */
  async publishPauses(pausedBy: SharedPauses['pausedBy']): Promise<void> {
    const p: SharedPauses = { pausedBy, by: this.me, at: new Date().toISOString() };
    await patiently(this.bucketName, () => this.bucket.put('pauses', p));
  }

  /** A worker: the runner's pauses (undefined: none published yet). */
  async pauses(): Promise<SharedPauses | undefined> {
    return (await this.bucket.get<SharedPauses>('pauses'))?.value;
  }

  /** Dead letters a process met, without their documents (see shared-dead-letters.ts), under a key of their own. */
  async noteDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length)
      await patiently(this.bucketName, () => this.bucket.put(`dead.${randomUUID()}`, letters));
  }

  /** Every dead letter the processes of this copy published. */
  async deadLetters(): Promise<DeadLetter[]> {
    return this.listsUnder<DeadLetter>('dead');
  }

  /** Ids the transform dropped from a slice: kept in the bucket before the checkpoint moves past them. */
  async noteDropped(slice: number, ids: DocRef[]): Promise<void> {
    const key = `dropped.${slice}.${randomUUID()}`;
    if (ids.length) await patiently(this.bucketName, () => this.bucket.put(key, ids));
  }

  async droppedIds(): Promise<DocRef[]> {
    return this.listsUnder<DocRef>('dropped');
  }

  /** Every list stored under `<prefix>.*` (appended by many processes, a key each), joined. */
  private listsUnder<T>(prefix: string): Promise<T[]> {
    return patiently(this.bucketName, async () => {
      const out: T[] = [];
      for (const k of await this.bucket.keys(`${prefix}.>`)) {
        const e = await this.bucket.get<T[]>(k);
        if (e) out.push(...e.value);
      }
      return out;
    });
  }

  /**
   * The copy is over: the plan is marked done, so a worker started late ends at once instead of waiting for a copy
   * that will not come. The slices and dropped ids stay (a runner going on after a crash reads them again).
   */
  async finish(): Promise<void> {
    const doneAt = new Date().toISOString();
    await patiently(this.bucketName, () =>
      this.bucket.put('plan', { ...this.plan, doneAt } satisfies SharedPlan),
    );
  }

  async close(): Promise<void> {
    await this.bucket.close();
  }
}

/**
 * A request to the bucket retried while NATS does not answer (a reconnect after a network cut or a process stopped
 * for a while times requests out), up to TAKE_PATIENCE_MS; a refusal that is an answer (PreflightError) is not.
 */
async function patiently<T>(
  bucket: string,
  f: () => Promise<T>,
  onError?: (e: Error) => void,
  signal?: AbortSignal,
): Promise<T> {
  const since = Date.now();
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (e instanceof PreflightError) throw e;
      // Stopped meanwhile (Ctrl-C, a lost seat): no more waiting for NATS.
      if (signal?.aborted) throw signal.reason;
      if (Date.now() - since > TAKE_PATIENCE_MS)
        throw new CoordinationError(
          `the NATS bucket ${bucket} did not answer for ${Math.round(TAKE_PATIENCE_MS / 1000)} s: ${(e as Error).message}`,
        );
      onError?.(e as Error);
      await sleep(1000, undefined, { signal }).catch(() => undefined);
    }
  }
}

/** Slices to copy one after another, taken from the board; waits while other processes hold every open one. */
export async function nextShared(
  board: SliceBoard,
  signal: AbortSignal | undefined,
  onWait?: () => void,
  onError?: (e: Error) => void,
  /** resolves when a slice of this process ends: worth looking again before the poll interval is up */
  localChange?: () => Promise<void>,
): Promise<Lease<SliceCheckpoint> | undefined> {
  for (;;) {
    if (signal?.aborted) return undefined;
    // A busy or restarting NATS server: slices held here renew on their own; taking more waits for it.
    const t = await patiently(board.bucketName, () => board.take(), onError, signal);
    if (t === 'done') return undefined;
    if (t !== 'wait') return t.lease;
    onWait?.();
    const poll = sleep(Math.min(1000, board.leaseMs / 4), undefined, { signal }).catch(() => undefined);
    await (localChange ? Promise.race([poll, localChange()]) : poll);
  }
}

/**
 * The board as backfill's source of slices: a slice is copied while its lease is held, its checkpoint saved as the
 * lease's value, and the lease released (with the last checkpoint) when the slice is left for any reason.
 */
export function sharedClaims(
  board: SliceBoard,
  opts: {
    onWait?: () => void;
    onTakeover?: (slice: number, from: HolderId) => void;
    onError?: (e: Error) => void;
    /** the bucket removed means the copy is over (workers; the runner is the one that removes it) */
    goneIsDone?: boolean;
  } = {},
): SliceClaims {
  // Slots of this process waiting while its own slices are held look again as soon as one of them ends.
  let wake: () => void = () => undefined;
  let changed = new Promise<void>((r) => {
    wake = r;
  });
  const localChange = () => changed;
  const ended = () => {
    const was = wake;
    changed = new Promise<void>((r) => {
      wake = r;
    });
    was();
  };
  return {
    next: async (signal) => {
      const lease = await nextShared(board, signal, opts.onWait, opts.onError, localChange);
      if (!lease) return undefined;
      const cp: SliceCheckpoint = { ...lease.value };
      if (lease.takenFrom) opts.onTakeover?.(cp.slice, lease.takenFrom);
      return {
        cp,
        save: (c) => lease.update({ ...c }),
        lost: lease.lost,
        noteDropped: (ids) => board.noteDropped(cp.slice, ids),
        end: async () => {
          await lease.release();
          ended();
        },
      };
    },
    final: async () => {
      const cps = await patiently(board.bucketName, () => board.checkpoints());
      // A worker: a bucket removed (by hand, or by a later copy under the same name) means this copy is over.
      if (!cps && opts.goneIsDone) return [];
      if (!cps)
        throw new PreflightError(
          `the NATS bucket ${board.bucketName} was removed before this process saw every slice done`,
        );
      return cps;
    },
  };
}
