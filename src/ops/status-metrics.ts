/**
 * The Prometheus view of one command (prom-client, its own registry: nothing global). Counters only ever go up
 * within a process; figures read from persisted state are turned into counter increments (deltas), so a counter
 * never goes down while the process lives. Labels carry the migration name and the slice: never a URL with
 * credentials, never a document id.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SliceProgress } from '../copy/slice-copier.js';
import type { StatusFigures } from './status-figures.js';
import type { ThrottleView } from './throttle.js';
import type { BulkSample } from './throttle-signals.js';
import type { WatchdogView } from './watchdog.js';

type Labels = Record<string, string>;

export class StatusMetrics {
  readonly registry = new Registry();
  private readonly m: string;
  private readonly seen = new Map<string, number>();
  private pausesSeen = 0;

  private readonly info: Gauge;
  private readonly step: Gauge;
  private readonly sourceDocs: Gauge;
  private readonly sliceProcessed: Gauge;
  private readonly sliceDone: Gauge;
  private readonly processed: Counter;
  private readonly written: Counter;
  private readonly bytes: Counter;
  private readonly docsRate: Gauge;
  private readonly bytesRate: Gauge;
  private readonly eta: Gauge;
  private readonly bulkSeconds: Histogram;
  private readonly bulkRequests: Counter;
  private readonly rejected: Counter;
  private readonly retries: Counter;
  private readonly deadLetters: Counter;
  private readonly lag: Gauge;
  private readonly rounds: Counter;
  private readonly pauses: Counter;
  private readonly pauseSeconds: Histogram;
  private readonly paused: Gauge;
  private readonly pausedBy: Gauge;
  private readonly rate: Gauge;
  private readonly concurrency: Gauge;
  private readonly signalOver: Gauge;
  private readonly ceiling: Gauge;
  private readonly batch: Gauge;
  private readonly throttleChanges: Counter;
  private readonly journalEntries: Counter;
  private readonly journalPosition: Gauge;
  private readonly journalEnd: Gauge;
  private readonly journalDepth: Gauge;
  private readonly proxyRequests: Counter;
  private readonly proxyHeld: Counter;
  private readonly proxyErrors: Counter;
  private readonly proxyHolding: Gauge;
  private readonly controls: Counter;
  private readonly health: Gauge;
  private readonly unassigned: Gauge;
  private readonly watchdogPaused: Gauge;

  constructor(migration: string) {
    this.m = migration;
    const registers = [this.registry];
    const L = ['migration'];
    const g = (name: string, help: string, labelNames = L) =>
      new Gauge({ name, help, labelNames, registers });
    const c = (name: string, help: string, labelNames = L) =>
      new Counter({ name, help, labelNames, registers });
    this.info = g('cutover_info', 'the migration this process serves (value 1)', [
      'migration',
      'command',
      'capture',
      'source',
      'target',
      'source_index',
      'target_index',
    ]);
    this.step = g('cutover_step', 'the runbook step running now (value 1)', ['migration', 'step']);
    this.sourceDocs = g('cutover_source_documents', 'documents in the source index when the copy started');
    this.sliceProcessed = g(
      'cutover_slice_documents_processed',
      'documents of a slice handled (copied, conflicts, dropped, dead letters), from its checkpoint',
      ['migration', 'slice'],
    );
    this.sliceDone = g('cutover_slice_done', '1 once a slice is copied', ['migration', 'slice']);
    this.processed = c('cutover_documents_processed_total', 'documents read and handled by this process', [
      'migration',
      'slice',
    ]);
    this.written = c('cutover_documents_written_total', 'documents written to the target by this process', [
      'migration',
      'slice',
    ]);
    this.bytes = c(
      'cutover_bulk_bytes_total',
      'bytes of _bulk bodies the copy had acknowledged, this process',
    );
    this.docsRate = g('cutover_copy_documents_per_second', 'copy throughput over the last 10 seconds');
    this.bytesRate = g('cutover_copy_bytes_per_second', 'bulk bytes per second over the last 10 seconds');
    this.eta = g('cutover_copy_eta_seconds', 'seconds until the copy ends at the current throughput');
    this.bulkSeconds = new Histogram({
      name: 'cutover_bulk_duration_seconds',
      help: 'time from sending a _bulk request to its answer',
      labelNames: L,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.bulkRequests = c('cutover_bulk_requests_total', '_bulk requests by HTTP status (0: no answer)', [
      'migration',
      'status',
    ]);
    this.rejected = c(
      'cutover_bulk_rejected_documents_total',
      'documents the target refused for now (429 / rejected execution, a full queue) and that were retried',
    );
    this.retries = c('cutover_retries_total', 'document writes retried by the copy');
    this.deadLetters = c(
      'cutover_dead_letters_total',
      'documents set aside as dead letters (whole migration)',
    );
    this.lag = g('cutover_catchup_lag_seconds', 'lag of the latest catch-up round (live capture)');
    this.rounds = c('cutover_catchup_rounds_total', 'catch-up rounds run (whole migration)');
    this.pauses = c('cutover_write_pauses_total', 'write freezes and proxy holds, by kind and outcome', [
      'migration',
      'kind',
      'switched',
    ]);
    this.pauseSeconds = new Histogram({
      name: 'cutover_write_pause_duration_seconds',
      help: 'how long each write freeze or proxy hold lasted',
      labelNames: ['migration', 'kind'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    });
    this.paused = g('cutover_throttle_paused', '1 while the copy is paused');
    this.pausedBy = g('cutover_throttle_paused_by', '1 for each source holding a pause', ['migration', 'by']);
    this.rate = g('cutover_throttle_rate_documents_per_second', 'rate the copy may write at; 0 = unlimited');
    this.ceiling = g('cutover_throttle_ceiling_documents_per_second', 'highest rate allowed; 0 = none');
    this.concurrency = g(
      'cutover_throttle_concurrency',
      "the copy's bulk requests allowed in flight at once (at most copy.concurrency)",
    );
    this.signalOver = g(
      'cutover_throttle_signal_over',
      "1 for each signal over its threshold at the closed loop's last reading (why it slows the copy)",
      ['migration', 'signal', 'side'],
    );
    this.batch = g(
      'cutover_throttle_batch_documents',
      'documents per page set by the operator; 0 = the spec',
    );
    this.throttleChanges = c(
      'cutover_throttle_changes_total',
      'throttle decisions (pause, resume, rate, batch)',
    );
    this.journalEntries = c(
      'cutover_journal_entries_total',
      'proxy journal entries read (run) or written (proxy)',
    );
    this.journalPosition = g('cutover_journal_position', 'the runner position in the proxy journal');
    this.journalEnd = g('cutover_journal_end', 'the end of the proxy journal');
    this.journalDepth = g(
      'cutover_journal_depth',
      'proxy journal entries written and not yet read by the runner (end minus position)',
    );
    this.proxyRequests = c('cutover_proxy_requests_total', 'requests the proxy answered');
    this.proxyHeld = c('cutover_proxy_held_requests_total', 'requests the proxy queued during holds');
    this.proxyErrors = c(
      'cutover_proxy_errors_total',
      'requests the proxy answered with an error of its own',
    );
    this.proxyHolding = g('cutover_proxy_holding', '1 while the proxy holds the application writes');
    this.controls = c('cutover_control_actions_total', 'control actions taken, by action and origin', [
      'migration',
      'action',
      'via',
    ]);
    this.health = g(
      'cutover_cluster_health',
      "the watchdog's last reading of a cluster: 1 for its status (green, yellow, red, unreachable)",
      ['migration', 'side', 'status'],
    );
    this.unassigned = g('cutover_cluster_unassigned_shards', 'unassigned shards at the last reading', [
      'migration',
      'side',
    ]);
    this.watchdogPaused = g('cutover_watchdog_paused', '1 while the watchdog holds the copy (a red cluster)');
  }

  private l(extra: Labels = {}): Labels {
    return { migration: this.m, ...extra };
  }

  /** Increase a counter up to a figure read elsewhere (a persisted total): never down. */
  private raise(c: Counter, key: string, value: number, extra: Labels = {}): void {
    const before = this.seen.get(key);
    if (before === undefined) {
      this.seen.set(key, value);
      if (value > 0) c.inc(this.l(extra), value);
      else c.inc(this.l(extra), 0);
      return;
    }
    if (value > before) {
      c.inc(this.l(extra), value - before);
      this.seen.set(key, value);
    }
  }

  copyProgress(p: SliceProgress): void {
    const slice = String(p.slice);
    this.processed.inc(this.l({ slice }), p.docs);
    this.written.inc(this.l({ slice }), p.result.written);
    this.retries.inc(this.l(), p.result.retries);
    this.bytes.inc(this.l(), p.bytes);
  }

  bulk(b: BulkSample): void {
    this.bulkSeconds.observe(this.l(), b.ms / 1000);
    this.bulkRequests.inc(this.l({ status: String(b.status) }));
    if (b.rejected) this.rejected.inc(this.l(), b.rejected);
  }

  throttleChanged(): void {
    this.throttleChanges.inc(this.l());
  }

  control(action: string, via: string): void {
    this.controls.inc(this.l({ action, via }));
  }

  /** Gauges and persisted totals, set just before each scrape. */
  update(
    f: StatusFigures,
    live: {
      command: string;
      step?: string;
      docsPerSecond: number;
      bytesPerSecond: number;
      etaSeconds: number | null;
      throttle?: ThrottleView;
      watchdog?: WatchdogView;
    },
  ): void {
    this.info.reset();
    this.info.set(
      {
        migration: this.m,
        command: live.command,
        capture: f.capture,
        source: f.source,
        target: f.target,
        source_index: f.sourceIndex ?? '',
        target_index: f.targetIndex,
      },
      1,
    );
    this.step.reset();
    if (live.step) this.step.set(this.l({ step: live.step }), 1);
    this.docsRate.set(this.l(), live.docsPerSecond);
    this.bytesRate.set(this.l(), live.bytesPerSecond);
    if (live.etaSeconds === null) this.eta.reset();
    else this.eta.set(this.l(), live.etaSeconds);
    if (f.copy) {
      this.sourceDocs.set(this.l(), f.copy.sourceDocs);
      for (const s of f.copy.slices) {
        this.sliceProcessed.set(this.l({ slice: String(s.slice) }), s.processed);
        this.sliceDone.set(this.l({ slice: String(s.slice) }), s.done ? 1 : 0);
      }
      this.raise(this.deadLetters, 'deadLetters', f.copy.deadLetters);
    }
    if (f.catchUp) {
      if (f.catchUp.lastLagMs !== undefined) this.lag.set(this.l(), f.catchUp.lastLagMs / 1000);
      this.raise(this.rounds, 'rounds', f.catchUp.rounds);
    }
    for (const p of f.pausesOfWrites.slice(this.pausesSeen)) {
      this.pauses.inc(this.l({ kind: p.kind, switched: String(p.switched) }));
      this.pauseSeconds.observe(this.l({ kind: p.kind }), p.durationMs / 1000);
    }
    this.pausesSeen = Math.max(this.pausesSeen, f.pausesOfWrites.length);
    const t = live.throttle;
    if (t) {
      this.paused.set(this.l(), t.paused ? 1 : 0);
      this.pausedBy.reset();
      for (const p of t.pausedBy) this.pausedBy.set(this.l({ by: p.by }), 1);
      this.rate.set(this.l(), t.rate);
      this.ceiling.set(this.l(), t.ceiling);
      this.concurrency.set(this.l(), t.concurrency);
      this.signalOver.reset();
      for (const o of t.signalsOver) this.signalOver.set(this.l({ signal: o.signal, side: o.side }), 1);
      this.batch.set(this.l(), t.batchDocs ?? 0);
    }
    const w = live.watchdog;
    if (w?.running) {
      this.health.reset();
      this.unassigned.reset();
      for (const r of w.clusters) {
        this.health.set(this.l({ side: r.side, status: r.status }), 1);
        this.unassigned.set(this.l({ side: r.side }), r.unassignedShards);
      }
      this.watchdogPaused.set(this.l(), w.paused ? 1 : 0);
    }
    if (f.journal) {
      this.raise(this.journalEntries, 'journalEntries', f.journal.entries);
      if (f.journal.position !== undefined) this.journalPosition.set(this.l(), f.journal.position);
      if (f.journal.end !== undefined) this.journalEnd.set(this.l(), f.journal.end);
      if (f.journal.end !== undefined && f.journal.position !== undefined)
        this.journalDepth.set(this.l(), Math.max(0, f.journal.end - f.journal.position));
    }
    if (f.proxy) {
      this.raise(this.proxyRequests, 'proxyRequests', f.proxy.requests);
      this.raise(this.proxyHeld, 'proxyHeld', f.proxy.heldRequests);
      this.raise(this.proxyErrors, 'proxyErrors', f.proxy.proxyErrors);
      this.proxyHolding.set(this.l(), f.proxy.holding ? 1 : 0);
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
