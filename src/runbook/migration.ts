/**
 * The migration facade: what an operator can ask of a migration (plan, run, cutover, verify, status, rollback,
 * cleanup), each as a library call. The CLI only parses, calls this and formats; everything it decides (whether a
 * migration is ready to switch, what the report holds, what the outcome means) is decided here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JournalSyncState } from '../capture/journal-sync.js';
import type { CaptureState } from '../capture/live.js';
import { captureStrategy } from '../capture/strategies/index.js';
import { Cluster } from '../cluster/client.js';
import { loadCheckpoints, totalsOf } from '../copy/backfill.js';
import { planOf } from '../copy/ranges.js';
import { holderId } from '../copy/slice-board.js';
import { loadTransform, type TransformFn } from '../copy/transform.js';
import { aliasPlacement, migrationEnds, moveAliases, resolveIndex } from '../cutover/aliases.js';
import { type WriteBlockStatus, writeBlockStatus } from '../cutover/block-status.js';
import { liftWriteBlock } from '../cutover/freeze.js';
import { guardLiftOf } from '../cutover/freeze-guard.js';
import { requestHandover } from '../cutover/revert-window.js';
import { desiredTargetBody } from '../cutover/target.js';
import { restoreTargetSettings } from '../cutover/target-settings.js';
import { Alerts } from '../ops/alerts.js';
import { AuditIndex } from '../ops/audit-index.js';
import { cancelTask, type DoctorReport, doctor, findTask } from '../ops/doctor.js';
import { failpoint } from '../ops/failpoints.js';
import { type Reporter, silentReporter } from '../ops/reporter.js';
import { Throttle } from '../ops/throttle.js';
import { Watchdog, type WatchdogRecord } from '../ops/watchdog.js';
import { clusterConfig, type LoadedSpec, webhookSecrets } from '../spec/load.js';
import { readJson, writeJsonAtomic } from '../store/atomic-file.js';
import { AuditLog } from '../store/audit.js';
import { GateError, Interrupted, PreflightError } from '../store/errors.js';
import { LeaseLost } from '../store/kv-leases.js';
import { acquireLock, alive, heldByLiveProcess, type Lock, LockError, lockOwner } from '../store/lock.js';
import { PitRegistry } from '../store/pit-registry.js';
import { peekSeat, RunSeat } from '../store/run-seat.js';
import { type MigrationState, newState, StateStore } from '../store/state.js';
import {
  type Facts,
  inspect,
  refuseOn,
  runSample,
  sampleFinding,
  specAliasNames,
} from '../verify/inspect.js';
import type { Finding } from '../verify/preflight.js';
import type { ProofReport } from '../verify/proof.js';
import { type SourceWrites, sourceWrites } from '../verify/source-writes.js';
import type { Ctx } from './context.js';
import { runProof } from './proof-gate.js';
import { redriveDeadLetters } from './redrive.js';
import { buildReport, type RunReport } from './report.js';
import { runbook } from './runbook.js';

export interface StepInfo {
  name: string;
  title: string;
  /** what the step will change, in words an operator can check */
  changes: string[];
  done: boolean;
}

export interface RunOptions {
  reporter?: Reporter;
  signal?: AbortSignal;
  takeOverLock?: boolean;
  /** override preflight findings that are not about safety */
  force?: boolean;
  /** copy the dead-lettered documents again (after the mapping or transform was fixed) before going on */
  retryDeadLetters?: boolean;
}

export type RunOutcome = 'cut-over' | 'awaiting-cutover';

export interface RunResult {
  outcome: RunOutcome;
  /** one line that says what is true now and what to do next */
  message: string;
}

export interface MigrationStatus {
  report: RunReport;
  completed: string[];
  /** the process holding the lock, or what became of it */
  running?: string;
  lastError?: MigrationState['lastError'];
  /** loud: a write block the application feels now, with how to lift it */
  warnings: string[];
  writeBlocks: WriteBlockStatus[];
}

/** Steps that change nothing on a cluster (the sample's scratch index is gone when it ends). */
const READ_ONLY_STEPS = new Set(['inspect', 'sample']);

export class Migration {
  readonly store: StateStore;
  readonly audit: AuditLog;
  readonly source: Cluster;
  readonly target: Cluster;
  /** paces and pauses this process's copy; the status server's control and the watchdog steer it */
  readonly throttle: Throttle;
  /** reads both clusters' health while run or cutover works; pauses the throttle while one stays red */
  readonly watchdog: Watchdog;

  constructor(readonly spec: LoadedSpec) {
    this.throttle = new Throttle({
      ceiling: spec.copy.maxDocsPerSecond,
      floor: spec.copy.throttle.floorDocsPerSecond,
      concurrency: spec.copy.concurrency,
    });
    this.store = new StateStore(spec.migrationDir);
    this.audit = new AuditLog(this.store.auditPath);
    this.source = new Cluster(clusterConfig(spec.source.cluster, 'source.cluster'));
    this.target = spec.target.cluster
      ? new Cluster(clusterConfig(spec.target.cluster, 'target.cluster'))
      : this.source;
    this.watchdog = new Watchdog({
      source: this.source,
      target: this.target,
      throttle: this.throttle,
      intervalMs: spec.watchdog.intervalSeconds * 1000,
      redAfterMs: spec.watchdog.redAfterSeconds * 1000,
      audit: this.audit,
      recordPath: this.store.watchdogPath,
    });
  }

  /** The persisted state, refused when it was made for other clusters or indices than this spec names. */
  state(): MigrationState {
    return this.checked(this.store.load());
  }

  /**
   * The state as `run` here would go on from it: this machine's, or (copy.workers, none here) the one in the
   * runner's seat, read without taking the seat. Nothing is written.
   */
  private async stateHereOrSeated(): Promise<MigrationState> {
    const local = this.store.load();
    const shared = this.spec.copy.workers;
    if (local || !shared) return this.checked(local);
    const seen = await peekSeat(shared, this.spec.name);
    await seen?.close();
    return this.checked(seen?.record.state ?? undefined);
  }

  private checked(s: MigrationState | undefined): MigrationState {
    if (!s) return newState(this.spec.name, this.spec.target.index, this.identity());
    const now = this.identity();
    const was = s.madeFor;
    // Nothing done yet (a refused first try), or a state from before this was recorded: it takes this spec's.
    if (!was || Object.keys(s.completed).length === 0) s.madeFor = now;
    else {
      const diffs = (Object.keys(now) as Array<keyof typeof now>)
        .filter((k) => was[k] !== now[k])
        .map((k) => `${k}: the state has "${was[k]}", the spec "${now[k]}"`);
      // Only read so far (a first try the sample refused): nothing exists for the old spec, so the name is free,
      // and what inspect recorded belongs to the old source: this spec starts over.
      if (diffs.length && Object.keys(s.completed).every((k) => READ_ONLY_STEPS.has(k)))
        return newState(this.spec.name, this.spec.target.index, now);
      if (diffs.length)
        throw new PreflightError(
          `migration "${this.spec.name}" in ${this.store.dir} was made for another source or target (${diffs.join('; ')}); put the spec back, or give this migration another name (or stateDir)`,
        );
    }
    return s;
  }

  /** What a state is made for: the clusters (credentials never part of it) and the indices. */
  private identity(): NonNullable<MigrationState['madeFor']> {
    return {
      sourceCluster: this.source.displayUrl,
      sourceIndex: this.spec.source.index,
      targetCluster: this.target.displayUrl,
      targetIndex: this.spec.target.index,
    };
  }

  /** The one place a context is built: complete, with the strategy chosen once for this command. */
  private context(state: MigrationState, transform: TransformFn, opts: RunOptions, cutoverNow = false): Ctx {
    return {
      spec: this.spec,
      source: this.source,
      target: this.target,
      store: this.store,
      state,
      audit: this.audit,
      reporter: opts.reporter ?? silentReporter,
      signal: opts.signal,
      transform,
      throttle: this.throttle,
      strategy: captureStrategy(this.spec),
      cutoverNow,
      force: !!opts.force,
    };
  }

  /**
   * The runbook with what each step changes. Reads the clusters (a plan that cannot see the source is no plan)
   * and refuses bad input exactly as `run` would; writes nothing.
   */
  async plan(
    opts: { force?: boolean } = {},
  ): Promise<{ facts?: Facts; sample?: Finding; capture: string; steps: StepInfo[] }> {
    const state = await this.stateHereOrSeated();
    const c = this.context(state, await loadTransform(this.spec.transformPath), opts);
    this.refusePostponeWithoutLoop(c);
    const facts = state.completed.inspect ? undefined : await inspect({ ...c, sample: true });
    // Inspected, but the sample refused (or never ran): `run` samples again, so the plan does, and refuses alike.
    let sample: Finding | undefined;
    if (
      state.completed.inspect &&
      !state.completed.sample &&
      this.spec.copy.sampleSize > 0 &&
      state.createdTarget !== false
    ) {
      const body = await desiredTargetBody(this.source, this.target, state.sourceIndex!, this.spec);
      sample = sampleFinding(await runSample(c, state.sourceIndex!, body), this.spec);
      refuseOn([sample], !!opts.force);
    }
    return {
      facts,
      sample,
      capture: c.strategy.summary,
      steps: runbook(c.strategy).map((s) => ({
        name: s.name,
        title: s.title,
        changes: s.changes(this.spec, c),
        done: s.done(c),
      })),
    };
  }

  /** Execute or resume. Returns when cut over, or when waiting for a manual cutover. */
  run(opts: RunOptions = {}): Promise<RunResult> {
    return this.execute(opts, 'run', false);
  }

  /** Why `cutover` cannot switch now, or undefined when it can: every step up to the switch must be done. */
  notReadyToSwitch(): string | undefined {
    const st = this.state();
    if (st.phase === 'rolled-back' || st.phase === 'cleaned-up')
      return `migration ${this.spec.name} was ${st.phase}; start a new one under another name`;
    if (!st.completed.gate)
      return `migration ${this.spec.name} is "${st.phase}" and not ready to switch (steps done: ${Object.keys(st.completed).join(', ') || 'none'}); finish \`cutover run\` first`;
    return undefined;
  }

  /** `cutover cutover`: the switch of a migration waiting in manual mode (the proof runs again first). */
  async cutover(opts: RunOptions = {}): Promise<RunResult> {
    const why = this.notReadyToSwitch();
    if (why) throw new PreflightError(why);
    return this.execute(opts, 'cutover', true);
  }

  private lock(command: string, opts: RunOptions): Lock {
    const lock = acquireLock(this.store.lockPath, command, { takeOverStale: opts.takeOverLock });
    if (lock.tookOver) {
      (opts.reporter ?? silentReporter).warn(lock.tookOver.message);
      this.audit.record({ event: 'lock-taken-over', command, from: lock.tookOver.owner });
    }
    return lock;
  }

  private refusePostponeWithoutLoop(c: Ctx): void {
    if (this.spec.postponeFlagPath && !c.strategy.canPostpone)
      throw new PreflightError(
        `cutover.postponeFlagFile: capture.strategy ${c.strategy.mode} switches in one request with no catch-up loop to hold it back, so a postpone flag would be ignored; use cutover.mode manual (then \`cutover cutover\` when ready) instead`,
      );
  }

  /**
   * copy.workers: the command runs holding the migration's seat in the NATS bucket (run-seat.ts), taken from a
   * runner whose machine is gone once its lease lapsed, with the state brought up from the seat when it is newer
   * than this machine's. A runner that loses its seat stops at once (its signal aborts, its next save fails).
   * Without copy.workers: the local state directory and lock alone.
   */
  private async seated<T>(
    command: string,
    opts: RunOptions,
    f: (opts: RunOptions) => Promise<T>,
  ): Promise<T> {
    const cfg = this.spec.copy.workers;
    if (!cfg) return f(opts);
    const reporter = opts.reporter ?? silentReporter;
    const seat = await RunSeat.take(cfg, this.spec.name, this.store, holderId(), {
      signal: opts.signal,
      onWaiting: (h, bucket) =>
        reporter.info(
          `the seat of ${this.spec.name} in the NATS bucket ${bucket} is held by ${h.host} pid ${h.pid}: taken over if it is not renewed for ${cfg.leaseSeconds} s`,
        ),
    });
    const r = seat.restored;
    if (r) {
      const by = r.by ? `${r.by.host} pid ${r.by.pid}` : 'a runner that released it';
      reporter.warn(
        `went on from the state in the NATS bucket ${seat.bucketName} (save ${r.seq}, written by ${by} at ${r.writtenAt}): this machine's state directory had ${r.localSeq === undefined ? 'none' : `an older one (save ${r.localSeq})`}${r.omitted.length ? `; not restored (too large for the bucket, or not sent before that runner stopped): ${r.omitted.join(', ')}` : ''}`,
      );
      this.audit.record({ event: 'state-restored', command, bucket: seat.bucketName, ...r });
    }
    this.store.seatedAt(seat);
    seat.start();
    try {
      return await f({
        ...opts,
        signal: opts.signal ? AbortSignal.any([opts.signal, seat.lost]) : seat.lost,
      });
    } catch (e) {
      if (!seat.lost.aborted) throw e;
      const why = (seat.lost.reason as Error).message;
      this.audit.record({ event: 'seat-lost', command, reason: why });
      throw new LockError(
        `${command} of ${this.spec.name} stopped: its seat in the NATS bucket ${seat.bucketName} is another runner's now (${why}); that runner goes on`,
        undefined,
        false,
      );
    } finally {
      this.store.seatedAt(undefined);
      await seat.release();
    }
  }

  private async execute(opts: RunOptions, command: string, cutoverNow: boolean): Promise<RunResult> {
    // Everything that can fail before the steps (a transform that does not load, an unreadable state file)
    // runs before the lock is taken, so such a failure never leaves a lock behind.
    const transform = await loadTransform(this.spec.transformPath);
    return this.seated(command, opts, (o) => this.executeSeated(o, command, cutoverNow, transform));
  }

  private async executeSeated(
    opts: RunOptions,
    command: string,
    cutoverNow: boolean,
    transform: TransformFn,
  ): Promise<RunResult> {
    const state = this.state();
    if (state.phase === 'rolled-back' || state.phase === 'cleaned-up')
      throw new PreflightError(
        `migration ${this.spec.name} was ${state.phase}; start a new one under another name`,
      );
    const c = this.context(state, transform, opts, cutoverNow);
    this.refusePostponeWithoutLoop(c);
    // Bad alert settings (a webhook URL variable not set) are refused before anything changes.
    const alerts = alertsFor(this.spec, c.reporter);
    c.vetoSwitch = () => alerts.beforeSwitch();
    const lock = this.lock(command, opts);
    const observed = this.observe(alerts, c.reporter);
    const stopThrottleWatch = alerts.active
      ? alerts.watchThrottle(this.throttle, this.spec.alerts.throttledMinutes, (r) => this.audit.record(r))
      : () => {};
    let current = '';
    if (this.spec.watchdog.enabled) this.watchdog.start(c.reporter);
    try {
      if (state.phase !== 'cut-over') state.phase = 'running';
      await this.store.save(state);
      this.audit.record({ event: 'run-started', command, resumed: Object.keys(state.completed).length > 0 });
      await this.liftStaleFreeze(state, c.reporter);
      if (opts.retryDeadLetters) await redriveDeadLetters(c);
      for (const step of runbook(c.strategy)) {
        if (step.done(c)) continue;
        current = step.name;
        c.reporter.step(step.name, step.title);
        const r = await step.run(c);
        if (r === 'pause') {
          await this.store.save(state);
          return this.result(state);
        }
        failpoint(`step.${step.name}.before-save`);
        state.completed[step.name] = new Date().toISOString();
        await this.store.save(state);
        this.audit.record({ event: 'step-done', step: step.name });
      }
      state.phase = 'cut-over';
      await this.store.save(state);
      this.audit.record({ event: 'run-finished', command, phase: state.phase });
      return this.result(state);
    } catch (e) {
      // A runner whose seat another took acts and saves no more: the one that goes on owns the state and target.
      if (opts.signal?.reason instanceof LeaseLost) throw e;
      const err = opts.signal?.aborted
        ? new Interrupted(`interrupted in step ${current || 'start'}; \`cutover run\` resumes`)
        : e;
      state.lastError = {
        at: new Date().toISOString(),
        step: current,
        message: err instanceof Error ? err.message : String(err),
      };
      state.phase = 'failed';
      // A seat lost meanwhile refuses this save: the failure is still told (below), the state stays the seat's.
      await this.store.save(state).catch((x: Error) => c.reporter.warn(`state not saved: ${x.message}`));
      // Leave the target as an operator would want it while they investigate: with its own settings back.
      await restoreTargetSettings(c).catch((x) =>
        c.reporter.warn(
          `could not restore target settings: ${(x as Error).message}; the next run restores them`,
        ),
      );
      this.audit.record({ event: 'run-failed', step: current, error: state.lastError.message });
      throw err;
    } finally {
      await this.watchdog.stop();
      lock.release();
      await c.strategy.close?.();
      stopThrottleWatch();
      await observed.close();
    }
  }

  /** Alerts and the audit mirror hear every audit record of a command (run, cutover, rollback, cleanup). */
  private observe(alerts: Alerts, reporter: Reporter): { close(): Promise<void> } {
    const unwatch = alerts.active ? this.audit.onRecord((r) => alerts.onAudit(r)) : () => {};
    const mirror = this.spec.audit.index
      ? new AuditIndex(
          this.spec.audit.cluster === 'source' ? this.source : this.target,
          this.spec.audit.index,
          this.spec.name,
          (m) => reporter.warn(m),
        )
      : undefined;
    const unmirror = mirror ? this.audit.onRecord((r) => mirror.add(r)) : () => {};
    return {
      async close() {
        unwatch();
        unmirror();
        await Promise.all([alerts.close(), mirror?.close()]);
      },
    };
  }

  /** What is true after a run that returned, in one line. */
  private result(state: MigrationState): RunResult {
    if (state.phase === 'awaiting-cutover') {
      const proof = readJson<ProofReport>(this.store.proofPath);
      const diffs = proof ? proof.missing + proof.extra + proof.changed : 0;
      const proven =
        this.spec.verify.mode === 'off' || !proof
          ? 'copied, not proven (verify.mode off: only the counts were compared)'
          : diffs === 0
            ? 'copied and proven document by document'
            : `copied; the proof found ${diffs} difference(s), within verify.maxDifferences = ${this.spec.verify.maxDifferences} (see ${this.store.proofPath})`;
      return {
        outcome: 'awaiting-cutover',
        message: `${proven}; run \`cutover cutover <spec>\` to switch the aliases`,
      };
    }
    const aliases = state.aliases?.records.map((r) => r.alias) ?? [];
    return {
      outcome: 'cut-over',
      message: aliases.length
        ? `done: ${aliases.join(', ')} point at ${this.spec.target.index}`
        : `done: ${this.spec.target.index} holds the copy; the spec names no aliases, so point the application at it yourself`,
    };
  }

  /** A run killed inside a write freeze left the block on: the application cannot write until it is lifted. */
  private async liftStaleFreeze(state: MigrationState, reporter: Reporter): Promise<void> {
    if (!state.frozen) return;
    const f = state.frozen;
    const cluster = f.side === 'source' ? this.source : this.target;
    const ends = migrationEnds({ source: this.source, target: this.target, state, spec: this.spec });
    const [from, to] = f.side === 'source' ? [ends.source, ends.target] : [ends.target, ends.source];
    const records = state.aliases?.records ?? [];
    let where = await aliasPlacement(records, from, to);
    if (where.placement === 'half') {
      // Across clusters the run was stopped between adding the aliases on the arriving cluster and removing them
      // from the frozen index. Everything before the add was done under this freeze (last changes applied,
      // counts compared), so the switch is finished before the block goes: no write lands on the old index by
      // alias in between.
      await moveAliases(records, from, to);
      this.audit.record({ event: 'aliases-switch-finished', from: from.index, to: to.index });
      reporter.warn(
        `the stopped run had added ${records.map((r) => r.alias).join(', ')} on ${to.cluster.displayUrl} but not yet removed them from ${from.index}; finished that before lifting the write block`,
      );
      where = await aliasPlacement(records, from, to);
    }
    await liftWriteBlock(cluster, f.index);
    // The writers were refused from the block until now: that freeze is reported as it really was.
    const started = f.startedAt ? Date.parse(f.startedAt) : Date.now();
    const guard = guardLiftOf(this.audit.path, f.index, f.startedAt);
    const until = guard
      ? `its freeze guard lifted the block at ${guard.at}`
      : 'the block stayed until this run lifted it';
    const path = f.side === 'source' ? this.store.capturePath : this.store.revertPath;
    const capture = readJson<CaptureState>(path);
    if (capture) {
      capture.freezes.push({
        attempt: f.attempt ?? capture.freezes.length + 1,
        startedAt: f.startedAt ?? new Date(started).toISOString(),
        durationMs: (guard ? Date.parse(guard.at) : Date.now()) - started,
        switched: (state.aliases?.records.length ?? 0) > 0 && where.placement === 'to',
        reason: `the run was stopped inside the freeze; ${until}`,
        appliedInFreeze: 0,
        deletedInFreeze: 0,
      });
      writeJsonAtomic(path, capture);
    }
    this.audit.record({ event: 'stale-freeze-lifted', index: f.index, frozenSince: f.startedAt });
    reporter.warn(
      `lifted the write block a stopped run left on ${f.index} (in place since ${f.startedAt ?? '?'}; ${until})`,
    );
    state.frozen = undefined;
    await this.store.save(state);
  }

  /**
   * Move the aliases back onto the source in one request; the target is kept. Inside the revert window of a live
   * migration no write made since the switch is lost (the strategy drains the reverse sync first), and a run still
   * keeping the window open is asked to hand over its lock. Before any switch there is nothing to move back: the
   * migration is left as it is and `run` can go on.
   */
  async rollback(
    opts: RunOptions = {},
  ): Promise<{ result: 'aliases-restored' | 'nothing-to-move'; message: string }> {
    const reporter = opts.reporter ?? silentReporter;
    const first = this.state();
    const strategy = captureStrategy(this.spec);
    if (
      strategy.revertWindowOpen({ spec: this.spec, state: first }) &&
      heldByLiveProcess(this.store.lockPath)
    ) {
      reporter.info('asking the running migration to stop its revert window and hand over');
      await requestHandover({ store: this.store }, () => !heldByLiveProcess(this.store.lockPath));
    }
    // Bad alert settings are refused before anything is touched, as for run.
    const alerts = alertsFor(this.spec, reporter);
    return this.seated('rollback', opts, (o) => this.rollbackSeated(o, alerts));
  }

  private async rollbackSeated(
    opts: RunOptions,
    alerts: Alerts,
  ): Promise<{ result: 'aliases-restored' | 'nothing-to-move'; message: string }> {
    const reporter = opts.reporter ?? silentReporter;
    const lock = this.lock('rollback', opts);
    const observed = this.observe(alerts, reporter);
    let closeStrategy = () => Promise.resolve();
    try {
      const state = this.state();
      if (!state.sourceIndex)
        throw new PreflightError(`migration ${this.spec.name} has not started: nothing to roll back`);
      await this.liftStaleFreeze(state, reporter);
      const records = state.aliases?.records ?? [];
      const ends = migrationEnds({ source: this.source, target: this.target, state, spec: this.spec });
      const where = await aliasPlacement(records, ends.source, ends.target);
      const c = this.context(state, await loadTransform(this.spec.transformPath), opts);
      // The proxies' NATS journal and registry keep connections open: released with the lock.
      closeStrategy = () => c.strategy.close?.() ?? Promise.resolve();
      if (records.length === 0 || (where.placement === 'from' && !state.cutoverAt)) {
        await restoreTargetSettings(c);
        this.audit.record({ event: 'rollback-nothing-to-move' });
        return {
          result: 'nothing-to-move',
          message: `nothing to roll back: ${records.length ? `the aliases never left ${state.sourceIndex}` : 'the spec names no aliases'}; the migration is kept as it was (phase ${state.phase}), \`cutover run\` goes on with it`,
        };
      }
      const r = await c.strategy.rollBack(c);
      await restoreTargetSettings(c);
      state.phase = 'rolled-back';
      state.rolledBackAt = new Date().toISOString();
      await this.store.save(state);
      this.audit.record({ event: 'rolled-back', result: r });
      return {
        result: 'aliases-restored',
        message: `aliases point at ${state.sourceIndex} again (${records.map((a) => a.alias).join(', ')}); ${this.spec.target.index} is kept`,
      };
    } catch (e) {
      // A rollback that fails at 3 a.m. is what the on-call must hear of first.
      if (!(e instanceof PreflightError))
        this.audit.record({ event: 'run-failed', step: 'rollback', error: (e as Error).message });
      throw e;
    } finally {
      lock.release();
      await closeStrategy().catch(() => undefined);
      await observed.close();
    }
  }

  /**
   * Delete the old (source) index: only after cutover, after the retention window, and when named exactly. The
   * window is cutover.retentionHours from the switch, as the spec says it now.
   */
  cleanup(confirmIndex: string | undefined, opts: RunOptions = {}, now = new Date()): Promise<string> {
    return this.seated('cleanup', opts, (o) => this.cleanupSeated(confirmIndex, o, now));
  }

  private async cleanupSeated(
    confirmIndex: string | undefined,
    opts: RunOptions,
    now: Date,
  ): Promise<string> {
    const reporter = opts.reporter ?? silentReporter;
    const alerts = alertsFor(this.spec, reporter);
    const lock = this.lock('cleanup', opts);
    const observed = this.observe(alerts, reporter);
    try {
      const state = this.state();
      if (state.phase !== 'cut-over' || !state.sourceIndex || !state.cutoverAt) {
        throw new PreflightError(
          `cleanup: migration ${this.spec.name} is "${state.phase}", not cut over; nothing is deleted`,
        );
      }
      const retainUntil = new Date(
        Date.parse(state.cutoverAt) + this.spec.cutover.retentionHours * 3_600_000,
      );
      if (now < retainUntil) {
        throw new PreflightError(
          `cleanup: the old index ${state.sourceIndex} is retained until ${retainUntil.toISOString()} (switched at ${state.cutoverAt} + cutover.retentionHours = ${this.spec.cutover.retentionHours}); rollback stays possible until then`,
        );
      }
      if (confirmIndex !== state.sourceIndex) {
        throw new PreflightError(
          `cleanup deletes index "${state.sourceIndex}": confirm with --confirm-delete ${state.sourceIndex}`,
        );
      }
      const ends = migrationEnds({ source: this.source, target: this.target, state, spec: this.spec });
      const where = await aliasPlacement(state.aliases?.records ?? [], ends.source, ends.target);
      if ((state.aliases?.records.length ?? 0) > 0 && where.placement !== 'to') {
        throw new GateError(
          `cleanup: aliases do not all point at the target (${where.detail}); refusing to delete ${state.sourceIndex}`,
        );
      }
      await this.source.deleteIndex(state.sourceIndex);
      state.phase = 'cleaned-up';
      await this.store.save(state);
      this.audit.record({ event: 'old-index-deleted', index: state.sourceIndex });
      return state.sourceIndex;
    } finally {
      lock.release();
      await observed.close();
    }
  }

  /** `cutover verify`: the proof on demand, after the copy; changes nothing. */
  async verify(opts: { signal?: AbortSignal; reporter?: Reporter } = {}): Promise<ProofReport> {
    const state = this.state();
    if (!state.completed.copy)
      throw new PreflightError(
        `verify: migration ${this.spec.name} has not finished copying (phase ${state.phase})`,
      );
    const c = this.context(state, await loadTransform(this.spec.transformPath), opts);
    try {
      return await runProof(c);
    } catch (e) {
      if (opts.signal?.aborted) throw new Interrupted('verify interrupted; nothing was changed');
      throw e;
    }
  }

  /**
   * The report of where the migration stands, from the state and the capture files. While a copy runs (here or
   * in another process) the figures come from the slice checkpoints, which move with every acknowledged bulk.
   */
  report(): RunReport {
    const s = this.state();
    const cps =
      !s.completed.copy && s.sourceShards && this.spec.copy.engine === 'client'
        ? loadCheckpoints(this.store, planOf(s))
        : undefined;
    const live = cps ? { ...s, totals: totalsOf(cps, s.totals?.sourceDocs ?? 0) } : s;
    return buildReport(
      live,
      this.store.deadLetterPath,
      readJson<CaptureState>(this.store.capturePath),
      readJson<CaptureState>(this.store.revertPath),
      readJson<JournalSyncState>(this.store.journalSyncPath),
      readJson<WatchdogRecord>(this.store.watchdogPath),
      cps,
    );
  }

  /**
   * `cutover status`: the report, the steps done, who runs the migration now, the last error while it still
   * stands, and anything the application feels right now (a write block left in place).
   */
  async status(): Promise<MigrationStatus> {
    const shared = this.spec.copy.workers;
    if (shared && !this.store.load()) {
      const seen = await peekSeat(shared, this.spec.name);
      if (seen) return this.statusFromSeat(seen).finally(() => seen.close());
    }
    const s = this.state();
    const owner = lockOwner(this.store.lockPath);
    const running = owner
      ? heldByLiveProcess(this.store.lockPath) || owner.host !== hostname()
        ? `${owner.command} (pid ${owner.pid} on ${owner.host}, since ${owner.startedAt})`
        : `nothing: the ${owner.command} of pid ${owner.pid} stopped without finishing; \`cutover run\` resumes`
      : undefined;
    // What the application feels right now: a write block on either index, read from the clusters.
    const writeBlocks = await writeBlockStatus({
      source: this.source,
      target: this.target,
      state: s,
      targetIndex: this.spec.target.index,
      specPath: this.spec.file,
      lockPath: this.store.lockPath,
    });
    const warnings = writeBlocks.flatMap((b) => b.notes);
    return {
      writeBlocks,
      report: this.report(),
      completed: Object.keys(s.completed),
      running,
      lastError: s.phase === 'failed' ? s.lastError : undefined,
      warnings,
    };
  }

  /**
   * copy.workers, and this machine's state directory has none: the status of the state in the runner's seat, read
   * through a temporary copy of it (nothing here is written), with who holds the seat.
   */
  private async statusFromSeat(
    seen: NonNullable<Awaited<ReturnType<typeof peekSeat>>>,
  ): Promise<MigrationStatus> {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-status-'));
    const view = new Migration({ ...this.spec, migrationDir: dir });
    try {
      await seen.write(view.store);
      const st = await view.status();
      const h = seen.holder;
      return {
        ...st,
        running: !h
          ? undefined
          : h.host === hostname() && !alive(h.pid)
            ? `nothing: the runner of pid ${h.pid} stopped without finishing; \`cutover run\` resumes (on any machine)`
            : `a runner on ${h.host}, pid ${h.pid} (it holds the seat in the NATS bucket ${seen.bucket})`,
        warnings: [
          ...st.warnings,
          `this machine's state directory has no state of ${this.spec.name}: read from the NATS bucket ${seen.bucket} (save ${seen.record.seq}, ${seen.record.writtenAt})`,
        ],
      };
    } finally {
      await view.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * The writes the old index receives over `seconds` (its primaries' counters), and indices writers auto-created
   * on the source cluster under an alias name: after a manual cutover across clusters, 0 means the application
   * has moved. Changes nothing.
   */
  async sourceWrites(seconds = 5, signal?: AbortSignal): Promise<SourceWrites> {
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600)
      throw new PreflightError('source-writes: --seconds must be a number of seconds between 0 and 600');
    const state = this.state();
    const index =
      state.sourceIndex ?? (await resolveIndex(this.source, this.spec.source.index, 'source.index'));
    return sourceWrites(this.source, index, specAliasNames(this.spec), seconds, signal);
  }

  /**
   * `cutover doctor`: cluster health (with the allocation explain of an unassigned shard), reindex/bulk/search
   * tasks running longer than `olderThanMinutes`, search contexts left open. Reads only.
   */
  doctor(opts: { olderThanMinutes?: number } = {}): Promise<DoctorReport> {
    return doctor({
      source: this.source,
      target: this.target,
      olderThanMinutes: opts.olderThanMinutes ?? 10,
      runnerAlive: heldByLiveProcess(this.store.lockPath),
      keepAlive: this.spec.copy.keepAlive,
      ownPits: (() => {
        const pits = new PitRegistry(this.store.pitsPath);
        return { open: pits.list(), leftBehind: pits.leftBehind() };
      })(),
    });
  }

  /** The task `doctor --cancel` names, on whichever cluster runs it; a PreflightError when neither does. */
  async task(id: string): Promise<NonNullable<Awaited<ReturnType<typeof findTask>>>> {
    let t: Awaited<ReturnType<typeof findTask>>;
    try {
      t = await findTask(this, id);
    } catch (e) {
      if (e instanceof RangeError) throw new PreflightError(e.message);
      throw e;
    }
    if (!t) throw new PreflightError(`no task ${id} on the source or the target cluster (finished already?)`);
    return t;
  }

  /** Cancel a task (the caller confirmed it), recorded in the audit trail. */
  async cancelTask(id: string): Promise<string> {
    const t = await this.task(id);
    await cancelTask(t.cluster, id);
    this.audit.record({ event: 'task-cancelled', side: t.side, task: id, action: t.action });
    return `asked the ${t.side} cluster to cancel task ${id} (${t.action}, running ${Math.round(t.runningSeconds / 60)} min)`;
  }

  /** Write the report next to the state (report.json), once the migration has started. */
  saveReport(): RunReport {
    const r = this.report();
    if (this.state().sourceIndex) writeJsonAtomic(this.store.reportPath, r);
    return r;
  }

  async close(): Promise<void> {
    await this.source.close();
    if (this.target !== this.source) await this.target.close();
  }
}

/** The alert webhooks and hooks of the spec, their secrets read from the environment now (bad input: exit 2). */
function alertsFor(spec: LoadedSpec, reporter: Reporter): Alerts {
  return new Alerts({
    migration: spec.name,
    webhooks: spec.alerts.webhooks.map((w, i) => ({ ...w, ...webhookSecrets(w, i) })),
    hooksPath: spec.hooksPath,
    facts: { CUTOVER_SOURCE_INDEX: spec.source.index, CUTOVER_TARGET_INDEX: spec.target.index },
    warn: (m) => reporter.warn(m),
  });
}
