/**
 * The copy's streams: each is one source shard, or a `_seq_no` range of one, read in `_seq_no` order with its own
 * checkpoint. Ranges of a shard are disjoint and together cover every `_seq_no` from 0 up, the last one open
 * above: a document the point in time holds has exactly one `_seq_no`, so it falls in exactly one range whatever
 * was written between this plan and the point in time. The plan is made once per migration and kept in its state:
 * a resumed copy must find the same ranges its checkpoints were made for.
 */

import type { CopyRange, DateWindow, MigrationState, SliceCheckpoint } from '../store/state.js';

export type { CopyRange, DateWindow };

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

/**
 * Newest first: the span [min, max] of the date field cut into `windows` equal windows, newest first, the newest
 * open above (documents written after the plan) and the oldest open below, then the documents without the field.
 * Every document falls in exactly one window of the point in time the copy reads (its one date value; a document
 * with several values is read once per window it touches, the versions make the repeats harmless).
 */
export function planWindows(field: string, min: number, max: number, windows: number): DateWindow[] {
  const span = Math.max(1, max - min + 1);
  const n = Math.max(1, Math.min(windows, span));
  const edges = Array.from({ length: n - 1 }, (_, i) => min + Math.floor((span * (i + 1)) / n));
  const out: DateWindow[] = [];
  for (let i = n - 1; i >= 0; i--)
    out.push({ field, gte: i === 0 ? null : edges[i - 1]!, lt: i === n - 1 ? null : edges[i]! });
  out.push({ field, missing: true });
  return out;
}

/** The plan of a newest-first copy: every stream of `streams` once per window, the newest window's first. */
export function windowedPlan(windows: readonly DateWindow[], streams: readonly CopyRange[]): CopyRange[] {
  return windows.flatMap((window) => streams.map((r) => ({ ...r, window })));
}

/** Whether two streams of a plan read the same documents (a checkpoint made for one is valid for the other). */
export function sameStream(a: CopyRange, b: CopyRange): boolean {
  return (
    a.shard === b.shard &&
    a.from === b.from &&
    a.to === b.to &&
    JSON.stringify(a.window ?? null) === JSON.stringify(b.window ?? null)
  );
}

export function describeStream(r: CopyRange): string {
  const seq = `shard ${r.shard} from _seq_no ${r.from}${r.to === null ? '' : ` below ${r.to}`}`;
  if (!r.window) return seq;
  const w = r.window;
  if ('missing' in w) return `${seq}, documents without ${w.field}`;
  const iso = (ms: number) => new Date(ms).toISOString();
  return `${seq}, ${w.field} ${w.gte === null ? '' : `from ${iso(w.gte)}`}${w.gte !== null && w.lt !== null ? ' ' : ''}${w.lt === null ? '' : `before ${iso(w.lt)}`}`;
}

/**
 * How far back a newest-first copy has reached: the start of the oldest window that, with every newer one, is
 * copied on every stream; null when the newest is not done yet, `'all'` when every dated window is. Windows done
 * out of order (an older one finished while a newer one still runs) do not count: the claim is "everything newer
 * than this is on the target".
 */
export function reachedBack(cps: readonly Pick<SliceCheckpoint, 'range' | 'done'>[]): number | null | 'all' {
  const byWindow = new Map<string, { window: DateWindow; done: boolean }>();
  for (const cp of cps) {
    const w = cp.range?.window;
    if (!w) return null;
    const key = JSON.stringify(w);
    const e = byWindow.get(key) ?? { window: w, done: true };
    e.done &&= cp.done;
    byWindow.set(key, e);
  }
  let reached: number | null | 'all' = null;
  for (const { window, done } of byWindow.values()) {
    // In plan order: the newest first, the documents without the field last.
    if ('missing' in window || !done) break;
    reached = window.gte === null ? 'all' : window.gte;
  }
  return reached;
}
