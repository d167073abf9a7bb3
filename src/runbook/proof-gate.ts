/**
 * The one proof gate: the per-document proof, recorded (proof.json, audit) and judged against
 * verify.maxDifferences. The verify step, the proof right before a manual switch and `cutover verify` all come
 * here, so they cannot disagree about what counts as proven.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { LiveCapture } from '../capture/live.js';
import type { CaptureContext } from '../capture/strategy.js';
import { deadLetterIds } from '../copy/dead-letters.js';
import type { TransformFn } from '../copy/transform.js';
import { readJson, writeJsonAtomic } from '../store/atomic-file.js';
import { GateError, PreflightError } from '../store/errors.js';
import { PitRegistry } from '../store/pit-registry.js';
import { mappingHasPath } from '../verify/mapping-paths.js';
import { type CompareOptions, MAX_REPORTED, type ProofReport, prove } from '../verify/proof.js';
import type { Ctx } from './context.js';
import { settleAfterCatchUp } from './proof-catch-up.js';

interface ProofWatermarks {
  at: string;
  passed: boolean;
  settingsKey: string;
  source: number[];
  target: number[];
  /** what the proof these watermarks belong to compared: a proof that re-reads nothing stands on it */
  compared?: { source: number; target: number; confidence: string };
}

/** Differences above verify.maxDifferences: refused, with the first ones named. */
export function judgeProof(c: Pick<Ctx, 'spec' | 'store' | 'audit'>, r: ProofReport, when: string): void {
  const diffs = r.missing + r.extra + r.changed;
  c.audit.record({
    event: 'proof',
    passed: r.passed,
    missing: r.missing,
    extra: r.extra,
    changed: r.changed,
    resolvedAfterCatchUp: r.resolvedAfterCatchUp,
    changingAfterCatchUp: r.changingAfterCatchUp,
    mode: r.mode,
    when,
  });
  if (diffs > c.spec.verify.maxDifferences)
    throw new GateError(
      `cutover refused: the proof ${when} found ${diffs} difference(s) (missing ${r.missing}, extra ${r.extra}, changed ${r.changed}; allowed ${c.spec.verify.maxDifferences}); first: ${r.differences
        .slice(0, 5)
        .map((d) => `${d.kind} ${JSON.stringify(d.id)}${d.fields ? ` [${d.fields.join(', ')}]` : ''}`)
        .join('; ')}. Full report: ${c.store.proofPath}`,
    );
}

/** The proof, with the strategy's live capture (if any) applying source changes while it reads. */
export async function proveAndJudge(c: Ctx, when: string): Promise<ProofReport> {
  const r = await runProof(c, c.strategy.proofCompanion(c));
  judgeProof(c, r, when);
  return r;
}

/** Differences a live proof keeps for the re-check after catch-up; beyond it the proof's verdict stands as is. */
const LIVE_CANDIDATES = 10_000;

/** A proof is only reusable under the same comparison rules: ignore list, sample rate and transform code. */
function proofSettingsKey(c: Pick<Ctx, 'spec'>): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify([c.spec.verify.mode, c.spec.verify.sampleRate, c.spec.verify.ignore, c.spec.target.index]),
  );
  if (c.spec.transformPath) h.update(readFileSync(c.spec.transformPath));
  return h.digest('hex');
}

/** The proof expects soft-deleted documents to be absent from the target, as the copy makes them. */
function withSoftDeletes(t: TransformFn, field: string | undefined): TransformFn {
  if (!field) return t;
  return (doc, meta) => (doc[field] === true ? null : t(doc, meta));
}

/**
 * `live`: catch-up rounds (and id scans) keep running beside the proof; absent for `cutover verify`.
 * Shards unchanged since a passed proof are not read again; the report then says which proof stands.
 */
export async function runProof(
  c: CaptureContext & Pick<Ctx, 'strategy'>,
  live?: LiveCapture,
): Promise<ProofReport> {
  const sourceIndex = c.state.sourceIndex!;
  const mappings = Object.values(await c.target.getMapping(c.spec.target.index))[0]?.mappings ?? {};
  const unknown = c.spec.verify.ignore.filter((p) => !mappingHasPath(mappings, p));
  if (unknown.length) {
    throw new PreflightError(
      `verify.ignore: ${unknown.map((p) => JSON.stringify(p)).join(', ')} not in the mapping of ${c.spec.target.index}; a typo here would silently hide differences`,
    );
  }
  await Promise.all([c.source.refresh(sourceIndex), c.target.refresh(c.spec.target.index)]);
  // Bounded: the dead-letter gate already refused more than copy.maxDeadLetters.
  const knownMissing =
    (c.state.totals?.deadLetters ?? 0) > 0 ? deadLetterIds(c.store.deadLetterPath) : new Set<string>();
  // Watermarks: a shard whose max_seq_no has not moved since a passed proof holds the same documents, so a
  // repeated proof re-reads only the shards that changed (and the target only if anything changed).
  const [sourceMarks, targetMarks] = await Promise.all([
    c.source.shardSeqNos(sourceIndex),
    c.target.shardSeqNos(c.spec.target.index),
  ]);
  const settingsKey = proofSettingsKey(c);
  const previous = readJson<ProofWatermarks>(c.store.proofWatermarksPath);
  let sourceSlices: number[] | undefined;
  let skipTargetPass = false;
  if (
    previous?.passed &&
    previous.settingsKey === settingsKey &&
    previous.source.length === sourceMarks.length &&
    JSON.stringify(previous.target) === JSON.stringify(targetMarks.map((m) => m.maxSeqNo))
  ) {
    sourceSlices = sourceMarks.flatMap((m, i) => (m.maxSeqNo === previous.source[i] ? [] : [i]));
    skipTargetPass = sourceSlices.length === 0;
  }
  const rules: CompareOptions = {
    source: c.source,
    target: c.target,
    sourceIndex,
    targetIndex: c.spec.target.index,
    transform: withSoftDeletes(c.transform, c.strategy.softDeleteField),
    ignore: c.spec.verify.ignore,
    knownMissing,
    versioning: c.spec.copy.versioning,
    signal: c.signal,
  };
  const proof = () =>
    prove({
      ...rules,
      // Live capture keeps applying source changes while the proof reads, so a candidate difference that is
      // only "not caught up yet" resolves on a re-read instead of failing the proof.
      recheckAttempts: live ? 12 : undefined,
      recheckDelayMs: live ? 1000 : undefined,
      deferRechecks: !!live,
      // Every difference named, so that all of them can be checked again after catch-up (trimmed below).
      maxReported: live ? LIVE_CANDIDATES : undefined,
      sampleRate: c.spec.verify.mode === 'sample' ? c.spec.verify.sampleRate : 1,
      ...(c.spec.verify.mode === 'versions' ? { contentSampleRate: c.spec.verify.sampleRate } : {}),
      // Ids and versions only: pages of a few thousand cost the server little more than pages of hundreds.
      // 2,000 and not more: at 5,000 the pages in flight (two passes, a stream per shard) lifted the peak RSS by
      // 20-30 MB for a proof no faster (docs/benchmarks.md).
      batchDocs:
        c.spec.verify.mode === 'versions' ? Math.max(c.spec.copy.batchDocs, 2000) : c.spec.copy.batchDocs,
      keepAlive: c.spec.copy.keepAlive,
      concurrency: c.spec.copy.concurrency,
      sourceSlices,
      skipTargetPass: skipTargetPass || c.strategy.proofSkipsTargetPass,
      pits: new PitRegistry(c.store.pitsPath),
    });
  // Beside the proof, id scans find deletes, unless the capture sees them as they happen (the proxy's journal).
  const r = live ? await live.alongside(proof, !c.strategy.seesDeletes) : await proof();
  // What still differs when the rounds beside the proof were slower than its re-reads: checked again once
  // catch-up has passed the state compared (proof-catch-up.ts); only what is not capture lag is reported.
  if (live)
    await settleAfterCatchUp(r, live, rules, {
      maxLagMs: c.spec.capture.maxLagSeconds * 1000,
      idScan: !c.strategy.seesDeletes,
      info: (line) => c.reporter.info(line),
    });
  r.differences = r.differences.slice(0, MAX_REPORTED);
  const compared =
    sourceSlices?.length === 0 && previous?.compared
      ? previous.compared
      : { source: r.sourceChecked, target: r.targetChecked, confidence: r.confidence };
  if (sourceSlices?.length === 0)
    // Nothing was read now: say what stands, not "0 documents compared".
    r.confidence = `nothing changed since the proof of ${previous!.at}: no slice re-read (that proof: ${compared.confidence})`;
  else if (sourceSlices)
    r.confidence += `; only source slice(s) ${sourceSlices.join(', ')} changed since the proof of ${previous!.at} and were re-read`;
  writeJsonAtomic(c.store.proofWatermarksPath, {
    at: new Date().toISOString(),
    passed: r.passed,
    settingsKey,
    source: sourceMarks.map((m) => m.maxSeqNo),
    target: targetMarks.map((m) => m.maxSeqNo),
    compared,
  } satisfies ProofWatermarks);
  writeJsonAtomic(c.store.proofPath, r);
  return r;
}
