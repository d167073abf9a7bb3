/**
 * Catch-up by `_seq_no`: every write to a shard gets the next sequence number, so "what changed since the last
 * round" is the range (cursor, G] of each primary shard, where G is a checkpoint read *before* a refresh: every
 * operation numbered ≤ G has been processed on the primary, so after the refresh it is visible (a plain
 * `_seq_no > cursor` read could see seq 60 before seq 50 finished and skip 50 forever). A document changed again
 * since carries a number above G and is simply read in a later round. Writes go through the one versioned writer
 * (version = _seq_no + 1), so a round replayed after a crash, or racing the backfill, can never make a document
 * older.
 */
import type { Cluster, Hit, SearchResponse } from '../cluster/client.js';
import { ClusterError } from '../cluster/errors.js';
import { TRANSPORT_RETRY, withRetry } from '../cluster/retry.js';
import type { DeadLetterSink } from '../copy/dead-letters.js';
import { IncompletePageError } from '../copy/reader.js';
import { type DocRef, toWriteOps, type Versioning } from '../copy/slice-copier.js';
import { identity, type TransformFn } from '../copy/transform.js';
import { addResults, type BulkWriter, emptyResult, type WriteResult } from '../copy/writer.js';
import { failpoint } from '../ops/failpoints.js';
import type { AccountedSkips } from './accounted-skips.js';

export interface TailDeps {
  source: Cluster;
  sourceIndex: string;
  writer: BulkWriter;
  transform: TransformFn;
  deadLetters: DeadLetterSink;
  versioning: Versioning;
  batchDocs: number;
  concurrency: number;
  signal?: AbortSignal;
  /** persist a shard's cursor once everything up to it is acknowledged on the target */
  saveCursor: (shard: number, seqNo: number) => void;
  /** added to every version: the reverse sync writes above anything the old index holds */
  versionOffset?: number;
  /**
   * timestamp capture: select documents whose `field` is at least `since` instead of by `_seq_no` cursor (every
   * shard is read from the start of its sequence up to the visible checkpoint; cursors are left alone)
   */
  timestamp?: { field: string; since: string };
  softDeleteField?: string;
  onDropped?: (ids: DocRef[]) => void;
  /** each page applied, with its shard (proxy capture: tells writes the journal never saw) */
  onApplied?: (shard: number, hits: ReadonlyArray<{ _id: string; _seq_no?: number }>) => void;
  /**
   * proxy capture: true when the target already holds this id at this `_seq_no` or newer (the journal sync copied
   * it). Pages are then read without `_source`, and only the ids not covered are fetched and written: a round
   * costs a read of ids for writes that came through the proxy instead of a second copy of each.
   */
  covered?: (id: string, seqNo: number) => boolean;
  /** runs after the checkpoints are read, before the pages (proxy capture: a journal sync pass, to cover them) */
  afterMarks?: () => Promise<void>;
  /**
   * proxy capture: what the journal accounts for is passed over, not read (accounted-skips.ts); only in rounds that
   * read their own marks, never under a freeze or a hold
   */
  skips?: AccountedSkips;
  /** false: a gap the journal does not account for is read this round, never left for a later one */
  deferGaps?: boolean;
}

export interface RoundResult {
  /** documents read from the source this round */
  read: number;
  /** changes the journal sync had already applied (proxy capture): listed, not read again */
  covered: number;
  result: WriteResult;
  /** documents the transform now drops (applied as versioned deletes) */
  dropped: number;
  transformFailures: number;
  /**
   * when the checkpoints were read: every change older than this is on the target once the round ends (earlier
   * when a shard's gap was left for a later round: accounted-skips.ts)
   */
  readAt: number;
  /** changes the journal accounted for, passed over without a read (proxy capture) */
  passedOver: number;
  /** the round refreshed the source after reading its checkpoints (it skips that when no shard moved) */
  refreshed: boolean;
  durationMs: number;
}

/** The highest `_seq_no` per shard that a refresh made after this call is guaranteed to show. */
export async function visibleUpTo(source: Cluster, index: string, drained = false): Promise<number[]> {
  const marks = await source.shardSeqNos(index);
  // Under the write freeze nothing new can start, so wait for the stragglers instead of stopping short of them.
  if (drained && marks.some((m) => m.localCheckpoint !== m.maxSeqNo)) return [];
  return marks.map((m) => Math.min(m.globalCheckpoint, m.localCheckpoint));
}

/**
 * One round over every shard. `upTo` may be given (under the freeze, the drained maxima); otherwise it is read
 * here. Cursors advance in place.
 */
export async function tailRound(d: TailDeps, cursors: number[], upTo?: number[]): Promise<RoundResult> {
  const readAt = Date.now();
  const marks = upTo ?? (await visibleUpTo(d.source, d.sourceIndex));
  if (!upTo) await d.afterMarks?.();
  const from = (shard: number) => (d.timestamp ? -1 : (cursors[shard] ?? -1));
  const skips = !upTo && !d.timestamp ? d.skips : undefined;
  let passedOver = 0;
  const queue = marks
    .map((g, shard) => ({ shard, g }))
    .filter((s) => {
      if (!skips) return s.g > from(s.shard);
      const at = from(s.shard);
      const k = skips.decide(s.shard, at, s.g, readAt, d.deferGaps !== false);
      if (k.to > at) {
        passedOver += k.to - at;
        cursors[s.shard] = k.to;
        d.saveCursor(s.shard, k.to);
      }
      return k.read;
    });
  // Nothing to read on any shard (an idle source, or all accounted for): spare it the refresh too.
  if (queue.length > 0) await d.source.refresh(d.sourceIndex);
  const out: RoundResult = {
    refreshed: queue.length > 0,
    read: 0,
    covered: 0,
    passedOver,
    result: emptyResult(),
    dropped: 0,
    transformFailures: 0,
    readAt,
    durationMs: 0,
  };
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      let after = from(s.shard);
      for (;;) {
        const listed = await page(d, s.shard, after, s.g, !!d.covered);
        if (listed.length === 0) break;
        const hits = d.covered ? await uncovered(d, s.shard, listed, after, s.g) : listed;
        const { ops, dropped, droppedIds, failed } = await toWriteOps(hits, { ...d, dropAsDelete: true });
        if (droppedIds.length) d.onDropped?.(droppedIds);
        if (d.versionOffset) for (const op of ops) op.version += d.versionOffset;
        out.result = addResults(out.result, await d.writer.write(ops, d.signal));
        failpoint('tail.after-bulk');
        d.onApplied?.(s.shard, hits);
        out.read += hits.length;
        out.covered += listed.length - hits.length;
        out.dropped += dropped;
        out.transformFailures += failed;
        after = listed[listed.length - 1]!._seq_no!;
        // A short page is the last one of a bounded range: no need to ask again (saves a search per shard).
        if (listed.length < d.batchDocs) break;
      }
      if (!d.timestamp) {
        cursors[s.shard] = s.g;
        d.saveCursor(s.shard, s.g);
        skips?.caughtUp(s.shard, readAt);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(d.concurrency, queue.length)) }, worker));
  // A shard whose gap was left for later is only as current as the last round whose marks its cursor reached.
  if (skips) out.readAt = skips.coveredUntil(readAt);
  out.durationMs = Date.now() - readAt;
  return out;
}

/**
 * The hits of a listed page the journal sync has not covered, with their `_source`, read again by id within the
 * same range: one changed since (above `upTo`) is left to a later round, one deleted since is gone, as a plain
 * page would have missed it a moment later.
 */
async function uncovered(
  d: TailDeps,
  shard: number,
  listed: Hit[],
  after: number,
  upTo: number,
): Promise<Hit[]> {
  const ids = listed.filter((h) => !d.covered!(h._id, h._seq_no!)).map((h) => h._id);
  if (ids.length === 0) return [];
  return page(d, shard, after, upTo, false, ids);
}

/**
 * One page of shard `shard` in `(after, upTo]`, in `_seq_no` order (without `_source` when `listOnly`, limited to
 * `ids` when given); retried like every read.
 */
async function page(
  d: TailDeps,
  shard: number,
  after: number,
  upTo: number,
  listOnly = false,
  ids?: string[],
): Promise<Hit[]> {
  const seqRange = { range: { _seq_no: { gt: after, lte: upTo } } };
  const filter: unknown[] = [seqRange];
  if (d.timestamp) filter.unshift({ range: { [d.timestamp.field]: { gte: d.timestamp.since } } });
  if (ids) filter.push({ ids: { values: ids } });
  // Nothing looks inside the documents (no transform, no soft-delete field): their text is copied as it came.
  const lean = !listOnly && d.transform === identity && !d.softDeleteField;
  return withRetry(
    async () => {
      const body = {
        size: ids ? ids.length : d.batchDocs,
        ...(listOnly ? { _source: false } : {}),
        sort: [{ _seq_no: 'asc' }],
        seq_no_primary_term: true,
        version: d.versioning === 'source-version' || undefined,
        track_total_hits: false,
        query: filter.length === 1 ? seqRange : { bool: { filter } },
      };
      // PIT refuses `preference`; without a PIT each page is a fresh search of this one shard.
      const preference = { preference: `_shards:${shard}` };
      const res: SearchResponse = lean
        ? await d.source.searchLean(d.sourceIndex, body, d.signal, preference)
        : await d.source.search(d.sourceIndex, body, preference, d.signal);
      if (res._shards.failed > 0)
        throw new IncompletePageError(
          `catch-up of shard ${shard}: ${res._shards.failed} of ${res._shards.total} shards failed`,
        );
      return res.hits.hits;
    },
    (e) => e instanceof IncompletePageError || (e instanceof ClusterError && e.transient),
    TRANSPORT_RETRY,
    { signal: d.signal },
  );
}

/** Cursors where the catch-up starts: read before the backfill's point in time opens. */
export async function startCursors(source: Cluster, index: string): Promise<number[]> {
  const marks = await visibleUpTo(source, index);
  // The refresh makes everything ≤ these marks visible to the backfill's PIT, opened after it.
  await source.refresh(index);
  return marks;
}
