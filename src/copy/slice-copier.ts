/**
 * Copies one slice: read a page, transform, write, and only then advance the checkpoint. The next page is read
 * while the current one is written, so reading and writing overlap without more than two pages in memory.
 */
import type { Hit } from '../cluster/client.js';
import { failpoint } from '../ops/failpoints.js';
import type { Throttle } from '../ops/throttle.js';
import type { SliceCheckpoint } from '../store/state.js';
import type { DeadLetterSink } from './dead-letters.js';
import type { SliceReader } from './reader.js';
import {
  applyTransform,
  type Doc,
  type DocMeta,
  identity,
  TransformError,
  type TransformFn,
} from './transform.js';
import { type BulkWriter, RawDoc, type WriteOp, type WriteResult } from './writer.js';

export type Versioning = 'seqno' | 'source-version';

/** A document's address: its id, and its custom routing when it has one. */
export interface DocRef {
  _id: string;
  routing?: string;
}

export interface SliceProgress {
  slice: number;
  docs: number;
  bytes: number;
  result: WriteResult;
  dropped: number;
}

export interface SliceCopyDeps {
  reader: SliceReader;
  writer: BulkWriter;
  transform: TransformFn;
  /** makes the checkpoint durable (the state directory, or the shared board under the slice's lease) */
  save: (cp: SliceCheckpoint) => Promise<void>;
  limiter: Pick<Throttle, 'take'>;
  deadLetters: DeadLetterSink;
  versioning: Versioning;
  sourceIndex: string;
  softDeleteField?: string;
  signal?: AbortSignal;
  onProgress?: (p: SliceProgress) => void;
  /** the slice's checkpoint was saved (after each bulk, and when the slice is done) */
  onCheckpoint?: (cp: Readonly<SliceCheckpoint>) => void;
  /** ids the transform dropped, told before the checkpoint moves past them (live capture keeps them) */
  onDropped?: (ids: DocRef[]) => void | Promise<void>;
  /** awaited before each page is read: live capture holds the backfill here while catch-up is behind */
  yieldTo?: (signal?: AbortSignal) => Promise<void>;
}

/** External version for a source hit: `_seq_no + 1` (never 0, never lower for a newer state of the doc). */
export function versionOf(hit: Hit, versioning: Versioning): number {
  if (versioning === 'source-version') {
    if (typeof hit._version !== 'number') throw new Error(`hit ${hit._id} has no _version`);
    return hit._version;
  }
  if (typeof hit._seq_no !== 'number')
    throw new Error(`hit ${hit._id} has no _seq_no (seq_no_primary_term missing)`);
  return hit._seq_no + 1;
}

export function emptyCheckpoint(slice: number): SliceCheckpoint {
  return {
    slice,
    after: null,
    done: false,
    copied: 0,
    conflicts: 0,
    dropped: 0,
    deadLetters: 0,
    bytes: 0,
    retries: 0,
    updatedAt: '',
  };
}

/** Transform a page into write ops; documents whose transform throws become dead letters, never vanish. */
export async function toWriteOps(
  hits: Hit[],
  deps: Pick<SliceCopyDeps, 'transform' | 'versioning' | 'sourceIndex' | 'deadLetters'> & {
    /**
     * Live capture: a document the transform now drops may have been copied in an earlier state, so it becomes a
     * versioned delete (a tombstone when absent) instead of being skipped.
     */
    dropAsDelete?: boolean;
    /** timestamp capture: documents with this field true are deleted by the application (soft delete) */
    softDeleteField?: string;
  },
): Promise<{ ops: WriteOp[]; dropped: number; droppedIds: DocRef[]; failed: number }> {
  const ops: WriteOp[] = [];
  let dropped = 0;
  const droppedIds: DocRef[] = [];
  const failed: TransformError[] = [];
  const failedHits: Hit[] = [];
  for (const hit of hits) {
    const meta: DocMeta = {
      id: hit._id,
      index: deps.sourceIndex,
      routing: hit._routing,
      seqNo: hit._seq_no,
      primaryTerm: hit._primary_term,
    };
    const version = versionOf(hit, deps.versioning);
    if (hit._raw !== undefined) {
      // Read unparsed (the lean copy path): sent on as it came when nothing needs to look inside it.
      if (deps.transform === identity && !deps.softDeleteField) {
        ops.push({ kind: 'index', id: hit._id, routing: hit._routing, version, doc: new RawDoc(hit._raw) });
        continue;
      }
      hit._source = JSON.parse(hit._raw.toString('utf8')) as Doc;
    }
    if (deps.softDeleteField && hit._source?.[deps.softDeleteField] === true) {
      // Not a drop by the transform: the application deleted it. Counted nowhere, absent from the target.
      if (deps.dropAsDelete) ops.push({ kind: 'delete', id: hit._id, routing: hit._routing, version });
      continue;
    }
    try {
      const doc = await applyTransform(deps.transform, hit._source ?? {}, meta);
      if (doc === null) {
        dropped++;
        droppedIds.push({ _id: hit._id, routing: hit._routing });
        if (deps.dropAsDelete) ops.push({ kind: 'delete', id: hit._id, routing: hit._routing, version });
      } else ops.push({ kind: 'index', id: hit._id, routing: hit._routing, version, doc });
    } catch (e) {
      if (!(e instanceof TransformError)) throw e;
      failed.push(e);
      failedHits.push(hit);
    }
  }
  if (failed.length) {
    const at = new Date().toISOString();
    deps.deadLetters.add(
      failed.map((e, i) => ({
        id: e.docId,
        index: deps.sourceIndex,
        routing: failedHits[i]?._routing,
        status: 0,
        type: 'transform_error',
        reason: e.cause instanceof Error ? e.cause.message : String(e.cause),
        doc: failedHits[i]?._source,
        at,
      })),
    );
  }
  return { ops, dropped, droppedIds, failed: failed.length };
}

export async function copySlice(cp: SliceCheckpoint, deps: SliceCopyDeps): Promise<SliceCheckpoint> {
  if (cp.done) return cp;
  let pending: Promise<Hit[]> = deps.reader.next(cp.after);
  try {
    for (;;) {
      const hits = await pending;
      if (hits.length === 0) {
        cp.done = true;
        await deps.save(cp);
        deps.onCheckpoint?.(cp);
        return cp;
      }
      const last = hits[hits.length - 1]!._seq_no;
      if (typeof last !== 'number') throw new Error('source hits carry no _seq_no');
      if (deps.yieldTo) await deps.yieldTo(deps.signal);
      pending = deps.reader.next(last);
      // The prefetch may fail while we write; its error is taken when awaited, not as an unhandled rejection.
      pending.catch(() => undefined);
      await deps.limiter.take(hits.length, deps.signal);
      const { ops, dropped, droppedIds, failed } = await toWriteOps(hits, deps);
      if (droppedIds.length) await deps.onDropped?.(droppedIds);
      const res = await deps.writer.write(ops);
      failpoint('copy.after-bulk');
      cp.after = last;
      cp.copied += res.written;
      cp.conflicts += res.conflicts;
      cp.dropped += dropped;
      cp.deadLetters += res.deadLetters + failed;
      cp.bytes += res.bytes;
      cp.retries += res.retries;
      // This page's dead letters are kept before the checkpoint moves past them (a shared copy: in the bucket).
      await deps.deadLetters.flush?.();
      await deps.save(cp);
      deps.onCheckpoint?.(cp);
      failpoint('copy.after-checkpoint');
      deps.onProgress?.({ slice: cp.slice, docs: hits.length, bytes: res.bytes, result: res, dropped });
    }
  } finally {
    await deps.reader.close();
  }
}
