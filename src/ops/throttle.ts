/**
 * The copy's throttle: one per migration process, shared by every slice. It keeps two rules: a page is written
 * only when the throttle is not paused by anyone and the token bucket at the current rate has room, and no more
 * of the copy's bulks are in flight at once than its concurrency limit (at most copy.concurrency). Who changes
 * the rate or pauses (the operator's control API, a flag file, the watchdog, the closed-loop decision) is not
 * decided here; each change names who made it and why, so the log, the dashboard and /metrics can say it.
 */
import { sleep } from '../cluster/retry.js';

/**
 * Who may pause: each holds its own pause, and the copy runs only when none holds one. `runner`: a worker of a
 * shared copy (copy.workers) while the runner is paused by any of the others.
 */
export type PauseSource = 'operator' | 'flag-file' | 'watchdog' | 'panic' | 'runner';

export interface ThrottleView {
  paused: boolean;
  /** who holds a pause, with why */
  pausedBy: Array<{ by: PauseSource; why: string; since: string }>;
  /** documents per second the copy may write now; 0 = unlimited */
  rate: number;
  /** the highest rate allowed (copy.maxDocsPerSecond, or the operator's `rate N`); 0 = none */
  ceiling: number;
  /** the closed-loop decision never goes below this (when it limits at all) */
  floor: number;
  /** documents per page and bulk, when the operator changed it (undefined: the spec's copy.batchDocs) */
  batchDocs?: number;
  /** the copy's bulks allowed in flight at once now, and the most (copy.concurrency) */
  concurrency: number;
  maxConcurrency: number;
  /**
   * a lower limit the live capture sets while it runs beside the copy (proxy capture: the journal sync's lag), and
   * why; the copy keeps to the smaller of the two
   */
  captureCap?: { concurrency: number; reason: string };
  /** the closed loop's signals over their thresholds at its last reading (empty: all clear, or no loop) */
  signalsOver: Array<{ signal: string; side: string }>;
  /** why the rate is what it is, in words */
  reason: string;
  changedAt: string;
}

export type ThrottleListener = (v: ThrottleView, change: string) => void;

export class Throttle {
  private tokens: number;
  private last = Date.now();
  private readonly pauses = new Map<PauseSource, { why: string; since: string }>();
  private v: Omit<ThrottleView, 'paused' | 'pausedBy' | 'signalsOver'>;
  private readonly listeners = new Set<ThrottleListener>();
  private wake?: () => void;
  private inFlight = 0;
  private over: Array<{ signal: string; side: string }> = [];
  private readonly slotWaiters: Array<() => void> = [];

  constructor(o: { ceiling: number; floor?: number; concurrency?: number }) {
    const conc = Math.max(1, o.concurrency ?? 1);
    this.v = {
      rate: o.ceiling,
      ceiling: o.ceiling,
      floor: o.floor ?? 50,
      concurrency: conc,
      maxConcurrency: conc,
      reason: o.ceiling > 0 ? `copy.maxDocsPerSecond = ${o.ceiling}` : 'unthrottled',
      changedAt: new Date().toISOString(),
    };
    this.tokens = o.ceiling;
  }

  view(): ThrottleView {
    return {
      ...this.v,
      ...(this.cap ? { captureCap: { ...this.cap } } : {}),
      signalsOver: [...this.over],
      paused: this.pauses.size > 0,
      pausedBy: [...this.pauses].map(([by, p]) => ({ by, ...p })),
    };
  }

  onChange(l: ThrottleListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  pause(by: PauseSource, why: string): void {
    if (this.pauses.has(by)) return;
    this.pauses.set(by, { why, since: new Date().toISOString() });
    this.changed(`paused by ${by}: ${why}`);
  }

  resume(by: PauseSource, why = 'resumed'): void {
    if (!this.pauses.delete(by)) return;
    this.changed(
      `${by} ${why}${this.pauses.size ? ` (still paused by ${[...this.pauses.keys()].join(', ')})` : ''}`,
    );
  }

  /** The ceiling: copy.maxDocsPerSecond at start, the operator's `rate N` later (0 = none). */
  setCeiling(n: number, reason: string): void {
    if (!Number.isFinite(n) || n < 0) throw new RangeError(`rate must be a number >= 0, got ${n}`);
    this.v.ceiling = n;
    this.setRate(n, reason);
  }

  /** The current rate, kept within [floor, ceiling] (a ceiling of 0 means none). */
  setRate(n: number, reason: string): void {
    const c = this.v.ceiling;
    let r = Math.max(0, n);
    if (c > 0) r = r === 0 ? c : Math.min(r, c);
    if (r > 0) r = Math.max(Math.min(this.v.floor, c || this.v.floor), r);
    if (r === this.v.rate && reason === this.v.reason) return;
    this.v.rate = r;
    this.v.reason = reason;
    this.tokens = Math.min(this.tokens, r);
    this.changed(`rate ${r === 0 ? 'unlimited' : `${r} docs/s`}: ${reason}`);
  }

  /** Bulks in flight at once, kept within [1, copy.concurrency]. */
  setConcurrency(n: number, reason: string): void {
    const c = Math.min(this.v.maxConcurrency, Math.max(1, Math.round(n)));
    if (c === this.v.concurrency) return;
    this.v.concurrency = c;
    this.changed(`concurrency ${c} of ${this.v.maxConcurrency}: ${reason}`);
    this.wakeSlots();
  }

  /**
   * The live capture's own limit on the copy's bulks in flight (undefined: none). Said in the view, not as a change
   * event: it moves with every batch the capture applies.
   */
  capConcurrency(n: number | undefined, reason = ''): void {
    const before = this.limit();
    this.cap = n === undefined ? undefined : { concurrency: Math.max(1, Math.round(n)), reason };
    if (this.limit() > before) this.wakeSlots();
  }

  private cap?: { concurrency: number; reason: string };

  /** bulks the copy may have in flight now */
  private limit(): number {
    return Math.min(this.v.concurrency, this.cap?.concurrency ?? Number.POSITIVE_INFINITY);
  }

  /** Wait for a bulk slot under the concurrency limit; call the returned function when the bulk is answered. */
  async slot(signal?: AbortSignal): Promise<() => void> {
    while (this.inFlight >= this.limit()) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.slotWaiters.indexOf(go);
          if (i >= 0) this.slotWaiters.splice(i, 1);
          reject(signal?.reason);
        };
        const go = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.slotWaiters.push(go);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.wakeSlots();
    };
  }

  private wakeSlots(): void {
    // Each woken waiter checks the limit again before it takes a slot.
    const free = this.limit() - this.inFlight;
    if (free > 0) for (const w of this.slotWaiters.splice(0, free)) w();
  }

  /** The closed loop's last reading, shown as it is (no change event: the rate and concurrency carry those). */
  setSignalsOver(over: ReadonlyArray<{ signal: string; side: string }>): void {
    this.over = over.map(({ signal, side }) => ({ signal, side }));
  }

  setBatchDocs(n: number | undefined, reason: string): void {
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 100_000))
      throw new RangeError(`batch must be an integer from 1 to 100000, got ${n}`);
    this.v.batchDocs = n;
    this.changed(`batch ${n ?? 'as in the spec'}: ${reason}`);
  }

  /** Wait until `n` documents may be written: not paused, and the bucket has room at the current rate. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.pauses.size > 0) {
        await this.waitForChange(signal);
        continue;
      }
      const rate = this.v.rate;
      if (rate <= 0) return;
      const now = Date.now();
      this.tokens = Math.min(rate, this.tokens + ((now - this.last) / 1000) * rate);
      this.last = now;
      // A batch larger than one second's worth still goes through once the bucket is full.
      if (this.tokens >= Math.min(n, rate)) {
        this.tokens -= n;
        return;
      }
      await sleep(Math.min(1000, Math.ceil(((Math.min(n, rate) - this.tokens) / rate) * 1000)), signal);
    }
  }

  /** Wait while paused (capture rounds call this between rounds; they take no tokens). */
  async whilePaused(signal?: AbortSignal): Promise<void> {
    while (this.pauses.size > 0) await this.waitForChange(signal);
  }

  private waitForChange(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(done, 1000);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      const prev = this.wake;
      function done() {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }
      this.wake = () => {
        prev?.();
        done();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private changed(change: string): void {
    this.v.changedAt = new Date().toISOString();
    const w = this.wake;
    this.wake = undefined;
    w?.();
    const view = this.view();
    for (const l of this.listeners) l(view, change);
  }
}
