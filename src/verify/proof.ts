/**
 * The proof before cutover: source and target compared document by document. Both sides are streamed through
 * PIT slices page by page (memory stays bounded by the page size whatever the index size); each page is
 * looked up on the other side with _mget.
 *
 *   pass 1, source -> target: every source document, transformed, must be on the target with the same _source
 *           (missing, changed); a document the transform drops must not be there (extra).
 *   pass 2, target -> source: every target document must still exist on the source (extra).
 *
 * In `versions` mode pass 1 reads no `_source` at first: the copy writes every source state with a version
 * derived from it (copy.versioning: `_seq_no + 1`, or the source `_version`), so a target `_version` equal to
 * that of the source document says the target holds the state the copy wrote for exactly that source state.
 * Content is then compared for a stable-hash sample of ids and for every id whose versions disagree (missing,
 * older, newer, dropped by the transform, a dead letter), read again live from both sides. What it cannot see: a
 * target document whose content was changed without changing its version (external_gte with the same version,
 * or a writer bug that wrote other bytes under the right version) outside the sample; `full` compares them all.
 *
 * Under live writes a difference may only mean "changed since we read it": every candidate is re-read from
 * both sides and compared against the newest state before it is reported (and under live capture, again after
 * catch-up has passed the compared state: runbook/proof-catch-up.ts, through recheckDifferences).
 */
import type { Cluster, Hit } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import { PitSession, PitSliceReader } from '../copy/reader.js';
import type { Versioning } from '../copy/slice-copier.js';
import { applyTransform, TransformError, type TransformFn } from '../copy/transform.js';
import { failpoint } from '../ops/failpoints.js';
import type { PitRegistry } from '../store/pit-registry.js';
import { canonicalJson, differingFields, sampled, withoutPaths } from './compare.js';

export type DifferenceKind = 'missing' | 'extra' | 'changed';

export interface Difference {
  id: string;
  kind: DifferenceKind;
  routing?: string;
  fields?: string[];
  /** the version the copy gives the compared source state (copy.versioning), when the read showed it */
  sourceVersion?: number;
  /** the target's _version of the compared document */
  targetVersion?: number;
}

/** What a comparison needs: the proof and a re-read of given differences compare by the same rules. */
export interface CompareOptions {
  source: Cluster;
  target: Cluster;
  sourceIndex: string;
  targetIndex: string;
  transform: TransformFn;
  /** dotted paths left out of the comparison on both sides */
  ignore: string[];
  /** ids known to be missing (dead letters accepted by the operator) */
  knownMissing?: ReadonlySet<string>;
  /** copy.versioning: differences then carry the versions of both states compared */
  versioning?: Versioning;
  signal?: AbortSignal;
}

export interface ProofOptions extends CompareOptions {
  /** 1 = full proof; below 1 = that share of ids, chosen by a stable hash */
  sampleRate: number;
  batchDocs: number;
  keepAlive: string;
  /** first differences kept in the report */
  maxReported?: number;
  recheckAttempts?: number;
  recheckDelayMs?: number;
  onPage?: (docs: number) => void;
  /** slices read at once on each side */
  concurrency?: number;
  /** compare only these source slices (shards) in pass 1; default: all */
  sourceSlices?: number[];
  /** skip pass 2 (nothing changed on either side that could create an extra document) */
  skipTargetPass?: boolean;
  /** re-read candidates at the end of each pass rather than page by page (live capture runs meanwhile) */
  deferRechecks?: boolean;
  /** where the scans' PITs are recorded (the migration's PIT registry) */
  pits?: PitRegistry;
  /**
   * `versions` mode (with sampleRate 1): every id's version compared, content only for this share of ids (stable
   * hash) and for every id whose versions disagree
   */
  contentSampleRate?: number;
}

export interface ProofReport {
  mode: 'full' | 'sample' | 'versions';
  sampleRate: number;
  sourceIndex: string;
  targetIndex: string;
  sourceChecked: number;
  targetChecked: number;
  droppedByTransform: number;
  knownMissing: number;
  missing: number;
  extra: number;
  changed: number;
  /** candidates that matched after a re-read (changed while the proof ran) */
  resolvedOnRecheck: number;
  /** live capture: candidates that matched once catch-up had passed the state compared */
  resolvedAfterCatchUp?: number;
  /**
   * live capture: documents that kept changing faster than catch-up; after each round the target held the
   * compared state or a newer one, the source a newer one still (a capture lag, proven by versions)
   */
  changingAfterCatchUp?: number;
  /** their first ids */
  changingIds?: string[];
  /** versions mode: source ids whose target version disagreed, and ids whose content was compared */
  versionMismatches?: number;
  contentChecked?: number;
  differences: Difference[];
  confidence: string;
  passed: boolean;
  durationSeconds: number;
}

interface Expected {
  id: string;
  routing?: string;
  doc: Record<string, unknown> | null;
  version?: number;
}

/** The version the copy writes a source state with, if this read shows it (never throws, unlike versionOf). */
function stateVersion(h: Hit, versioning?: Versioning): number | undefined {
  if (versioning === 'source-version') return h._version;
  if (versioning === 'seqno' && typeof h._seq_no === 'number') return h._seq_no + 1;
  return undefined;
}

/** Source hits, transformed, against the target: what differs. `onDrop` counts documents the transform drops. */
async function compareHits(o: CompareOptions, hits: Hit[], onDrop?: () => void): Promise<Difference[]> {
  const expected: Expected[] = [];
  const untransformable: Difference[] = [];
  for (const h of hits) {
    try {
      const doc = await applyTransform(o.transform, h._source ?? {}, {
        id: h._id,
        index: o.sourceIndex,
        routing: h._routing,
        seqNo: h._seq_no,
      });
      expected.push({ id: h._id, routing: h._routing, doc, version: stateVersion(h, o.versioning) });
    } catch (e) {
      if (!(e instanceof TransformError)) throw e;
      // The copy made a dead letter of it: expected missing (known when accepted), never silently skipped.
      untransformable.push({
        id: h._id,
        kind: 'missing',
        routing: h._routing,
        fields: [`(transform failed: ${e.message})`],
      });
    }
  }
  if (expected.length === 0) return untransformable;
  const got = await o.target.mget(
    o.targetIndex,
    expected.map((e) => ({ _id: e.id, routing: e.routing })),
    { signal: o.signal },
  );
  const out: Difference[] = [...untransformable];
  expected.forEach((e, i) => {
    const t = got.docs[i];
    const versions = o.versioning
      ? { sourceVersion: e.version, targetVersion: t?.found ? t._version : undefined }
      : {};
    if (e.doc === null) {
      onDrop?.();
      if (t?.found) out.push({ id: e.id, kind: 'extra', routing: e.routing, ...versions });
      return;
    }
    if (!t?.found) {
      out.push({ id: e.id, kind: 'missing', routing: e.routing, ...versions });
      return;
    }
    const want = withoutPaths(e.doc, o.ignore);
    const have = withoutPaths((t._source ?? {}) as Record<string, unknown>, o.ignore);
    if (canonicalJson(want) !== canonicalJson(have))
      out.push({
        id: e.id,
        kind: 'changed',
        routing: e.routing,
        fields: differingFields(want, have),
        ...versions,
      });
  });
  return out;
}

/** Candidates read again from both sides (one refresh, batched _mget) and compared anew: what still differs. */
async function reread(o: CompareOptions, pending: Difference[]): Promise<Difference[]> {
  await Promise.all([o.source.refresh(o.sourceIndex), o.target.refresh(o.targetIndex)]);
  return compareLive(o, pending);
}

/** These ids read now (realtime _mget) from both sides and compared: what differs. */
async function compareLive(
  o: CompareOptions,
  pending: Array<{ id: string; routing?: string }>,
  onDrop?: () => void,
): Promise<Difference[]> {
  const still: Difference[] = [];
  for (let i = 0; i < pending.length; i += 500) {
    const chunk = pending.slice(i, i + 500);
    const src = await o.source.mget(
      o.sourceIndex,
      chunk.map((d) => ({ _id: d.id, routing: d.routing })),
      { signal: o.signal },
    );
    const present: Hit[] = [];
    const gone: Array<{ id: string; routing?: string }> = [];
    src.docs.forEach((s, k) => {
      const d = chunk[k]!;
      if (s?.found) present.push({ ...s, _index: o.sourceIndex, _routing: s._routing ?? d.routing });
      else gone.push(d);
    });
    if (present.length) still.push(...(await compareHits(o, present, onDrop)));
    if (gone.length) {
      const t = await o.target.mget(
        o.targetIndex,
        gone.map((d) => ({ _id: d.id, routing: d.routing })),
        { source: false, signal: o.signal },
      );
      gone.forEach((d, k) => {
        const found = t.docs[k];
        if (found?.found)
          still.push({
            id: d.id,
            kind: 'extra',
            routing: d.routing,
            ...(o.versioning ? { targetVersion: found._version } : {}),
          });
      });
    }
  }
  return still;
}

/**
 * Given differences read once more from both sides, by the proof's rules (transform, verify.ignore, soft deletes
 * through the transform, dead letters accepted): what still differs, and how many turned out to be known dead
 * letters.
 */
export async function recheckDifferences(
  o: CompareOptions,
  candidates: Difference[],
): Promise<{ still: Difference[]; knownMissing: number }> {
  const read = candidates.length ? await reread(o, candidates) : [];
  const still = read.filter((d) => !(d.kind === 'missing' && o.knownMissing?.has(d.id)));
  return { still, knownMissing: read.length - still.length };
}

/** The report's one-line statement of what the proof shows, from its counts. */
export function confidenceOf(report: ProofReport): string {
  const diffs = report.missing + report.extra + report.changed;
  const n = report.sourceChecked;
  if (report.mode === 'versions')
    return `versions of all ${n} source documents compared with the target's (each the state the copy wrote for that source state), ${report.targetChecked} target ids checked on the source; content compared for ${report.contentChecked ?? 0}: a ${(report.sampleRate * 100).toFixed(2)}% sample and the ${report.versionMismatches ?? 0} whose versions disagreed`;
  if (report.mode === 'full')
    return `full proof: all ${n} source and ${report.targetChecked} target documents compared`;
  if (diffs === 0)
    // Rule of three: with no failure in n independent draws, the 95% upper bound of the failure rate is ~3/n.
    return n > 0
      ? `sample of ${n} documents (${(report.sampleRate * 100).toFixed(2)}%): no difference; with 95% confidence fewer than ${((3 / n) * 100).toFixed(3)}% of documents differ`
      : 'sample was empty: no confidence';
  return `sample of ${n} documents (${(report.sampleRate * 100).toFixed(2)}%): ${diffs} differences, about ${((diffs / Math.max(1, n)) * 100).toFixed(3)}% of documents`;
}

/** differences named in a report (the counts cover all) */
export const MAX_REPORTED = 50;

export async function prove(o: ProofOptions): Promise<ProofReport> {
  const started = Date.now();
  const maxReported = o.maxReported ?? MAX_REPORTED;
  const versionsMode = o.contentSampleRate !== undefined;
  const report: ProofReport = {
    mode: versionsMode ? 'versions' : o.sampleRate >= 1 ? 'full' : 'sample',
    // versions mode: the share whose content is compared (every version is)
    sampleRate: versionsMode ? o.contentSampleRate! : Math.min(1, o.sampleRate),
    sourceIndex: o.sourceIndex,
    targetIndex: o.targetIndex,
    sourceChecked: 0,
    targetChecked: 0,
    droppedByTransform: 0,
    knownMissing: 0,
    missing: 0,
    extra: 0,
    changed: 0,
    resolvedOnRecheck: 0,
    differences: [],
    confidence: '',
    passed: false,
    durationSeconds: 0,
  };
  const record = (d: Difference) => {
    report[d.kind]++;
    if (report.differences.length < maxReported) report.differences.push(d);
  };

  let dropped = 0;
  const compare = (hits: Hit[], countDrops = false) =>
    compareHits(o, hits, countDrops ? () => dropped++ : undefined);

  /**
   * Re-read candidates from both sides, all at once per attempt (one refresh, batched _mget), until they match
   * or the attempts are spent; what still differs is recorded.
   */
  const recheck = async (candidates: Difference[]) => {
    let pending = candidates;
    for (let attempt = 0; pending.length && attempt < (o.recheckAttempts ?? 3); attempt++) {
      if (attempt > 0) await sleep(o.recheckDelayMs ?? 500, o.signal);
      pending = await reread(o, pending);
    }
    report.resolvedOnRecheck += candidates.length - pending.length;
    for (const d of pending) record(d);
  };

  // Under live capture candidates are mostly "not caught up yet": they are kept (bounded) and re-read together at
  // the end of the pass, when catch-up had time to apply them, instead of holding up every page.
  const deferred: Difference[] = [];
  const MAX_DEFERRED = 20_000;
  const settle = async (candidates: Difference[]) => {
    const queue = candidates.filter((c) => {
      if (c.kind === 'missing' && o.knownMissing?.has(c.id)) {
        report.knownMissing++;
        return false;
      }
      return true;
    });
    if (o.deferRechecks && deferred.length + queue.length <= MAX_DEFERRED) deferred.push(...queue);
    else await recheck(queue);
  };
  const flush = async () => {
    await recheck(deferred.splice(0));
  };

  const scan = async (
    cluster: Cluster,
    index: string,
    withSource: boolean,
    onHits: (hits: Hit[]) => Promise<void>,
    only?: number[],
    withVersion = false,
  ) => {
    const shards = await cluster.primaryShards(index);
    // Recorded under the cluster's side, so the next process closes it on the right cluster if this one dies.
    const side = cluster === o.target && index === o.targetIndex ? 'target' : 'source';
    const pit = new PitSession(cluster, index, o.keepAlive, o.pits ? { pits: o.pits, side } : undefined);
    try {
      // Slices in parallel (bounded by `concurrency`): memory stays at a few pages per running slice.
      const queue = Array.from({ length: shards }, (_, i) => i).filter((i) => !only || only.includes(i));
      const worker = async () => {
        for (let slice = queue.shift(); slice !== undefined; slice = queue.shift()) {
          const reader = new PitSliceReader(cluster, pit, slice, shards, {
            batchDocs: o.batchDocs,
            keepAlive: o.keepAlive,
            withVersion,
            withSource,
            signal: o.signal,
          });
          let after: number | null = null;
          for (;;) {
            const hits = await reader.next(after);
            if (hits.length === 0) break;
            after = hits[hits.length - 1]!._seq_no!;
            await onHits(hits.filter((h) => sampled(h._id, o.sampleRate)));
            failpoint('proof.after-page');
            o.onPage?.(hits.length);
          }
        }
      };
      await Promise.all(
        Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 1, queue.length)) }, worker),
      );
    } finally {
      await pit.close();
    }
  };

  // Pass 1: source -> target.
  const pass1 = async () => {
    if (versionsMode) {
      report.versionMismatches = 0;
      report.contentChecked = 0;
      await scan(
        o.source,
        o.sourceIndex,
        false,
        async (hits) => {
          report.sourceChecked += hits.length;
          if (hits.length === 0) return;
          const t = await o.target.mget(
            o.targetIndex,
            hits.map((h) => ({ _id: h._id, routing: h._routing })),
            { source: false, signal: o.signal },
          );
          const check: Array<{ id: string; routing?: string }> = [];
          hits.forEach((h, i) => {
            const want = stateVersion(h, o.versioning);
            const got = t.docs[i];
            const agree = want !== undefined && got?.found === true && got._version === want;
            if (!agree) report.versionMismatches!++;
            if (!agree || sampled(h._id, o.contentSampleRate!))
              check.push({ id: h._id, routing: h._routing });
          });
          report.contentChecked! += check.length;
          if (check.length) await settle(await compareLive(o, check, () => dropped++));
        },
        o.sourceSlices,
        o.versioning === 'source-version',
      );
    } else
      await scan(
        o.source,
        o.sourceIndex,
        true,
        async (hits) => {
          report.sourceChecked += hits.length;
          await settle(await compare(hits, true));
        },
        o.sourceSlices,
      );
  };

  // Pass 2: target -> source: ids only on the target side.
  const pass2 = async () => {
    if (!o.skipTargetPass)
      await scan(o.target, o.targetIndex, false, async (hits) => {
        report.targetChecked += hits.length;
        if (hits.length === 0) return;
        const src = await o.source.mget(
          o.sourceIndex,
          hits.map((h) => ({ _id: h._id, routing: h._routing })),
          { source: false },
        );
        const gone = hits
          .filter((_, i) => !src.docs[i]?.found)
          .map((h) => ({ id: h._id, kind: 'extra' as const, routing: h._routing }));
        await settle(gone);
      });
  };

  // The passes read different indices and need nothing from each other: side by side, the proof takes the
  // longer of the two instead of their sum.
  // (Settled both: a failing pass must not leave the other reading with an open PIT after the proof returned.)
  const passes = await Promise.allSettled([pass1(), pass2()]);
  for (const p of passes) if (p.status === 'rejected') throw p.reason;
  await flush();
  report.droppedByTransform = dropped;

  report.passed = report.missing + report.extra + report.changed === 0;
  report.confidence = confidenceOf(report);
  report.durationSeconds = (Date.now() - started) / 1000;
  return report;
}

export function formatProof(r: ProofReport): string {
  const lines = [
    `  proof          ${r.passed ? 'PASSED' : 'FAILED'} (${r.confidence})`,
    `  compared       ${r.sourceChecked} source, ${r.targetChecked} target documents in ${r.durationSeconds.toFixed(1)} s`,
    `  differences    missing ${r.missing}, extra ${r.extra}, changed ${r.changed}` +
      (r.knownMissing ? `, known dead letters ${r.knownMissing}` : '') +
      (r.resolvedOnRecheck
        ? ` (${r.resolvedOnRecheck} changed during the proof and matched on re-read)`
        : '') +
      (r.resolvedAfterCatchUp ? ` (${r.resolvedAfterCatchUp} matched once catch-up had passed them)` : '') +
      (r.changingAfterCatchUp
        ? ` (${r.changingAfterCatchUp} kept changing faster than catch-up; the target held the compared state or newer: ${r.changingIds?.slice(0, 5).join(', ')})`
        : ''),
  ];
  for (const d of r.differences.slice(0, 10)) {
    lines.push(
      `    ${d.kind.padEnd(8)} ${JSON.stringify(d.id)}${d.fields ? ` fields: ${d.fields.join(', ')}` : ''}`,
    );
  }
  return lines.join('\n');
}
