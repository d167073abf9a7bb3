/**
 * Live changes before the old snapshot: while background catch-up rounds run, the backfill and the id scans
 * wait whenever the rounds are further behind than a threshold (as gh-ost throttles its row copy on replication
 * lag). Lag here is what the target may be missing right now: everything changed before the last finished
 * round read its checkpoints is on the target, anything after may not be.
 */
import { sleep } from '../cluster/retry.js';

export class YieldGate {
  private loop: { startedAt: number; running: boolean; error?: unknown } | undefined;
  private lastReadAt?: number;
  private lastRoundMs = 0;
  private waiting?: Promise<void>;
  /** total time callers were held, and how many separate holds (callers waiting together count once) */
  heldMs = 0;
  holds = 0;

  /** `maxLagMs` undefined: never hold anybody */
  constructor(private readonly maxLagMs: number | undefined) {}

  loopStarted(now = Date.now()): void {
    this.loop = { startedAt: now, running: true };
  }

  loopEnded(error?: unknown): void {
    if (!this.loop) return;
    this.loop.running = false;
    if (error !== undefined) this.loop.error = error;
  }

  /** a round finished; it had read its checkpoints at `readAt` */
  roundFinished(readAt: number, now = Date.now()): void {
    this.lastReadAt = readAt;
    this.lastRoundMs = Math.max(0, now - readAt);
  }

  /**
   * Behind: over the threshold, and over what one round takes anyway. Right after a round the lag equals that
   * round's duration; holding the copy then would starve it for good whenever a round is slower than the
   * threshold. So it waits only while a backlog builds (the current round runs half again as long as the last).
   */
  private behind(max: number): boolean {
    return this.lagNowMs() > Math.max(max, 1.5 * this.lastRoundMs);
  }

  lagNowMs(now = Date.now()): number {
    return now - (this.lastReadAt ?? this.loop?.startedAt ?? now);
  }

  /**
   * Returns at once when no loop runs (under the freeze nothing waits) or the lag is small; otherwise when the
   * rounds caught up or the loop ended. A loop that died rethrows its error here, so a dead catch-up never
   * leaves the backfill waiting or copying on without it.
   */
  async wait(signal?: AbortSignal): Promise<void> {
    const max = this.maxLagMs;
    const loop = this.loop;
    if (max === undefined || !loop?.running || !this.behind(max)) return;
    this.waiting ??= (async () => {
      const from = Date.now();
      try {
        while (loop.running && this.behind(max)) await sleep(25, signal);
      } finally {
        this.heldMs += Date.now() - from;
        this.holds++;
        this.waiting = undefined;
      }
    })();
    await this.waiting;
    if (loop.error !== undefined) throw loop.error;
  }
}
