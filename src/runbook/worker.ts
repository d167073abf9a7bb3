/**
 * `cutover worker`: one more process for a copy that `cutover run` shares (copy.workers). It copies slices exactly as
 * the runner would (the plan's versioning and write mode, the same transform, proven by its digest) and touches
 * nothing else: no target settings, no capture, no alias. It ends when no slice is left to copy, and can be
 * killed at any moment: its leases lapse and another process continues its slices from their checkpoints.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../cluster/client.js';
import { backfill } from '../copy/backfill.js';
import { FileDeadLetters } from '../copy/dead-letters.js';
import { SharedDeadLetters } from '../copy/shared-dead-letters.js';
import { followPauses } from '../copy/shared-pauses.js';
import { type SharedPlan, SliceBoard, sharedClaims } from '../copy/slice-board.js';
import { loadTransform, transformDigest } from '../copy/transform.js';
import { startClosedLoop } from '../ops/closed-loop.js';
import { type Reporter, silentReporter } from '../ops/reporter.js';
import { Throttle } from '../ops/throttle.js';
import { clusterConfig, type LoadedSpec } from '../spec/load.js';
import { Interrupted, PreflightError } from '../store/errors.js';
import { StateStore } from '../store/state.js';

export interface WorkerOptions {
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface WorkerResult {
  /** slices this process finished */
  slices: number;
  /** documents this process wrote (a slice continued elsewhere counts what this process wrote of it) */
  docs: number;
  message: string;
}

export async function runWorker(spec: LoadedSpec, opts: WorkerOptions = {}): Promise<WorkerResult> {
  const reporter = opts.reporter ?? silentReporter;
  const workers = spec.copy.workers;
  if (!workers)
    throw new PreflightError(
      'copy.workers is not set in the spec: a worker copies slices of a copy `cutover run` shares in a NATS bucket (copy.workers.servers)',
    );
  if (spec.copy.engine !== 'client')
    throw new PreflightError('copy.engine reindex: the cluster copies; workers share the client engine only');
  const board = await SliceBoard.join(workers, spec.name, {
    signal: opts.signal,
    onWaiting: (b) =>
      reporter.info(`waiting for \`cutover run\` to share the copy of ${spec.name} (NATS bucket ${b})`),
    onError: (e) => reporter.warn(`the NATS bucket did not answer (${e.message}); waiting on`),
  });
  if (!board)
    throw new Interrupted('interrupted while waiting for the copy to be shared; nothing was copied');
  try {
    const plan = board.plan;
    if (plan.doneAt)
      return {
        slices: 0,
        docs: 0,
        message: `the copy of ${plan.sourceIndex} -> ${plan.targetIndex} was over already (every slice done at ${plan.doneAt}); nothing to do`,
      };
    refuseOtherPlan(spec, plan);
    const transform = await loadTransform(spec.transformPath);
    const source = new Cluster(clusterConfig(spec.source.cluster, 'source.cluster'));
    const target = spec.target.cluster
      ? new Cluster(clusterConfig(spec.target.cluster, 'target.cluster'))
      : source;
    const throttle = new Throttle({
      ceiling: spec.copy.maxDocsPerSecond,
      floor: spec.copy.throttle.floorDocsPerSecond,
      concurrency: spec.copy.concurrency,
    });
    // Its own directory (points in time to close after a crash); dead letters go where the runner's go on this host.
    const store = new StateStore(join(spec.migrationDir, 'workers', `${hostname()}-${process.pid}`));
    const loop = spec.copy.throttle.enabled
      ? startClosedLoop({ throttle, source, target, intervalMs: spec.copy.throttle.intervalMs, reporter })
      : undefined;
    // The runner's pauses hold here too (looked at before the first slice is taken).
    const pauses = await followPauses(throttle, board, {
      onChange: (paused, why) =>
        paused ? reporter.warn(`paused: ${why}`) : reporter.info(`resumed: ${why}`),
      onError: (e) => reporter.warn(`the NATS bucket did not answer for the runner's pauses (${e.message})`),
    });
    let docs = 0;
    let slices = 0;
    reporter.info(
      `joined the copy of ${plan.sourceIndex} -> ${plan.targetIndex} (${plan.ranges.length} slices, bucket ${board.bucketName}) as ${hostname()} pid ${process.pid}`,
    );
    try {
      await backfill({
        source,
        target,
        sourceIndex: plan.sourceIndex,
        targetIndex: plan.targetIndex,
        slices: plan.shards,
        plan: plan.ranges,
        batchDocs: spec.copy.batchDocs,
        batchBytes: spec.copy.batchBytes,
        concurrency: spec.copy.concurrency,
        throttle,
        keepAlive: spec.copy.keepAlive,
        versioning: plan.versioning,
        gzip: spec.copy.gzip,
        createOnly: plan.createOnly,
        softDeleteField: plan.softDeleteField,
        transform,
        store,
        // Kept on this machine with the documents, and published for the runner (shared-dead-letters.ts).
        deadLetters: new SharedDeadLetters(
          new FileDeadLetters(new StateStore(spec.migrationDir).deadLetterPath),
          board,
        ),
        signal: opts.signal,
        onProgress: (p) => {
          docs += p.docs;
          reporter.copyProgress(p);
        },
        onCheckpoint: (cp) => {
          if (cp.done) slices++;
        },
        onNotice: (m) => reporter.warn(m),
        onBulk: (b) => loop?.onBulk(b),
        claims: sharedClaims(board, {
          goneIsDone: true,
          onError: (e) => reporter.warn(`the NATS bucket did not answer (${e.message}); trying again`),
          onTakeover: (slice, from) =>
            reporter.warn(
              `slice ${slice}: ${from.host} pid ${from.pid} (${from.id.slice(0, 8)}) stopped renewing it; continued here from its checkpoint`,
            ),
        }),
      });
    } catch (e) {
      if (opts.signal?.aborted)
        throw new Interrupted(
          `interrupted after ${docs} documents in ${slices} finished slices; the slices this worker held are released to the other processes`,
        );
      throw e;
    } finally {
      pauses.stop();
      await loop?.stop();
    }
    return {
      slices,
      docs,
      message: `every slice of the copy is done: this worker copied ${docs} documents and finished ${slices} slices`,
    };
  } finally {
    await board.close();
  }
}

function refuseOtherPlan(spec: LoadedSpec, plan: SharedPlan): void {
  if (plan.targetIndex !== spec.target.index)
    throw new PreflightError(
      `the shared copy of ${spec.name} writes into ${plan.targetIndex}, but this spec names target.index ${spec.target.index}: use the runner's spec`,
    );
  const mine = transformDigest(spec.transformPath);
  if ((plan.transformSha ?? null) !== mine)
    throw new PreflightError(
      `this spec's transform (${spec.transformPath ?? 'none'}) is not the one the runner copies with (${plan.transformSha ? 'sha256 ' + plan.transformSha.slice(0, 12) : 'none'}): every process must write the same documents; use the runner's transform file`,
    );
}
