/**
 * The watchdog: reads `_cluster/health` of the source and the target every interval while a command runs. A
 * cluster red for longer than redAfter pauses the throttle as 'watchdog' (the copy stops taking pages, the capture
 * rounds wait between rounds; checkpoints are saved after every acknowledged bulk, so nothing is lost), says why
 * with the allocation explain of an unassigned primary, and lifts its pause once every cluster is yellow or green
 * again. It only reads the clusters: it never reroutes a shard.
 */
import {
  type AllocationExplain,
  explainUnassigned,
  formatExplain,
  rerouteAdvice,
} from '../cluster/allocation.js';
import type { Cluster, ClusterHealth } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import { readJson, writeJsonAtomic } from '../store/atomic-file.js';
import type { AuditLog } from '../store/audit.js';
import { type Reporter, silentReporter } from './reporter.js';
import type { Throttle } from './throttle.js';

export type HealthStatus = ClusterHealth['status'] | 'unreachable';

export interface HealthReading {
  /** 'source', 'target', or 'source+target' when both are one cluster */
  side: string;
  status: HealthStatus;
  /** when this status was first seen (ISO) */
  since: string;
  checkedAt: string;
  unassignedShards: number;
  error?: string;
}

/** One pause of the watchdog, as the report and the audit keep it. */
export interface WatchdogPause {
  side: string;
  pausedAt: string;
  resumedAt?: string;
  why: string;
  explain?: AllocationExplain;
  reroute?: string[];
}

/** What the status server shows. */
export interface WatchdogView {
  running: boolean;
  intervalSeconds: number;
  redAfterSeconds: number;
  clusters: HealthReading[];
  paused: boolean;
  pause?: WatchdogPause;
  lastExplain?: AllocationExplain & { side: string; at: string };
}

/** The pauses of a migration, kept next to its state (watchdog.json) for the report. */
export interface WatchdogRecord {
  pauses: WatchdogPause[];
}

export interface WatchdogOptions {
  source: Cluster;
  target: Cluster;
  throttle: Throttle;
  intervalMs: number;
  redAfterMs: number;
  audit?: AuditLog;
  /** where the pauses are kept (watchdog.json in the migration's directory) */
  recordPath?: string;
}

const MAX_PAUSES = 100;

export class Watchdog {
  private readonly readings = new Map<string, HealthReading>();
  private pause?: WatchdogPause;
  private lastExplain?: WatchdogView['lastExplain'];
  /** status + unassigned count the last explain was read for, per side: read again only when it changes */
  private readonly explainedFor = new Map<string, string>();
  private loop?: Promise<void>;
  private stopper?: AbortController;
  private reporter: Reporter = silentReporter;

  constructor(private readonly o: WatchdogOptions) {}

  private get sides(): Array<[string, Cluster]> {
    return this.o.source === this.o.target
      ? [['source+target', this.o.source]]
      : [
          ['source', this.o.source],
          ['target', this.o.target],
        ];
  }

  view(): WatchdogView {
    return {
      running: !!this.loop,
      intervalSeconds: this.o.intervalMs / 1000,
      redAfterSeconds: this.o.redAfterMs / 1000,
      clusters: [...this.readings.values()],
      paused: !!this.pause,
      pause: this.pause,
      lastExplain: this.lastExplain,
    };
  }

  /** Check now, then every interval until stop(); alerts go to `reporter`. */
  start(reporter: Reporter = silentReporter): void {
    if (this.loop) return;
    this.reporter = reporter;
    const ac = new AbortController();
    this.stopper = ac;
    this.loop = (async () => {
      while (!ac.signal.aborted) {
        await this.check(ac.signal).catch((e: unknown) => {
          if (!ac.signal.aborted) this.reporter.warn(`watchdog: ${(e as Error).message}`);
        });
        await sleep(this.o.intervalMs, ac.signal).catch(() => undefined);
      }
    })();
  }

  /**
   * Stop watching. A pause of the watchdog is lifted: the command that ran beside it is over, and the next
   * one starts a watchdog of its own.
   */
  async stop(): Promise<void> {
    this.stopper?.abort();
    await this.loop;
    this.loop = undefined;
    if (this.pause) this.resume('watchdog stopped with the command');
  }

  /** One pass: read each cluster's health, pause or resume. */
  async check(signal?: AbortSignal): Promise<void> {
    for (const [side, cluster] of this.sides) {
      const now = new Date().toISOString();
      let status: HealthStatus;
      let unassigned = 0;
      let error: string | undefined;
      try {
        const h = await cluster.request<ClusterHealth>({
          method: 'GET',
          path: '/_cluster/health',
          idempotent: true,
          okStatuses: [408],
          signal,
        });
        status = h.body.status;
        unassigned = h.body.unassigned_shards;
      } catch (e) {
        if (signal?.aborted) return;
        status = 'unreachable';
        error = (e as Error).message;
      }
      const was = this.readings.get(side);
      this.readings.set(side, {
        side,
        status,
        since: was && was.status === status ? was.since : now,
        checkedAt: now,
        unassignedShards: unassigned,
        error,
      });
      const key = `${status}/${unassigned}`;
      if (unassigned > 0 && this.explainedFor.get(side) !== key) {
        const e = await explainUnassigned(cluster).catch(() => undefined);
        this.explainedFor.set(side, key);
        if (e) this.lastExplain = { ...e, side, at: now };
      }
      if (unassigned === 0) this.explainedFor.delete(side);
    }
    const red = [...this.readings.values()].filter((r) => r.status === 'red');
    const longRed = red.find((r) => Date.now() - Date.parse(r.since) >= this.o.redAfterMs);
    if (!this.pause && longRed) await this.pauseFor(longRed);
    else if (this.pause && red.length === 0)
      this.resume(
        `health back to ${[...this.readings.values()].map((r) => `${r.side} ${r.status}`).join(', ')}`,
      );
  }

  private async pauseFor(r: HealthReading): Promise<void> {
    const cluster = this.sides.find(([s]) => s === r.side)![1];
    const explain = await explainUnassigned(cluster).catch(() => undefined);
    const secs = Math.round((Date.now() - Date.parse(r.since)) / 1000);
    const why = `${r.side} cluster red for ${secs} s (${r.unassignedShards} unassigned shard(s))${explain ? `: ${formatExplain(explain)}` : ''}`;
    const reroute = explain ? rerouteAdvice(explain) : undefined;
    this.pause = { side: r.side, pausedAt: new Date().toISOString(), why, explain, reroute };
    if (explain) this.lastExplain = { ...explain, side: r.side, at: this.pause.pausedAt };
    this.o.throttle.pause('watchdog', why);
    this.reporter.warn(
      `watchdog: ${why}; the copy and the capture rounds are paused (checkpoints kept) until it is yellow or green again`,
      { event: 'watchdog-paused', side: r.side, explain },
    );
    for (const line of reroute ?? []) this.reporter.warn(`watchdog: ${line}`);
    this.o.audit?.record({ event: 'watchdog-paused', side: r.side, why, explain, reroute });
    this.persist();
  }

  private resume(why: string): void {
    const p = this.pause!;
    p.resumedAt = new Date().toISOString();
    this.pause = undefined;
    this.o.throttle.resume('watchdog', why);
    const secs = Math.round((Date.parse(p.resumedAt) - Date.parse(p.pausedAt)) / 1000);
    this.reporter.warn(`watchdog: ${why}: resumed after a pause of ${secs} s`, {
      event: 'watchdog-resumed',
    });
    this.o.audit?.record({ event: 'watchdog-resumed', side: p.side, why, pausedSeconds: secs });
    this.persist(p);
  }

  /** The pause as it stands, added to (or updated in) watchdog.json. */
  private persist(p: WatchdogPause | undefined = this.pause): void {
    const path = this.o.recordPath;
    if (!path || !p) return;
    const rec = readJson<WatchdogRecord>(path) ?? { pauses: [] };
    const i = rec.pauses.findIndex((x) => x.pausedAt === p.pausedAt && x.side === p.side);
    if (i >= 0) rec.pauses[i] = p;
    else rec.pauses.push(p);
    if (rec.pauses.length > MAX_PAUSES) rec.pauses.splice(0, rec.pauses.length - MAX_PAUSES);
    writeJsonAtomic(path, rec);
  }
}
