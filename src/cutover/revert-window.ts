/**
 * The revert window: after the switch, the new index's changes are copied back into the old one, so that a
 * rollback inside the window loses none of the writes the application made after cutover.
 *
 * The reverse sync is the forward capture with the roles swapped (tail the new index by `_seq_no`, reconcile
 * deletes by id), writing into the old index in a version space of its own: the old index's documents carry
 * small internal versions the application's writes gave them, unrelated to the new index's `_seq_no`, so every
 * reverse write adds REVERSE_VERSION_OFFSET. A rollback drains it: freeze the new index, apply the last changes,
 * move the aliases back in one request, lift the freeze.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import type { FreezeRecord } from '../capture/live.js';
import { LiveCapture } from '../capture/live.js';
import type { CaptureContext } from '../capture/strategy.js';
import type { WritesSinceSwitch } from '../capture/writes-since-switch.js';
import type { Hit } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import { deadLetterIds } from '../copy/dead-letters.js';
import { applyTransform, loadTransform } from '../copy/transform.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { GateError } from '../store/errors.js';
import { switchWhenConverged } from './live-switch.js';

type Ctx = CaptureContext;

/** The copy's page, bulk and pacing settings, shared by the forward capture and the reverse sync. */
export function captureTuning(c: Ctx) {
  return {
    batchDocs: c.spec.copy.batchDocs,
    batchBytes: c.spec.copy.batchBytes,
    concurrency: c.spec.copy.concurrency,
    keepAlive: c.spec.copy.keepAlive,
    gzip: c.spec.copy.gzip,
    intervalMs: c.spec.capture.tailIntervalMs,
    reporter: c.reporter,
    signal: c.signal,
    throttle: c.throttle,
  };
}

/**
 * Above any version an application's internal versioning reaches (one per write) and far below Long.MAX_VALUE,
 * so the old index can still take internal-versioned writes after a rollback.
 */
export const REVERSE_VERSION_OFFSET = 2 ** 52;

/** Whether the window is open; only strategies that keep the old index in sync call this. */
export function revertWindowOpen(c: Pick<Ctx, 'spec' | 'state'>, now = Date.now()): boolean {
  return (
    c.spec.cutover.revertWindowMinutes > 0 &&
    !!c.state.revertCursors &&
    !!c.state.revertUntil &&
    now < Date.parse(c.state.revertUntil)
  );
}

/**
 * Ids the migration left on the old index on purpose: every id the transform dropped (the registry) and every
 * dead letter. Read once: the reverse sync starts after the copy and the switch wrote both.
 */
export function leftBehindIds(c: Pick<Ctx, 'store'>): Set<string> {
  const ids = new Set<string>(deadLetterIds(c.store.deadLetterPath));
  if (existsSync(c.store.droppedIdsPath))
    for (const line of readFileSync(c.store.droppedIdsPath, 'utf8').split('\n'))
      if (line) ids.add((JSON.parse(line) as [string, string | null])[0]);
  return ids;
}

/**
 * The reverse sync: new index -> old index. `since` (the proxies' journal after the switch) tells which ids the
 * application wrote since: a document left on the old index that the application deleted through the alias is
 * then deleted there too; without it, such a delete cannot be seen (docs/live-writes.md, "Known gap").
 */
export async function reverseCapture(c: Ctx, since?: WritesSinceSwitch): Promise<LiveCapture> {
  const back = await loadTransform(c.spec.revertTransformPath);
  const knownDead = deadLetterIds(c.store.deadLetterPath);
  let warned = false;
  return new LiveCapture({
    source: c.target,
    target: c.source,
    sourceIndex: c.spec.target.index,
    targetIndex: c.state.sourceIndex!,
    store: c.store,
    transform: back,
    versioning: 'seqno',
    ...captureTuning(c),
    statePath: c.store.revertPath,
    // The reverse sync writes into the old index, on the migration's source cluster.
    targetSide: 'source',
    versionOffset: REVERSE_VERSION_OFFSET,
    label: 'reverse sync',
    // Old documents the migration left behind on purpose (dropped by the transform, dead letters) are absent
    // from the new index without having been deleted there: they stay.
    keep: async (hits: Hit[]) => {
      const keep = new Set<string>(hits.filter((h) => knownDead.has(h._id)).map((h) => h._id));
      const got = await c.source.mget(
        c.state.sourceIndex!,
        hits.map((h) => ({ _id: h._id, routing: h._routing })),
      );
      for (const [i, d] of got.docs.entries()) {
        const h = hits[i]!;
        if (!d.found || keep.has(h._id)) continue;
        let out: unknown;
        try {
          out = await applyTransform(c.transform, (d._source ?? {}) as Record<string, unknown>, {
            id: h._id,
            index: c.state.sourceIndex!,
            routing: h._routing,
          });
        } catch {
          out = null;
        }
        if (out === null) keep.add(h._id);
      }
      if (!since || keep.size === 0) return keep;
      // Left behind, but written by the application since the switch: the new index has its truth (absent there:
      // deleted there), so it goes from the old index too.
      const seen = await since.touched([...keep]);
      for (const id of seen.touched) keep.delete(id);
      if (seen.unknown.size > 0 && !warned) {
        warned = true;
        c.reporter.warn(
          `the reverse sync keeps ${seen.unknown.size} document(s) the migration left on ${c.state.sourceIndex} (e.g. ${[...seen.unknown].slice(0, 3).join(', ')}) without knowing whether the application deleted them since the switch: ${seen.why}. A rollback may bring them back`,
        );
        c.audit.record({ event: 'reverse-keep-unknown', ids: seen.unknown.size, why: seen.why });
      }
      return keep;
    },
  });
}

/**
 * The `revert-window` step: keep the old index current until the window closes. Returns 'handover' when a
 * `rollback` asked for the lock.
 */
export async function keepOldIndexInSync(c: Ctx, since?: WritesSinceSwitch): Promise<'closed' | 'handover'> {
  const rev = await reverseCapture(c, since);
  await rev.start(c.state.revertCursors);
  const until = Date.parse(c.state.revertUntil!);
  c.reporter.info(
    `revert window open until ${c.state.revertUntil}: writes made on ${c.spec.target.index} are copied back to ${c.state.sourceIndex}; \`cutover rollback\` before then loses none of them`,
  );
  let rounds = 0;
  while (Date.now() < until) {
    if (existsSync(c.store.rollbackRequestPath)) return 'handover';
    await rev.round();
    // Deletes need an id scan; a slower rhythm keeps its cost small while the rollback stays exact (it drains).
    if (++rounds % 20 === 0) await rev.reconcile();
    await sleep(Math.min(c.spec.capture.tailIntervalMs, Math.max(0, until - Date.now())), c.signal);
  }
  c.audit.record({ event: 'revert-window-closed', reverse: rev.snapshot.applied });
  return 'closed';
}

/** Ask a run that holds the lock in its revert window to stop, and wait until it did. */
export async function requestHandover(
  c: Pick<Ctx, 'store'>,
  lockFree: () => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  writeFileAtomic(c.store.rollbackRequestPath, `${new Date().toISOString()}\n`);
  const until = Date.now() + timeoutMs;
  while (!lockFree()) {
    if (Date.now() > until)
      throw new GateError(
        `rollback: the running migration did not hand over within ${timeoutMs / 1000} s; stop it and rerun rollback`,
      );
    await sleep(200);
  }
}

/** Rollback inside the revert window: drain the reverse sync under a freeze of the new index, then switch back. */
export async function drainedRollback(
  c: Ctx,
  forward: LiveCapture,
  since?: WritesSinceSwitch,
): Promise<FreezeRecord> {
  const rev = await reverseCapture(c, since);
  await rev.start(c.state.revertCursors);
  // The reverse reconcile may have lagged (it runs every 20 rounds): settle deletes before freezing.
  await rev.reconcile();
  const t = c.state.totals;
  const f = await switchWhenConverged(c, {
    capture: rev,
    from: { cluster: c.target, index: c.spec.target.index, side: 'target' },
    to: { cluster: c.source, index: c.state.sourceIndex! },
    // Documents the migration dropped stay on the old index only, so counts prove nothing then.
    exactCounts:
      forward.exactCounts(t?.deadLetters ?? 0) && forward.droppedEver === 0 && (t?.dropped ?? 0) === 0,
  });
  if (existsSync(c.store.rollbackRequestPath)) unlinkSync(c.store.rollbackRequestPath);
  return f;
}
