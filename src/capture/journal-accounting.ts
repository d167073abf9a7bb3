/**
 * Which source operations the journal accounts for: the `_seq_no` the cluster gave each journaled write, by source
 * shard. Every operation on a shard takes the next `_seq_no`, so when each number above a point is accounted
 * for, no write came from anywhere but the proxies after that point: the journal, drained, has put every change
 * on the target, and a safety-net round over that range would find nothing to copy.
 *
 * It only ever says "accounted" when every number of the range is here; anything it does not know (a write the
 * response showed no `_seq_no` for, numbers forgotten to stay bounded, a runner restarted since) reads as a gap,
 * and a gap only means the round runs as before.
 */

/** The numbers kept per shard: beyond this the oldest are forgotten (and ranges reaching them are not accounted). */
const MAX_PER_SHARD = 200_000;

export interface AccountingCheck {
  accounted: boolean;
  /** source operations numbered above the cursors that the journal does not account for (up to `limit`) */
  gaps: number;
  /** the first shard with a gap, and the first number missing there */
  firstGap?: { shard: number; seqNo: number };
}

export class JournalAccounting {
  private readonly shards = new Map<number, Set<number>>();
  /** per shard: numbers at or below this may have been forgotten */
  private readonly forgottenUpTo = new Map<number, number>();

  constructor(private readonly maxPerShard = MAX_PER_SHARD) {}

  /** A journaled write was numbered `seqNo` on `shard`. */
  note(shard: number, seqNo: number): void {
    let s = this.shards.get(shard);
    if (!s) {
      s = new Set();
      this.shards.set(shard, s);
    }
    s.add(seqNo);
    if (s.size > this.maxPerShard) {
      // Insertion order is journal order, nearly the numbers' order: the first ones are the oldest.
      let forgot = this.forgottenUpTo.get(shard) ?? -1;
      for (const n of s) {
        if (s.size <= this.maxPerShard * 0.9) break;
        s.delete(n);
        forgot = Math.max(forgot, n);
      }
      this.forgottenUpTo.set(shard, forgot);
    }
  }

  /**
   * Numbers at or below each shard's cursor are settled (a round covered them): forget them. From the oldest on,
   * up to the first one above the cursor (called after every sync pass, so never a walk over all of them); one
   * left behind out of order is never asked about again and goes with the oldest at the bound.
   */
  settled(cursors: readonly number[]): void {
    for (const [shard, s] of this.shards) {
      const c = cursors[shard];
      if (c === undefined) continue;
      for (const n of s) {
        if (n > c) break;
        s.delete(n);
      }
    }
  }

  /** The highest n in [from, upTo] such that every number of (from, n] on `shard` is accounted for. */
  accountedUpTo(shard: number, from: number, upTo: number): number {
    const forgot = this.forgottenUpTo.get(shard) ?? -1;
    const s = this.shards.get(shard);
    if (!s) return from;
    let n = from;
    while (n < upTo && n + 1 > forgot && s.has(n + 1)) n++;
    return n;
  }

  /**
   * Does the journal account for every operation numbered in (cursors[s], maxima[s]] of each shard? Counts the
   * missing numbers up to `limit` (a range the journal cannot account for is usually missing most of it).
   */
  check(cursors: readonly number[], maxima: readonly number[], limit = 1_000): AccountingCheck {
    let gaps = 0;
    let firstGap: AccountingCheck['firstGap'];
    for (const [shard, max] of maxima.entries()) {
      const from = cursors[shard];
      if (from === undefined) return { accounted: false, gaps: Math.max(1, gaps), firstGap };
      if (max <= from) continue;
      const forgot = this.forgottenUpTo.get(shard) ?? -1;
      const s = this.shards.get(shard);
      for (let n = from + 1; n <= max && gaps < limit; n++) {
        if (n > forgot && s?.has(n)) continue;
        gaps++;
        firstGap ??= { shard, seqNo: n };
      }
    }
    return { accounted: gaps === 0, gaps, firstGap };
  }
}
