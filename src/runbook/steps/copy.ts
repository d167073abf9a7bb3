/**
 * The copy: every source document through reader -> transform -> the one versioned writer, slice by slice, a
 * slice's checkpoint moving only after its bulk was acknowledged. The capture strategy runs what it needs beside it.
 */
import { randomUUID } from 'node:crypto';
import { backfill, loadCheckpoints, totalsOf } from '../../copy/backfill.js';
import { FileDeadLetters } from '../../copy/dead-letters.js';
import { type CopyRange, planRanges, planWindows, wholeShards, windowedPlan } from '../../copy/ranges.js';
import { type ReindexRecord, reindexCopy } from '../../copy/reindex-engine.js';
import { importDeadLetters, SharedDeadLetters } from '../../copy/shared-dead-letters.js';
import { pausesOf, sharePauses } from '../../copy/shared-pauses.js';
import { bucketOf, SliceBoard, sharedClaims } from '../../copy/slice-board.js';
import type { DocRef } from '../../copy/slice-copier.js';
import { transformDigest } from '../../copy/transform.js';
import { sameCluster } from '../../cutover/aliases.js';
import { startClosedLoop } from '../../ops/closed-loop.js';
import { clusterConfig } from '../../spec/load.js';
import { readJson } from '../../store/atomic-file.js';
import { emptyTotals, type SliceCheckpoint } from '../../store/state.js';
import type { Ctx, Step } from '../context.js';

export const copyStep: Step = {
  name: 'copy',
  title: 'Copy every document (PIT slices, versioned bulk writes, checkpoints)',
  done: (c) => !!c.state.completed.copy,
  changes: (spec, c) =>
    spec.copy.engine === 'reindex'
      ? [
          `the cluster's own _reindex copies ${spec.source.index} into ${spec.target.index}${spec.target.cluster ? ' from remote (the target cluster reads the source cluster; it must list it in reindex.remote.allowlist)' : ' (slices=auto)'}, op_type=create with conflicts=proceed: it never overwrites a document, so the live capture's newer states stay`,
          `paced by the throttle through _rethrottle (${spec.copy.maxDocsPerSecond ? `at most ${spec.copy.maxDocsPerSecond} docs/s` : 'unlimited unless the closed loop slows it'}), followed through the task API; the task id is kept in reindex.json, so a run killed with kill -9 finds the task again; Ctrl-C or panic cancels it`,
          'a document the target refuses stops the task: it becomes a dead letter and the reindex starts again without it (documents already there answer with a conflict)',
          ...c.strategy.copyNotes(),
        ]
      : [
          `writes every document of ${spec.source.index} into ${spec.target.index} with ${c.strategy.createOnly ? 'op_type=create (a document already there is newer)' : `version_type=external, version = ${spec.copy.versioning === 'seqno' ? 'source _seq_no + 1' : 'source _version'}`}`,
          `${spec.copy.concurrency} slice(s) at a time, ${spec.copy.batchDocs} docs / ${spec.copy.batchBytes} bytes per bulk${spec.copy.maxDocsPerSecond ? `, at most ${spec.copy.maxDocsPerSecond} docs/s` : ''}`,
          ...(spec.copy.order === 'newest-first' && spec.copy.newestFirst
            ? [
                `newest first by ${spec.copy.newestFirst.field}: its span cut into ${spec.copy.newestFirst.windows} time windows, copied from the newest back (then the documents without it), each window of each shard with its own checkpoint; status and the report say how far back the copy has reached`,
              ]
            : []),
          ...(spec.copy.workers
            ? [
                `shared in the NATS bucket ${bucketOf(spec.name, spec.copy.workers)}: the plan and every slice's checkpoint live there; \`cutover worker\` with this spec on any machine takes slices under leases of ${spec.copy.workers.leaseSeconds} s (a process killed or cut off loses them, another continues from the checkpoint)`,
              ]
            : []),
          ...c.strategy.copyNotes(),
          spec.copy.throttle.enabled
            ? `closed-loop throttle: every ${spec.copy.throttle.intervalMs} ms reads the write queue, rejections, heap and circuit breakers of the target${c.source === c.target ? '' : ' and the source'}, the 429s and bulk latency the copy sees and the source's search latency; halves the rate when one is over its threshold, raises it step by step when all are clear, never below ${spec.copy.throttle.floorDocsPerSecond} docs/s (copy.throttle.floorDocsPerSecond)${spec.copy.maxDocsPerSecond ? ` nor above ${spec.copy.maxDocsPerSecond} docs/s` : ''}`
            : 'closed-loop throttle off (copy.throttle.enabled: false): the copy runs at the ceiling whatever the clusters show',
          spec.watchdog.enabled
            ? `watchdog (the whole run): _cluster/health every ${spec.watchdog.intervalSeconds} s; a cluster red for ${spec.watchdog.redAfterSeconds} s pauses the copy and the capture rounds until it is yellow or green again, with the allocation explain in the warning and the report`
            : 'watchdog off (watchdog.enabled: false): a red cluster does not pause the copy',
        ],
  async run(c) {
    const sourceIndex = c.state.sourceIndex!;
    const slices = c.state.sourceShards!;
    await c.source.refresh(sourceIndex).catch(() => undefined);
    const sourceDocs = await c.source.count(sourceIndex);
    if (c.spec.copy.engine === 'reindex') return copyByReindex(c, sourceIndex, sourceDocs);
    const plan = await copyPlan(c, slices);
    const before = totalsOf(loadCheckpoints(c.store, plan), sourceDocs);
    c.state.copyStartedAt ??= new Date().toISOString();
    // The state carries the figures while the copy runs, so `status` from another shell is true meanwhile.
    c.state.totals = before;
    await c.store.save(c.state);
    c.reporter.copyStarted(
      sourceDocs,
      before.copied + before.conflicts + before.dropped + before.deadLetters,
    );
    const loop = closedLoopBesideCopy(c);
    const board = c.spec.copy.workers ? await publishBoard(c, plan, sourceIndex, slices) : undefined;
    const mirror = board && mirrorBoard(c, board);
    // A pause of the runner (operator, flag file, watchdog) pauses every worker of the shared copy too.
    const pauses =
      board &&
      sharePauses(c.throttle, board, (e) =>
        c.reporter.warn(
          `the NATS bucket did not take the runner's pauses (${e.message}); the workers may not follow a pause or a resume yet: trying again`,
        ),
      );
    try {
      const cps = await c.strategy.alongsideCopy(c, async (hooks) => {
        const cps = await backfill({
          source: c.source,
          target: c.target,
          sourceIndex,
          targetIndex: c.spec.target.index,
          slices,
          plan,
          batchDocs: c.spec.copy.batchDocs,
          batchBytes: c.spec.copy.batchBytes,
          concurrency: c.spec.copy.concurrency,
          throttle: c.throttle,
          keepAlive: c.spec.copy.keepAlive,
          versioning: c.spec.copy.versioning,
          gzip: c.spec.copy.gzip,
          createOnly: c.strategy.createOnly,
          softDeleteField: c.strategy.softDeleteField,
          onDropped: hooks.onDropped,
          yieldTo: hooks.yieldTo,
          transform: c.transform,
          store: c.store,
          deadLetters: board
            ? new SharedDeadLetters(new FileDeadLetters(c.store.deadLetterPath), board)
            : new FileDeadLetters(c.store.deadLetterPath),
          signal: c.signal,
          // Shared: every process's progress comes from the board (mirrorBoard), this one's included.
          onProgress: board ? undefined : (p) => c.reporter.copyProgress(p),
          onCheckpoint: checkpointTrail(c),
          onNotice: (m) => c.reporter.warn(m),
          onBulk: (b) => {
            loop?.onBulk(b);
            c.reporter.bulk?.(b);
          },
          claims:
            board &&
            sharedClaims(board, {
              onError: (e) => c.reporter.warn(`the NATS bucket did not answer (${e.message}); trying again`),
              onTakeover: (slice, from) =>
                c.reporter.warn(
                  `slice ${slice}: ${from.host} pid ${from.pid} (${from.id.slice(0, 8)}) stopped renewing it; continued here from its checkpoint`,
                ),
            }),
        });
        if (board) {
          await mirror?.stop();
          await finishShared(c, board, cps, hooks.onDropped);
        }
        return cps;
      });
      c.state.totals = totalsOf(cps, sourceDocs);
    } finally {
      await mirror?.stop();
      await pauses?.stop();
      await board?.close();
      await loop?.stop();
      c.reporter.copyFinished();
    }
    c.state.copyFinishedAt = new Date().toISOString();
    c.audit.record({ event: 'copied', totals: c.state.totals });
    return 'continue';
  },
};

/**
 * copy.workers: the plan and the slices go to the NATS bucket before any slice is copied, under an id kept in the
 * state so a restarted runner joins its own copy and never another's.
 */
async function publishBoard(
  c: Ctx,
  plan: CopyRange[],
  sourceIndex: string,
  shards: number,
): Promise<SliceBoard> {
  c.state.copyId ??= randomUUID();
  await c.store.save(c.state);
  const board = await SliceBoard.publish(
    c.spec.copy.workers!,
    {
      copyId: c.state.copyId,
      migration: c.spec.name,
      sourceIndex,
      targetIndex: c.spec.target.index,
      shards,
      ranges: plan,
      versioning: c.spec.copy.versioning,
      createOnly: !!c.strategy.createOnly,
      softDeleteField: c.strategy.softDeleteField,
      transformSha: transformDigest(c.spec.transformPath),
      publishedAt: new Date().toISOString(),
    },
    loadCheckpoints(c.store, plan),
    undefined,
    pausesOf(c.throttle),
  );
  c.audit.record({ event: 'copy-shared', bucket: board.bucketName, slices: plan.length });
  c.reporter.info(
    `copy shared in the NATS bucket ${board.bucketName}: ${plan.length} slices; \`cutover worker\` with this spec on any machine takes slices from it`,
  );
  return board;
}

/** copy.workers: a shared copy is cut into this many streams per slot of one process (ranges of >= 10,000 ops). */
const SHARED_STREAMS_PER_SLOT = 4;

/** How often the runner reads every slice of a shared copy (progress, status, and the state directory's mirror). */
const MIRROR_MS = 2000;

/**
 * The board's checkpoints copied into the state directory as they move: status, the dashboard and the report read
 * them there, and a bucket lost by hand would still leave each slice's last checkpoint. Progress is told from the
 * differences, for every process's slices alike.
 */
function mirrorBoard(c: Ctx, board: SliceBoard): { stop(): Promise<void> } {
  const seen = new Map<number, SliceCheckpoint>();
  for (const cp of loadCheckpoints(c.store, board.plan.ranges)) seen.set(cp.slice, cp);
  let running: Promise<void> = Promise.resolve();
  const once = async () => {
    const cps = await board.checkpoints().catch(() => undefined);
    for (const cp of cps ?? []) {
      const was = seen.get(cp.slice);
      if (was && was.updatedAt === cp.updatedAt && was.done === cp.done) continue;
      const d = (k: 'copied' | 'conflicts' | 'dropped' | 'deadLetters' | 'bytes' | 'retries') =>
        Math.max(0, cp[k] - (was?.[k] ?? 0));
      const docs = d('copied') + d('conflicts') + d('dropped') + d('deadLetters');
      if (docs > 0)
        c.reporter.copyProgress({
          slice: cp.slice,
          docs,
          bytes: d('bytes'),
          dropped: d('dropped'),
          result: {
            written: d('copied'),
            deleted: 0,
            conflicts: d('conflicts'),
            deadLetters: d('deadLetters'),
            retries: d('retries'),
            bytes: d('bytes'),
          },
        });
      seen.set(cp.slice, cp);
      await c.store.saveCheckpoint({ ...cp });
    }
  };
  const timer = setInterval(() => {
    running = running.then(once);
  }, MIRROR_MS);
  let stopped: Promise<void> | undefined;
  return {
    // Once: a second stop (the finally after finishShared) must not read a bucket already removed.
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await running;
        await once();
      })();
      return stopped;
    },
  };
}

/**
 * Every slice is done: the checkpoints go to the state directory, the ids every process's transform dropped go
 * to the capture, and the plan is marked done. A runner that goes on after a crash before the copy step was saved
 * (on this machine or another) finds the same done slices and dropped ids in the bucket and does this again.
 */
async function finishShared(
  c: Ctx,
  board: SliceBoard,
  cps: SliceCheckpoint[],
  onDropped: ((ids: DocRef[]) => void) | undefined,
): Promise<void> {
  for (const cp of cps) await c.store.saveCheckpoint({ ...cp });
  const dropped = await board.droppedIds();
  if (dropped.length) onDropped?.(dropped);
  // Every process's dead letters into this runner's file: its gate, proof, redrive and report see them all.
  const imported = await importDeadLetters(board, c.store.deadLetterPath);
  if (imported > 0) {
    c.audit.record({ event: 'dead-letters-imported', bucket: board.bucketName, letters: imported });
    c.reporter.info(
      `${imported} dead letter(s) met by other processes added to ${c.store.deadLetterPath} (without their documents: those stay in the dead-letter file of the machine that met them)`,
    );
  }
  await board.finish();
  c.audit.record({ event: 'copy-shared-done', bucket: board.bucketName, slices: cps.length });
}

/**
 * The copy's streams, decided once: with copy.concurrency above the shard count, the largest shards are read in
 * `_seq_no` ranges side by side (ranges.ts). A copy that already has checkpoints from before ranges keeps one
 * stream per shard: its checkpoints were made for whole shards.
 */
async function copyPlan(c: Ctx, shards: number): Promise<CopyRange[]> {
  if (c.state.copyRanges) return c.state.copyRanges;
  const begun = Array.from({ length: shards }, (_, i) => c.store.loadCheckpoint(i)).some(
    (cp) => cp !== undefined,
  );
  const nf = c.spec.copy.order === 'newest-first' ? c.spec.copy.newestFirst : undefined;
  // Newest first: whole shards per window (the windows are the parallelism); a copy begun the other way stays so.
  const streams =
    begun || nf
      ? wholeShards(shards)
      : planRanges(
          (await c.source.shardSeqNos(c.state.sourceIndex!)).map((m) => m.maxSeqNo),
          // Shared: more slices than one process copies at once, so the processes that join find some to take.
          c.spec.copy.workers ? c.spec.copy.concurrency * SHARED_STREAMS_PER_SLOT : c.spec.copy.concurrency,
        );
  let plan = streams;
  if (nf && !begun) {
    const span = await dateSpan(c, nf.field);
    const windows = span ? planWindows(nf.field, span.min, span.max, nf.windows) : [];
    plan = windowedPlan(
      windows.length
        ? windows
        : [
            { field: nf.field, gte: null, lt: null },
            { field: nf.field, missing: true },
          ],
      streams,
    );
    c.reporter.info(
      span
        ? `newest first: ${nf.field} from ${new Date(span.max).toISOString()} back to ${new Date(span.min).toISOString()} in ${windows.length - 1} windows of ${formatSpan((span.max - span.min + 1) / (windows.length - 1))} (then the documents without it), ${plan.length} streams`
        : `newest first: no document has ${nf.field}; one stream per shard`,
    );
  } else if (nf && begun)
    c.reporter.warn(
      `copy.order newest-first: this copy began in _seq_no order before (its checkpoints say so); it goes on that way`,
    );
  c.state.copyRanges = plan;
  await c.store.save(c.state);
  if (plan.length > shards)
    c.audit.record({ event: 'copy-plan', shards, streams: plan.length, ranges: plan });
  return plan;
}

/** The oldest and newest value of a date field on the source, in epoch ms; undefined when no document has it. */
async function dateSpan(c: Ctx, field: string): Promise<{ min: number; max: number } | undefined> {
  const r = await c.source.search<never>(c.state.sourceIndex!, {
    size: 0,
    track_total_hits: false,
    aggs: { min: { min: { field } }, max: { max: { field } } },
  });
  const aggs = (r as { aggregations?: Record<string, { value: number | null }> }).aggregations;
  const min = aggs?.min?.value;
  const max = aggs?.max?.value;
  if (typeof min !== 'number' || typeof max !== 'number') return undefined;
  return { min: Math.floor(min), max: Math.floor(max) };
}

function formatSpan(ms: number): string {
  const units: Array<[number, string]> = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [u, name] of units) if (ms >= u) return `${Math.round((ms / u) * 10) / 10} ${name}`;
  return `${Math.round(ms)} ms`;
}

/** How often a slice's checkpoint goes into the audit trail while it copies (and always when it is done). */
const CHECKPOINT_AUDIT_MS = 30_000;

/**
 * Checkpoints into the audit trail: enough to say, from the trail alone, how far each slice had come and when,
 * without a durable append per bulk slowing the copy.
 */
function checkpointTrail(c: Ctx): (cp: Readonly<SliceCheckpoint>) => void {
  const last = new Map<number, number>();
  return (cp) => {
    const now = Date.now();
    if (!cp.done && now - (last.get(cp.slice) ?? 0) < CHECKPOINT_AUDIT_MS) return;
    last.set(cp.slice, now);
    c.audit.record({
      event: 'checkpoint',
      slice: cp.slice,
      after: cp.after,
      copied: cp.copied,
      done: cp.done,
    });
  };
}

/**
 * copy.engine reindex: the cluster copies (reindex-engine.ts), the strategy's capture runs beside it as with the
 * client engine; totals come from the task, and the task id stays in the state directory for a crash.
 */
async function copyByReindex(c: Ctx, sourceIndex: string, sourceDocs: number): Promise<'continue'> {
  const across = !sameCluster(c.source, c.target);
  const before = readJson<ReindexRecord>(c.store.reindexPath);
  const totals = (p: { created: number; conflicts: number; deadLetters: number }) => ({
    ...emptyTotals(sourceDocs),
    copied: p.created,
    conflicts: p.conflicts,
    deadLetters: p.deadLetters,
  });
  c.state.copyStartedAt ??= new Date().toISOString();
  c.state.totals = totals({
    created: before?.createdBefore ?? 0,
    conflicts: before?.conflictsBefore ?? 0,
    deadLetters: before?.excluded.length ?? 0,
  });
  await c.store.save(c.state);
  let reported = 0;
  c.reporter.copyStarted(sourceDocs, 0);
  const loop = closedLoopBesideCopy(c);
  try {
    const rec = await c.strategy.alongsideCopy(c, () =>
      reindexCopy({
        runner: c.target,
        sourceIndex,
        targetIndex: c.spec.target.index,
        remote: across ? remoteOf(c) : undefined,
        slices: 'auto',
        batchDocs: c.spec.copy.batchDocs,
        throttle: c.throttle,
        recordPath: c.store.reindexPath,
        deadLetters: new FileDeadLetters(c.store.deadLetterPath),
        maxDeadLetters: c.spec.copy.maxDeadLetters,
        signal: c.signal,
        onProgress: (p) => {
          const handled = p.created + p.conflicts;
          if (handled > reported) {
            const docs = handled - reported;
            reported = handled;
            c.reporter.copyProgress({
              slice: 0,
              docs,
              bytes: 0,
              dropped: 0,
              result: { written: 0, deleted: 0, conflicts: 0, deadLetters: 0, retries: 0, bytes: 0 },
            });
          }
          c.state.totals = totals(p);
          // Figures only, and never seated (copy.workers refuses the reindex engine): not awaited.
          c.store
            .save(c.state)
            .catch((e: Error) => c.reporter.warn(`could not save the state: ${e.message}`));
        },
        onNotice: (m) => c.reporter.warn(m),
        onTask: (event, task, detail) => c.audit.record({ event: `reindex-${event}`, task, detail }),
      }),
    );
    c.state.totals = totals({
      created: rec.createdBefore,
      conflicts: rec.conflictsBefore,
      deadLetters: rec.excluded.length,
    });
  } finally {
    await loop?.stop();
    c.reporter.copyFinished();
  }
  c.state.copyFinishedAt = new Date().toISOString();
  c.audit.record({ event: 'copied', engine: 'reindex', totals: c.state.totals });
  return 'continue';
}

/** The source as the target cluster's reindex-from-remote reads it: its URL and basic-auth credentials. */
function remoteOf(c: Ctx): { host: string; username?: string; password?: string } {
  const cfg = clusterConfig(c.spec.source.cluster, 'source.cluster');
  const auth = cfg.auth as { username?: string; password?: string } | undefined;
  return {
    host: new URL(c.spec.source.cluster.url).origin,
    ...(auth?.username ? { username: auth.username, password: auth.password } : {}),
  };
}

/** The closed loop runs beside the copy only (either engine): it steers the rate the copy writes at. */
function closedLoopBesideCopy(c: Ctx): ReturnType<typeof startClosedLoop> | undefined {
  return c.spec.copy.throttle.enabled
    ? startClosedLoop({
        throttle: c.throttle,
        source: c.source,
        target: c.target,
        intervalMs: c.spec.copy.throttle.intervalMs,
        reporter: c.reporter,
      })
    : undefined;
}
