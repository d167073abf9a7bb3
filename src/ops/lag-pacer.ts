/**
 * The copy's bulks in flight follow the live capture's lag while the two share a cluster (proxy capture: the lag
 * of each batch the journal sync applies). Every request of the sync waits in the cluster's write queue behind
 * whatever the copy put there first, so the copy's share of that queue sets how far behind the application's
 * writes the target runs. As TCP does with its window: the copy starts with one bulk in flight, gains one after
 * a run of batches well under the target, and halves on a batch over half of it. The give-way of the copy
 * (capture.copyYields) still stops it outright above the target; this keeps it from getting there.
 */
import type { Throttle } from './throttle.js';

export interface PaceState {
  /** bulks the copy may have in flight */
  cap: number;
  /** batches in a row that came back well under the target */
  calm: number;
}

/** Batches in a row under a quarter of the target before the copy gets one more bulk in flight. */
const CALM_BATCHES = 3;

/** The cap after one batch of the capture took `lagMs`, never below 1 nor above `max`. */
export function nextPace(s: PaceState, lagMs: number, targetMs: number, max: number): PaceState {
  if (lagMs > targetMs / 2) return { cap: Math.max(1, Math.floor(s.cap / 2)), calm: 0 };
  if (lagMs > targetMs / 4) return { cap: Math.min(s.cap, max), calm: 0 };
  const calm = s.calm + 1;
  if (calm >= CALM_BATCHES && s.cap < max) return { cap: s.cap + 1, calm: 0 };
  return { cap: Math.min(s.cap, max), calm };
}

export class LagPacer {
  private s: PaceState = { cap: 1, calm: 0 };
  /** the highest cap it set, and how often it halved */
  high = 1;
  halvings = 0;

  constructor(
    private readonly throttle: Throttle,
    private readonly targetMs: number,
    private readonly max: number,
  ) {
    throttle.capConcurrency(1, 'the copy starts with one bulk in flight while the capture shows it keeps up');
  }

  /** One batch of the capture was applied `lagMs` after its oldest write. */
  batch(lagMs: number): void {
    const next = nextPace(this.s, lagMs, this.targetMs, this.max);
    if (next.cap < this.s.cap) this.halvings++;
    if (next.cap !== this.s.cap)
      this.throttle.capConcurrency(
        next.cap,
        `capture lag ${Math.round(lagMs)} ms (target: under ${Math.round(this.targetMs / 2)} ms): ${next.cap} bulk(s) in flight`,
      );
    this.s = next;
    this.high = Math.max(this.high, next.cap);
  }

  stop(): void {
    this.throttle.capConcurrency(undefined);
  }
}
