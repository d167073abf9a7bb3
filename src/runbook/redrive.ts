/**
 * `run --retry-dead-letters`: the dead letters are copied again and the totals follow what landed, so the dead
 * letter gate and the proof, which run again afterwards, judge the target as it is now.
 */
import type { CaptureState } from '../capture/live.js';
import { redrive } from '../copy/redrive.js';
import { readJson, writeJsonAtomic } from '../store/atomic-file.js';
import type { Ctx } from './context.js';

export async function redriveDeadLetters(c: Ctx): Promise<void> {
  const t = c.state.totals;
  if (!c.state.completed.copy || !t) {
    c.reporter.info('--retry-dead-letters: the copy has not finished; its dead letters are retried after it');
    return;
  }
  const r = await redrive({
    source: c.source,
    target: c.target,
    sourceIndex: c.state.sourceIndex!,
    targetIndex: c.spec.target.index,
    deadLetterPath: c.store.deadLetterPath,
    transform: c.transform,
    versioning: c.spec.copy.versioning,
    batchBytes: c.spec.copy.batchBytes,
    signal: c.signal,
  });
  t.copied += r.landed;
  t.conflicts += r.conflicts;
  t.dropped += r.dropped;
  t.deadLetters = r.stillFailing;
  // The file held the catch-up's dead letters too: what failed again is counted once, here.
  const capture = readJson<CaptureState>(c.store.capturePath);
  if (capture?.deadLetters) writeJsonAtomic(c.store.capturePath, { ...capture, deadLetters: 0 });
  // The gates judged the old dead letters: they run again on what is there now.
  for (const step of ['gate', 'verify']) delete c.state.completed[step];
  await c.store.save(c.state);
  c.audit.record({ event: 'dead-letters-retried', ...r });
  c.reporter.info(
    `dead letters retried: ${r.tried} document(s); ${r.landed} landed, ${r.conflicts} already newer on the target, ${r.dropped} dropped by the transform, ${r.goneFromSource} gone from the source, ${r.stillFailing} failed again (kept in ${c.store.deadLetterPath})`,
  );
}
