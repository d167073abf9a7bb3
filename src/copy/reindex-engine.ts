/**
 * The copy by the cluster's own `_reindex` (copy.engine: reindex): the server reads and writes, spread over its
 * nodes; cutover starts the task, paces it (`_rethrottle` from the throttle), follows it (the task API), cancels it
 * on abort, and keeps the task id on disk so a run killed with kill -9 finds it again.
 *
 * It keeps the client engine's guarantees by writing with `op_type: create` and `conflicts: proceed`: the reindex
 * never overwrites a document, so a state the live capture already wrote (newer, with version `_seq_no + 1`) stays,
 * and a state the reindex created first (internal version 1) is overwritten by the capture's later external
 * version. A document the capture deleted (a tombstone) could be created again from the reindex's older snapshot:
 * the capture strategies this engine runs with (none, seqno, timestamp) end with an id reconcile after the copy,
 * which deletes every target id the source no longer has (docs/guarantees.md has the argument).
 *
 * A document the target refuses aborts a reindex: its failures become dead letters, and the reindex starts again
 * without those ids (documents already there answer with a version conflict, counted, not copied again). More dead
 * letters than copy.maxDeadLetters stop the copy.
 */
import type { Cluster } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import type { Throttle } from '../ops/throttle.js';
import { readJson, writeFileAtomic } from '../store/atomic-file.js';
import { GateError } from '../store/errors.js';
import type { DeadLetter, DeadLetterSink } from './dead-letters.js';

/** What the task reports while it runs and when it ends (the fields cutover reads). */
export interface ReindexStatus {
  total: number;
  created: number;
  updated: number;
  version_conflicts: number;
  batches: number;
  noops: number;
  requests_per_second?: number;
  throttled_millis?: number;
}

interface ReindexResponse extends ReindexStatus {
  took?: number;
  /** why the task was cancelled, when it was */
  canceled?: string;
  failures?: Array<{
    index?: string;
    id?: string;
    status?: number;
    cause?: { type?: string; reason?: string };
  }>;
}

/** The engine's file in the state directory: the task to find again after a crash, and the attempts so far. */
export interface ReindexRecord {
  format: 1;
  /** the running (or last) task, node:id */
  task?: string;
  /** how many reindex requests this copy started */
  attempts: number;
  /** documents the finished attempts created (the running one's come from its task) */
  createdBefore: number;
  conflictsBefore: number;
  /** ids left out of the next attempt: the target refused them (dead letters) */
  excluded: string[];
  done: boolean;
}

export interface ReindexProgress {
  created: number;
  conflicts: number;
  total: number;
  deadLetters: number;
}

export interface ReindexCopyOptions {
  /** the cluster that runs the task: the target's (it writes there; with `remote` it reads from the source) */
  runner: Cluster;
  sourceIndex: string;
  targetIndex: string;
  /** the source on another cluster: reindex from remote (the target cluster must allow it: reindex.remote.allowlist) */
  remote?: { host: string; username?: string; password?: string };
  /** slices of the task (same cluster only; a reindex from remote cannot be sliced) */
  slices: number | 'auto';
  batchDocs: number;
  throttle: Throttle;
  recordPath: string;
  deadLetters: DeadLetterSink;
  maxDeadLetters: number;
  signal?: AbortSignal;
  /** how often the task is asked for its progress */
  pollMs?: number;
  onProgress?: (p: ReindexProgress) => void;
  onNotice?: (message: string) => void;
  onTask?: (
    event: 'started' | 'found' | 'lost' | 'cancelled' | 'failed' | 'done',
    task: string,
    detail?: unknown,
  ) => void;
}

export function emptyRecord(): ReindexRecord {
  return { format: 1, attempts: 0, createdBefore: 0, conflictsBefore: 0, excluded: [], done: false };
}

/** The reindex body: never overwrite, go on past conflicts, leave out the dead letters. */
export function reindexBody(
  o: Pick<ReindexCopyOptions, 'sourceIndex' | 'targetIndex' | 'remote' | 'batchDocs'>,
  excluded: readonly string[],
): unknown {
  return {
    conflicts: 'proceed',
    source: {
      index: o.sourceIndex,
      size: o.batchDocs,
      ...(excluded.length ? { query: { bool: { must_not: [{ ids: { values: [...excluded] } }] } } } : {}),
      ...(o.remote ? { remote: o.remote } : {}),
    },
    dest: { index: o.targetIndex, op_type: 'create' },
  };
}

/** requests_per_second for the throttle's view: its rate, a crawl while paused, -1 for unlimited. */
export function paceOf(view: { paused: boolean; rate: number }): number {
  if (view.paused) return 0.001;
  return view.rate > 0 ? view.rate : -1;
}

export async function reindexCopy(o: ReindexCopyOptions): Promise<ReindexRecord> {
  const rec: ReindexRecord = readJson<ReindexRecord>(o.recordPath) ?? emptyRecord();
  const save = () => writeFileAtomic(o.recordPath, `${JSON.stringify(rec)}\n`);
  const pollMs = o.pollMs ?? 1000;
  let dead = rec.excluded.length;

  while (!rec.done) {
    o.signal?.throwIfAborted();
    let task = rec.task;
    let known = task ? await o.runner.task<ReindexStatus, ReindexResponse>(task) : undefined;
    if (task && !known) {
      o.onNotice?.(
        `reindex task ${task} is gone (its node restarted?): starting the copy again; documents already there are kept`,
      );
      o.onTask?.('lost', task);
      task = undefined;
    } else if (task) o.onTask?.('found', task, { completed: known?.completed });
    if (!task) {
      const pace = paceOf(o.throttle.view());
      task = await o.runner.startReindex(reindexBody(o, rec.excluded), {
        requests_per_second: String(pace),
        ...(o.remote ? {} : { slices: String(o.slices) }),
      });
      rec.task = task;
      rec.attempts++;
      save();
      o.onTask?.('started', task, { attempt: rec.attempts, excluded: rec.excluded.length });
      known = undefined;
    }

    // Follow it: progress, pace, abort.
    let lastPace = Number.NaN;
    let response: ReindexResponse | undefined;
    let error: { type?: string; reason?: string } | undefined;
    try {
      for (;;) {
        known ??= await o.runner.task<ReindexStatus, ReindexResponse>(task);
        if (!known) break; // forgotten while running: the outer loop starts again
        const st = known.completed ? known.response : known.task?.status;
        if (st)
          o.onProgress?.({
            created: rec.createdBefore + (st.created ?? 0),
            conflicts: rec.conflictsBefore + (st.version_conflicts ?? 0),
            total: st.total ?? 0,
            deadLetters: dead,
          });
        if (known.completed) {
          response = known.response;
          error = known.error;
          break;
        }
        const pace = paceOf(o.throttle.view());
        if (pace !== lastPace) {
          await o.runner.rethrottleReindex(task, pace);
          lastPace = pace;
        }
        known = undefined;
        await sleep(pollMs, o.signal);
      }
    } catch (e) {
      // Ctrl-C, panic or a failure of our own: the task must not go on writing behind our back.
      if (o.signal?.aborted) {
        await o.runner.cancelTask(task).catch(() => undefined);
        o.onNotice?.(`reindex task ${task} cancelled`);
      }
      throw e;
    }
    // Cancelled (Ctrl-C, panic, or by hand with `doctor --cancel`): what it copied stays, the rest is to do.
    const cancelled = response?.canceled ?? (/cancel/i.test(error?.type ?? '') ? error?.reason : undefined);
    if (cancelled) {
      rec.createdBefore += response?.created ?? 0;
      rec.conflictsBefore += response?.version_conflicts ?? 0;
      o.onNotice?.(`reindex task ${task} was cancelled (${cancelled}): starting it again`);
      o.onTask?.('cancelled', task, { reason: cancelled });
    }
    if ((!response && !error) || cancelled) {
      rec.task = undefined;
      save();
      continue;
    }
    if (error) {
      o.onTask?.('failed', task, error);
      throw new Error(
        `reindex task ${task} failed: ${error.type ?? 'error'}: ${error.reason ?? JSON.stringify(error)}`,
      );
    }
    const r = response!;
    rec.createdBefore += r.created ?? 0;
    rec.conflictsBefore += r.version_conflicts ?? 0;
    const failures = (r.failures ?? []).filter((f) => f.id !== undefined);
    if ((r.failures ?? []).length > failures.length)
      throw new Error(
        `reindex task ${task} failed on a search: ${JSON.stringify((r.failures ?? []).find((f) => f.id === undefined)).slice(0, 400)}`,
      );
    if (failures.length === 0) {
      rec.done = true;
      rec.task = undefined;
      save();
      o.onTask?.('done', task, { created: rec.createdBefore, conflicts: rec.conflictsBefore });
      break;
    }
    // The target refused documents: they become dead letters, and the next attempt leaves them out.
    const at = new Date().toISOString();
    const fresh = failures.filter((f) => !rec.excluded.includes(f.id!));
    if (fresh.length === 0)
      throw new Error(
        `reindex task ${task} refused documents it was told to leave out (${failures.map((f) => f.id).join(', ')}): stopping instead of looping`,
      );
    o.deadLetters.add(
      fresh.map(
        (f): DeadLetter => ({
          id: f.id!,
          index: o.sourceIndex,
          status: f.status ?? 400,
          type: f.cause?.type ?? 'unknown',
          reason: f.cause?.reason ?? 'refused by the target',
          at,
        }),
      ),
    );
    rec.excluded.push(...fresh.map((f) => f.id!));
    dead = rec.excluded.length;
    rec.task = undefined;
    save();
    if (dead > o.maxDeadLetters)
      throw new GateError(
        `the target refused ${dead} document(s) during the reindex (first: ${rec.excluded[0]}: ${fresh[0]?.cause?.reason ?? ''}), more than copy.maxDeadLetters = ${o.maxDeadLetters}; each is in the dead-letter file: fix the mapping or the documents and run again, or raise copy.maxDeadLetters`,
      );
    o.onNotice?.(
      `the target refused ${fresh.length} document(s) (${fresh[0]?.cause?.type}: ${fresh[0]?.cause?.reason}); they are dead letters, the reindex starts again without them`,
    );
  }
  return rec;
}
