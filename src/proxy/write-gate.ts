/**
 * The gate every write to the migrated index passes before it is forwarded, and leaves once it is journaled
 * (after the client has its answer: see server.ts).
 *
 * A hold closes the gate: writes arriving after it wait in memory, in arrival order, before anything is sent
 * upstream. It is granted once no write is between the gate and the journal, so the journal's end at that moment
 * covers every write the cluster has seen. It ends by the runner's release, or by its own deadline if the runner
 * is gone (no write waits for a human), or by the proxy's shutdown. Waiting writes pass the gate as part of the
 * release itself (counted in flight before anything else can run), so a following hold cannot miss them.
 */
import { CutoverError, EXIT } from '../store/errors.js';
import type { HoldGranted, HoldRecord, HoldState } from './control.js';
import type { JournalPos } from './journal.js';

/** A hold request the proxy cannot grant, or a release of a hold that is not the active one: HTTP 409. */
export class HoldConflict extends CutoverError {
  override readonly name = 'HoldConflict';
  readonly exitCode = EXIT.cluster;
  constructor(
    message: string,
    /** how that hold ended, when it did */
    readonly record?: HoldRecord,
    readonly holding?: HoldState,
  ) {
    super(message);
  }
}

interface Waiter {
  at: number;
  pass: (waitedMs: number) => void;
}

interface ActiveHold {
  holdId: string;
  heldAt: number;
  deadlineAt: number;
  queue: Waiter[];
  heldRequests: number;
  longestWaitMs: number;
  timer: NodeJS.Timeout;
  granted?: Promise<HoldGranted>;
}

export interface GateStats {
  holds: number;
  heldRequests: number;
  longestHoldWaitMs: number;
}

/** How many finished holds are remembered, so a late release learns how its hold ended. */
const REMEMBERED = 64;

export class WriteGate {
  private inflight = 0;
  private drained: Array<() => void> = [];
  private active?: ActiveHold;
  private readonly finished = new Map<string, HoldRecord>();
  readonly stats: GateStats = { holds: 0, heldRequests: 0, longestHoldWaitMs: 0 };

  constructor(
    private readonly journalEnd: () => JournalPos,
    private readonly onEnd: (record: HoldRecord) => void = () => {},
  ) {}

  /** Writes between the gate and the journal right now. */
  get inFlight(): number {
    return this.inflight;
  }

  /**
   * Resolves when the write may be forwarded, with how long a hold kept it waiting. Counted in flight from then
   * until `leave()`.
   */
  enter(): Promise<number> {
    const h = this.active;
    if (!h) {
      this.inflight++;
      return Promise.resolve(0);
    }
    h.heldRequests++;
    this.stats.heldRequests++;
    return new Promise((pass) => h.queue.push({ at: Date.now(), pass }));
  }

  leave(): void {
    this.inflight--;
    if (this.inflight === 0) for (const d of this.drained.splice(0)) d();
  }

  state(): HoldState | undefined {
    const h = this.active;
    if (!h) return undefined;
    return {
      holdId: h.holdId,
      since: new Date(h.heldAt).toISOString(),
      deadlineAt: new Date(h.deadlineAt).toISOString(),
      queued: h.queue.length,
    };
  }

  /** Close the gate; resolves once every write already past it is journaled. The same holdId again: the same grant. */
  hold(holdId: string, budgetMs: number): Promise<HoldGranted> {
    const cur = this.active;
    if (cur?.holdId === holdId && cur.granted) return cur.granted;
    if (cur) return Promise.reject(new HoldConflict(`hold ${cur.holdId} is active`, undefined, this.state()));
    const done = this.finished.get(holdId);
    if (done) return Promise.reject(new HoldConflict(`hold ${holdId} already ended`, done));
    const heldAt = Date.now();
    const h: ActiveHold = {
      holdId,
      heldAt,
      deadlineAt: heldAt + budgetMs,
      queue: [],
      heldRequests: 0,
      longestWaitMs: 0,
      timer: setTimeout(() => this.end(h, 'deadline'), budgetMs),
    };
    this.active = h;
    this.stats.holds++;
    h.granted = this.drain().then(() => {
      if (this.active !== h)
        throw new HoldConflict(
          `hold ${holdId} ended (${this.finished.get(holdId)?.releasedBy}) before the writes in flight had returned`,
          this.finished.get(holdId),
        );
      return {
        holdId,
        journalEnd: this.journalEnd(),
        heldAt: new Date(heldAt).toISOString(),
        deadlineAt: new Date(h.deadlineAt).toISOString(),
        inflightWaitMs: Date.now() - heldAt,
      };
    });
    return h.granted;
  }

  /** Open the gate for the runner. A hold that is not the active one: HoldConflict with how it ended. */
  release(holdId: string, switchedTo?: string): HoldRecord {
    const h = this.active;
    if (h?.holdId === holdId) return this.end(h, 'runner', switchedTo);
    const done = this.finished.get(holdId);
    throw new HoldConflict(
      done ? `hold ${holdId} already ended (released by ${done.releasedBy})` : `no hold ${holdId} is known`,
      done,
      this.state(),
    );
  }

  /** Shutdown: let every waiting write through (it then meets the closing proxy). */
  shutdown(): void {
    if (this.active) this.end(this.active, 'shutdown');
  }

  /** Resolves once no write is between the gate and the journal (new ones may enter meanwhile). */
  async settled(): Promise<void> {
    // A hold ending also wakes the drain's waiters: look again.
    while (this.inflight > 0) await this.drain();
  }

  private drain(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.drained.push(r));
  }

  private end(h: ActiveHold, by: HoldRecord['releasedBy'], switchedTo?: string): HoldRecord {
    clearTimeout(h.timer);
    this.active = undefined;
    const now = Date.now();
    for (const w of h.queue) {
      const waited = now - w.at;
      h.longestWaitMs = Math.max(h.longestWaitMs, waited);
      this.inflight++;
      w.pass(waited);
    }
    this.stats.longestHoldWaitMs = Math.max(this.stats.longestHoldWaitMs, h.longestWaitMs);
    const record: HoldRecord = {
      holdId: h.holdId,
      heldRequests: h.heldRequests,
      longestWaitMs: h.longestWaitMs,
      durationMs: now - h.heldAt,
      releasedBy: by,
    };
    if (switchedTo !== undefined) record.switchedTo = switchedTo;
    this.finished.set(h.holdId, record);
    if (this.finished.size > REMEMBERED) this.finished.delete(this.finished.keys().next().value!);
    // A hold still waiting for writes in flight learns it ended (its grant then refuses).
    for (const d of this.drained.splice(0)) d();
    this.onEnd(record);
    return record;
  }
}
