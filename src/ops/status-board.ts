/**
 * The status board of one command: the persisted figures the migration (or the proxy) provides, plus what only
 * this process sees (the step, throughput from the reporter's events, throttle decisions, warnings, control
 * actions). It watches and never steers: the reporter it wraps behaves exactly as before.
 */
import { existsSync } from 'node:fs';
import type { AuditLog } from '../store/audit.js';
import type { Reporter } from './reporter.js';
import type { StatusFigures } from './status-figures.js';
import { StatusMetrics } from './status-metrics.js';
import type { Throttle, ThrottleView } from './throttle.js';
import type { WatchdogView } from './watchdog.js';

export interface Decision {
  at: string;
  change: string;
  rate: number;
  paused: boolean;
}

export interface HistoryPoint {
  /** ms since the epoch */
  t: number;
  docsPerSecond: number;
  /** documents handled so far (copy) */
  processed: number;
  lagSeconds?: number;
}

export interface StatusSnapshot extends StatusFigures {
  command: string;
  pid: number;
  startedAt: string;
  now: string;
  step?: { name: string; title: string; since: string };
  docsPerSecond: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  throttle?: ThrottleView;
  /** the watchdog's view of both clusters' health (run and cutover) */
  watchdog?: WatchdogView;
  decisions: Decision[];
  warnings: Array<{ at: string; message: string }>;
  postpone?: { flag: string; postponed: boolean };
  auditTail: Array<Record<string, unknown>>;
  history: HistoryPoint[];
}

export interface StatusBoardOptions {
  command: string;
  figures: () => StatusFigures;
  audit: AuditLog;
  throttle?: Throttle;
  watchdog?: { view(): WatchdogView };
  postponeFlag?: string;
}

const KEEP_DECISIONS = 50;
const KEEP_WARNINGS = 20;
const KEEP_HISTORY = 300;
const RATE_WINDOW_MS = 10_000;

export class StatusBoard {
  readonly metrics: StatusMetrics;
  private readonly startedAt = new Date().toISOString();
  private step?: StatusSnapshot['step'];
  private readonly decisions: Decision[] = [];
  private readonly warnings: StatusSnapshot['warnings'] = [];
  private readonly history: HistoryPoint[] = [];
  /** cumulative documents and bytes this process handled, sampled once a second for the rates */
  private docs = 0;
  private bytes = 0;
  private readonly samples: Array<{ t: number; docs: number; bytes: number }> = [];
  private readonly listeners = new Set<() => void>();
  private readonly timer: NodeJS.Timeout;
  private readonly unwatch?: () => void;
  private last?: StatusFigures;

  constructor(private readonly o: StatusBoardOptions) {
    this.metrics = new StatusMetrics(o.figures().migration);
    this.unwatch = o.throttle?.onChange((v, change) => {
      this.decisions.push({ at: v.changedAt, change, rate: v.rate, paused: v.paused });
      if (this.decisions.length > KEEP_DECISIONS) this.decisions.shift();
      this.metrics.throttleChanged();
      this.changed();
    });
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  /** The reporter to hand the migration: the one given, with this board listening beside it. */
  wrap(inner: Reporter): Reporter {
    return {
      step: (name, title) => {
        this.step = { name, title, since: new Date().toISOString() };
        inner.step(name, title);
        this.changed();
      },
      info: (m, f) => inner.info(m, f),
      warn: (m, f) => {
        this.warnings.push({ at: new Date().toISOString(), message: m });
        if (this.warnings.length > KEEP_WARNINGS) this.warnings.shift();
        inner.warn(m, f);
      },
      copyStarted: (total, done) => inner.copyStarted(total, done),
      copyProgress: (p) => {
        this.docs += p.docs;
        this.bytes += p.bytes;
        this.metrics.copyProgress(p);
        inner.copyProgress(p);
      },
      copyFinished: () => inner.copyFinished(),
      bulk: (b) => {
        this.metrics.bulk(b);
        inner.bulk?.(b);
      },
    };
  }

  /** Called on changes worth showing at once (a step, a throttle decision, a control action). */
  onChange(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  changed(): void {
    for (const l of this.listeners) l();
  }

  private sample(): void {
    const t = Date.now();
    this.samples.push({ t, docs: this.docs, bytes: this.bytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > RATE_WINDOW_MS) this.samples.shift();
    if (this.samples.length % 2 === 0 || this.history.length === 0) {
      const f = this.last;
      const processed = f?.copy ? f.copy.slices.reduce((a, s) => a + s.processed, 0) : 0;
      this.history.push({
        t,
        docsPerSecond: Math.round(this.rates().docs),
        processed,
        lagSeconds: f?.catchUp?.lastLagMs === undefined ? undefined : f.catchUp.lastLagMs / 1000,
      });
      if (this.history.length > KEEP_HISTORY) this.history.shift();
    }
  }

  private rates(): { docs: number; bytes: number } {
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    if (!a || !b || b.t === a.t) return { docs: 0, bytes: 0 };
    const s = (b.t - a.t) / 1000;
    return { docs: (b.docs - a.docs) / s, bytes: (b.bytes - a.bytes) / s };
  }

  snapshot(): StatusSnapshot {
    const f = this.o.figures();
    this.last = f;
    const r = this.rates();
    const processed = f.copy ? f.copy.slices.reduce((a, s) => a + s.processed, 0) : 0;
    const copying = f.copy?.slices.some((s) => !s.done);
    const throttle = this.o.throttle?.view();
    // No ETA while paused: the recent rate says nothing about when a paused copy ends.
    const eta =
      f.copy && copying && r.docs > 0 && !throttle?.paused
        ? Math.max(0, (f.copy.sourceDocs - processed) / r.docs)
        : null;
    return {
      ...f,
      command: this.o.command,
      pid: process.pid,
      startedAt: this.startedAt,
      now: new Date().toISOString(),
      step: this.step,
      docsPerSecond: Math.round(r.docs),
      bytesPerSecond: Math.round(r.bytes),
      etaSeconds: eta === null ? null : Math.round(eta),
      throttle,
      watchdog: this.o.watchdog?.view(),
      decisions: [...this.decisions],
      warnings: [...this.warnings],
      postpone: this.o.postponeFlag
        ? { flag: this.o.postponeFlag, postponed: existsSync(this.o.postponeFlag) }
        : undefined,
      auditTail: this.o.audit.tail(30),
      history: [...this.history],
    };
  }

  async metricsText(): Promise<string> {
    const s = this.snapshot();
    this.metrics.update(s, {
      command: this.o.command,
      step: s.step?.name,
      docsPerSecond: s.docsPerSecond,
      bytesPerSecond: s.bytesPerSecond,
      etaSeconds: s.etaSeconds,
      throttle: s.throttle,
      watchdog: s.watchdog,
    });
    return this.metrics.text();
  }

  close(): void {
    clearInterval(this.timer);
    this.unwatch?.();
    this.listeners.clear();
  }
}
