/**
 * The copy's streams: each is one source shard, or a `_seq_no` range of one, read in `_seq_no` order with its own
 * checkpoint. Ranges of a shard are disjoint and together cover every `_seq_no` from 0 up, the last one open
 * above: a document the point in time holds has exactly one `_seq_no`, so it falls in exactly one range whatever
 * was written between this plan and the point in time. The plan is made once per migration and kept in its state:
 * a resumed copy must find the same ranges its checkpoints were made for.
 */

import type { CopyRange, MigrationState } from '../store/state.js';

export type { CopyRange };

/** A shard is split only into ranges of at least this many operations: below it a stream costs more than it saves. */
export const MIN_RANGE_OPS = 10_000;

/** One stream per shard: the plan of a copy that has checkpoints from before ranges existed, or one too small to split. */
export function wholeShards(shards: number): CopyRange[] {
  return Array.from({ length: shards }, (_, shard) => ({ shard, from: 0, to: null }));
}

/**
 * Streams for `streams` slices copied at once (copy.concurrency). With more slices than shards the spare ones go
 * to the largest shards (by their highest `_seq_no`), each cut into equal `_seq_no` widths of at least `minOps`.
 */
export function planRanges(
  maxSeqNos: readonly number[],
  streams: number,
  minOps = MIN_RANGE_OPS,
): CopyRange[] {
  const shards = maxSeqNos.length;
  const parts = new Array<number>(shards).fill(1);
  const most = (s: number) => Math.max(1, Math.floor((maxSeqNos[s]! + 1) / minOps));
  // One more range at a time to the shard whose ranges are widest now: the largest shards get the spare streams.
  for (let spare = streams - shards; spare > 0; spare--) {
    let best = -1;
    for (let s = 0; s < shards; s++) {
      if (parts[s]! >= most(s)) continue;
      if (best < 0 || (maxSeqNos[s]! + 1) / parts[s]! > (maxSeqNos[best]! + 1) / parts[best]!) best = s;
    }
    if (best < 0) break;
    parts[best]!++;
  }
  const out: CopyRange[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const k = parts[shard]!;
    const width = Math.ceil((maxSeqNos[shard]! + 1) / k);
    for (let i = 0; i < k; i++)
      out.push({ shard, from: i * width, to: i === k - 1 ? null : (i + 1) * width });
  }
  return out;
}

/** The plan a migration's state holds, or one stream per shard when it holds none (a copy begun before ranges). */
export function planOf(s: Pick<MigrationState, 'copyRanges' | 'sourceShards'>): CopyRange[] {
  return s.copyRanges ?? wholeShards(s.sourceShards ?? 0);
}

/** Whether this plan is one stream per shard (the checkpoint files are then numbered as the shards). */
export function isWholeShards(plan: readonly CopyRange[]): boolean {
  return plan.every((r, i) => r.shard === i && r.from === 0 && r.to === null);
}
