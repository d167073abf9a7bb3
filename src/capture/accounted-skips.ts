/**
 * Proxy capture: a safety-net round passes over the `_seq_no`s the journal accounts for instead of reading them.
 * A number is accounted only once the journal sync has put that write's id on the target (journal-sync.ts notes
 * it after the target acknowledged the batch), so moving a shard's cursor over an accounted range keeps the
 * cursor's promise: every operation at or below it is on the target. Such a round costs one read of the shards'
 * checkpoints instead of a refresh of the application's index and a listing of every change.
 *
 * A missing number is either a write whose answer is still on its way into the journal (the cluster numbers a
 * write before it answers; the proxy journals after) or one that bypassed the proxies. The first fills in within
 * milliseconds, so the cursor moves up to the gap and the gap is left to later rounds for at most `graceMs`; an
 * older one is read the usual way (a bypassing write is then found as before, at most `graceMs` later). A shard
 * nothing is known of in this process (a runner restarted: the accounting is not kept) is read, never deferred.
 *
 * The lag stays honest: a shard whose cursor stopped below its marks is only as current as the latest round whose
 * marks its cursor has reached (`coveredUntil`).
 */

export interface SkipDecision {
  /** the cursor may move here without reading (from <= to <= upTo) */
  to: number;
  /** the rest, (to, upTo], must be read this round; false: nothing is left, or its gap may still fill */
  read: boolean;
}

interface ShardView {
  /** every change made before this time is on the target */
  covered: number;
  /** marks of rounds the cursor has not reached yet, oldest first: the shard is covered until one is reached */
  pending: Array<{ upTo: number; readAt: number }>;
  /** the first number missing, and the round that first found it missing */
  gap?: { seqNo: number; since: number };
}

/** Pending marks kept per shard: a shard deferred this many rounds in a row is simply read. */
const MAX_PENDING = 64;

export class AccountedSkips {
  private readonly shards = new Map<number, ShardView>();
  /** shard-rounds passed over entirely, and shard-rounds whose gap was left for later */
  skipped = 0;
  deferred = 0;

  constructor(
    /** the highest n in [from, upTo] with every number of (from, n] accounted for */
    private readonly accountedUpTo: (shard: number, from: number, upTo: number) => number,
    private readonly graceMs: number,
  ) {}

  /**
   * A round that read its marks at `readAt` found shard `shard` at cursor `from` with marks `upTo`. `defer` false:
   * a gap is read now, not left for later (a round whose end must cover everything made before it started).
   */
  decide(shard: number, from: number, upTo: number, readAt: number, defer = true): SkipDecision {
    if (upTo <= from) {
      this.caughtUp(shard, readAt);
      return { to: from, read: false };
    }
    const to = Math.min(upTo, Math.max(from, this.accountedUpTo(shard, from, upTo)));
    if (to >= upTo) {
      this.caughtUp(shard, readAt);
      this.skipped++;
      return { to, read: false };
    }
    const v = this.shards.get(shard);
    if (!v || v.pending.length >= MAX_PENDING) return { to, read: true };
    const missing = to + 1;
    if (v.gap?.seqNo !== missing) v.gap = { seqNo: missing, since: readAt };
    if (!defer || readAt - v.gap.since >= this.graceMs) return { to, read: true };
    v.pending.push({ upTo, readAt });
    while (v.pending[0] && v.pending[0].upTo <= to) v.covered = v.pending.shift()!.readAt;
    this.deferred++;
    return { to, read: false };
  }

  /** The shard's cursor reached the marks read at `readAt` (read, or passed over). */
  caughtUp(shard: number, readAt: number): void {
    this.shards.set(shard, { covered: readAt, pending: [] });
  }

  /** Every change made before this time is on the target once the round that read its marks at `readAt` ends. */
  coveredUntil(readAt: number): number {
    let t = readAt;
    for (const v of this.shards.values()) t = Math.min(t, v.covered);
    return t;
  }
}
