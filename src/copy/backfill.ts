/**
 * Copy every slice of the source into the target, `concurrency` slices at a time, resuming from checkpoints. A
 * slice is a stream of the copy's plan (ranges.ts): one source shard, or one `_seq_no` range of a shard.
 */

import type { IndexPair } from '../cluster/index-pair.js';
import type { Throttle } from '../ops/throttle.js';
import type { BulkSample } from '../ops/throttle-signals.js';
import { PreflightError } from '../store/errors.js';
import { PitRegistry } from '../store/pit-registry.js';
import { type CopyTotals, emptyTotals, type SliceCheckpoint, type StateStore } from '../store/state.js';
import type { DeadLetterSink } from './dead-letters.js';
import { type CopyRange, describeStream, sameStream } from './ranges.js';
import { PitSession, PitSliceReader, ScrollSliceReader, type SliceReader } from './reader.js';
import type { DocRef } from './slice-copier.js';
import { copySlice, emptyCheckpoint, type SliceProgress, type Versioning } from './slice-copier.js';
import { identity, type TransformFn } from './transform.js';
import { BulkWriter } from './writer.js';

export interface BackfillOptions extends IndexPair {
  /** the source's primary shards (a slice of the plan reads one of them, or a range of one) */
  slices: number;
  /** the streams: one per shard, or `_seq_no` ranges of shards (state.copyRanges) */
  plan: readonly CopyRange[];
  batchDocs: number;
  batchBytes: number;
  concurrency: number;
  /** paces and pauses every slice (copy.maxDocsPerSecond, the operator's control, the closed loop) */
  throttle: Throttle;
  keepAlive: string;
  versioning: Versioning;
  gzip: boolean;
  /** append-only: op_type=create, no versions */
  createOnly?: boolean;
  /** timestamp capture with soft deletes: such documents are not copied */
  softDeleteField?: string;
  transform: TransformFn;
  store: StateStore;
  deadLetters: DeadLetterSink;
  signal?: AbortSignal;
  onProgress?: (p: SliceProgress) => void;
  onCheckpoint?: (cp: Readonly<SliceCheckpoint>) => void;
  onNotice?: (message: string) => void;
  /** told after every bulk (the closed-loop throttle's signals) */
  onBulk?: (b: BulkSample) => void;
  onDropped?: (ids: DocRef[]) => void;
  /** awaited before each page is read (live capture: hold the backfill while catch-up is behind) */
  yieldTo?: (signal?: AbortSignal) => Promise<void>;
  /** default: the open slices of the plan, checkpoints in the state directory */
  claims?: SliceClaims;
}

export function totalsOf(cps: SliceCheckpoint[], sourceDocs: number): CopyTotals {
  const t = emptyTotals(sourceDocs);
  for (const cp of cps) {
    t.copied += cp.copied;
    t.conflicts += cp.conflicts;
    t.dropped += cp.dropped;
    t.deadLetters += cp.deadLetters;
    t.bytes += cp.bytes;
    t.retries += cp.retries;
  }
  return t;
}

/** The checkpoint of each stream of the plan; one made for another range is refused, never read as this one. */
export function loadCheckpoints(store: StateStore, plan: readonly CopyRange[]): SliceCheckpoint[] {
  return plan.map((range, i) => {
    const cp = store.loadCheckpoint(i);
    if (!cp) return { ...emptyCheckpoint(i), range };
    // Written before ranges existed: slice i was shard i, whole.
    const had = cp.range ?? { shard: i, from: 0, to: null };
    if (!sameStream(had, range))
      throw new PreflightError(
        `checkpoint ${i} (${store.checkpointPath(i)}) was made for ${describeStream(had)}, but the copy's plan says ${describeStream(range)}: the state directory was changed by hand; restore it, or start this migration again in a new state directory`,
      );
    return { ...cp, range };
  });
}

/** A slice this process copies now, and where its checkpoint goes. */
export interface Claim {
  cp: SliceCheckpoint;
  save(cp: SliceCheckpoint): Promise<void>;
  /** aborted when this process must stop copying the slice (copy.workers: its lease went to another process) */
  lost?: AbortSignal;
  /** ids the transform dropped, kept where every process's can be found, before the checkpoint moves past them */
  noteDropped?(ids: DocRef[]): Promise<void>;
  /** the slice is left (done, lost, failed or interrupted) */
  end(): Promise<void>;
}

/** Where the slices come from: this process's state directory (the default), or the board many processes share. */
export interface SliceClaims {
  /** the next slice to copy; undefined when none is left for this process */
  next(signal?: AbortSignal): Promise<Claim | undefined>;
  /** every slice's checkpoint once no slice is left */
  final(): Promise<SliceCheckpoint[]>;
}

/** One process, the checkpoints in its state directory: each open slice once, in plan order. */
export function localClaims(store: StateStore, plan: readonly CopyRange[]): SliceClaims {
  const checkpoints = loadCheckpoints(store, plan);
  const queue = checkpoints.filter((cp) => !cp.done);
  return {
    next: async () => {
      const cp = queue.shift();
      return cp && { cp, save: (c) => store.saveCheckpoint(c), end: async () => undefined };
    },
    final: async () => checkpoints,
  };
}

export async function backfill(o: BackfillOptions): Promise<SliceCheckpoint[]> {
  const caps = await o.source.capabilities();
  const claims = o.claims ?? localClaims(o.store, o.plan);
  const pit = caps.pit
    ? new PitSession(o.source, o.sourceIndex, o.keepAlive, {
        pits: new PitRegistry(o.store.pitsPath),
        side: 'source',
      })
    : undefined;
  const writer = new BulkWriter(o.target, o.targetIndex, {
    deadLetters: o.deadLetters,
    maxBytes: o.batchBytes,
    gzip: o.gzip,
    createOnly: o.createOnly,
    signal: o.signal,
    onBulk: o.onBulk,
    pacing: {
      slot: (signal) => o.throttle.slot(signal),
      beforeRetry: (n, signal) => o.throttle.take(n, signal),
    },
    onRetry: (why, n, ms) =>
      o.onNotice?.(`target refused ${n} document(s) for now (${why}); retrying in ${ms} ms`),
  });
  const readerOpts = {
    batchDocs: o.batchDocs,
    pageSize: () => o.throttle.view().batchDocs ?? o.batchDocs,
    keepAlive: o.keepAlive,
    withVersion: o.versioning === 'source-version',
    // Without a transform nothing looks inside a document: its _source goes from the page to the bulk as text.
    lean: o.transform === identity,
    signal: o.signal,
    onContextLost: (s: number) =>
      o.onNotice?.(
        `slice ${s}: search context expired (keep_alive ${o.keepAlive} outlived); reopening at the checkpoint`,
      ),
  };
  const makeReader = (cp: SliceCheckpoint, signal: AbortSignal | undefined): SliceReader => {
    const range = cp.range ?? { shard: cp.slice, from: 0, to: null };
    const opts = { ...readerOpts, range, slice: cp.slice, signal };
    return pit
      ? new PitSliceReader(o.source, pit, range.shard, o.slices, opts)
      : new ScrollSliceReader(o.source, o.sourceIndex, range.shard, opts);
  };

  let failure: unknown;
  const worker = async () => {
    while (failure === undefined) {
      const claim = await claims.next(o.signal);
      if (!claim) return;
      const signals = [o.signal, claim.lost].filter((x): x is AbortSignal => x !== undefined);
      const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
      try {
        await copySlice(claim.cp, {
          reader: makeReader(claim.cp, signal),
          writer,
          transform: o.transform,
          save: claim.save,
          limiter: o.throttle,
          deadLetters: o.deadLetters,
          versioning: o.versioning,
          sourceIndex: o.sourceIndex,
          softDeleteField: o.softDeleteField,
          signal,
          onProgress: o.onProgress,
          onCheckpoint: o.onCheckpoint,
          onDropped: async (ids) => {
            o.onDropped?.(ids);
            await claim.noteDropped?.(ids);
          },
          yieldTo: o.yieldTo,
        });
      } catch (e) {
        if (claim.lost?.aborted && !o.signal?.aborted)
          o.onNotice?.(
            `slice ${claim.cp.slice}: ${(claim.lost.reason as Error | undefined)?.message ?? 'lease lost'}; its holder continues from the checkpoint`,
          );
        else failure ??= e;
      } finally {
        await claim.end();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, o.plan.length)) }, worker));
  } finally {
    await pit?.close();
  }
  if (failure !== undefined) throw failure;
  if (o.signal?.aborted) throw o.signal.reason;
  return claims.final();
}
