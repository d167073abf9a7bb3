/**
 * Under live capture a difference the proof saw is reported only once catch-up has provably passed the state
 * that was compared: catch-up rounds that STARTED after the comparison ran to completion (every source change
 * made before it is then on the target), and a re-read still differs in a way the versions cannot put down to
 * capture lag. The proof's own re-reads (a dozen, a second apart) cannot wait that long when rounds are slow.
 *
 * Versions decide, because a hot document may change again before every re-read. The copy writes each source
 * state with its version (copy.versioning), so after such a round the target holds the compared state or a
 * newer one. Each pass re-reads both sides after catch-up:
 *   - equal content: resolved (it was lag);
 *   - target at the source's current version or above, content different: a real difference, reported
 *     (the target holds what the source never had, or the same state written differently);
 *   - target below the source's current version but at or above the state read before the pass: catch-up passed
 *     what was compared and the source changed again since; this document has "progressed";
 *   - anything else (missing, extra because the source deleted it, no versions, target below the state read
 *     before): read again after more catch-up.
 * After the last pass, a document still differing only by version lag (target older than the source, both found)
 * that progressed in some pass, or still missing from the target while the source rewrote it in some pass (a
 * document deleted and re-created that often), is counted as changing faster than catch-up, not reported: a round misses a state
 * rewritten between its checkpoint read and its search, so a document written that often may lag in any one pass;
 * under the freeze nothing is rewritten and the final round applies it. Likewise a document the source deleted
 * during the last pass (it was there at the re-read before it): its delete is newer than anything compared, and the
 * counts under the freeze prove it settled. A document extra in two re-reads in a row whose target version rose in
 * between was re-created and deleted again meanwhile: it changes faster than catch-up too. Everything else still
 * differing is reported, a document extra in two re-reads in a row at the same target version (a delete the id
 * scans did not apply) included.
 */
import type { LiveCapture } from '../capture/live.js';
import { delaypoint } from '../ops/failpoints.js';
import {
  type CompareOptions,
  confidenceOf,
  type Difference,
  type ProofReport,
  recheckDifferences,
} from '../verify/proof.js';

/** passes of "catch up, re-read" at most */
const MAX_PASSES = 5;
/** rounds per catch-up at most: a capture that cannot get under maxLagSeconds will not switch anyway */
const MAX_ROUNDS = 20;
const MAX_IDS = 20;

type Verdict = 'real' | 'lag' | 'unsettled';

const key = (d: Difference) => JSON.stringify([d.id, d.routing ?? null]);

/** `before`: the difference as read before the rounds; `now`: as read after them. */
function verdict(before: Difference | undefined, now: Difference): Verdict {
  const target = now.targetVersion;
  const source = now.sourceVersion;
  // On the target, gone from the source since the re-read before this pass: deleted after the state compared,
  // so its delete is as new as the pass (found by the next id scan, and proven by the counts under the freeze).
  if (deletedSince(before, now)) return 'lag';
  // Extra again, but the target now holds a newer state than at the re-read before: catch-up applied a re-create
  // the source made during this pass, and the source deleted it again since (a document deleted and re-created
  // that often). A delete the id scans never applied leaves the target's version where it was.
  if (
    now.kind === 'extra' &&
    before?.kind === 'extra' &&
    now.targetVersion !== undefined &&
    before.targetVersion !== undefined &&
    now.targetVersion > before.targetVersion
  )
    return 'lag';
  // Missing from the target, while the source rewrote it (delete and re-create, or update) since the state read
  // before this pass: that pass may have applied the compared state; the newer one is the next round's.
  if (
    now.kind === 'missing' &&
    source !== undefined &&
    before?.sourceVersion !== undefined &&
    source > before.sourceVersion
  )
    return 'lag';
  // Both sides found (changed, or a state the transform drops still on the target): versions compare.
  if (target === undefined || source === undefined) return 'unsettled';
  if (target >= source) return 'real';
  const compared = before?.sourceVersion;
  return compared !== undefined && target >= compared ? 'lag' : 'unsettled';
}

function deletedSince(before: Difference | undefined, now: Difference): boolean {
  return now.kind === 'extra' && now.sourceVersion === undefined && before?.sourceVersion !== undefined;
}

/**
 * Rounds until one ends under maxLagSeconds (each starts after the call, so after anything read before it). Each
 * reads every change up to its start: with proxy capture a round may otherwise leave a `_seq_no` the journal has not
 * accounted for (a write bypassing the proxies) to a later round, and a document such a writer rewrites every second
 * would never be seen passing the state compared (two bypassing writers' ids were reported as real differences).
 */
async function catchUp(live: LiveCapture, maxLagMs: number, signal?: AbortSignal): Promise<boolean> {
  for (let n = 0; n < MAX_ROUNDS; n++) {
    signal?.throwIfAborted();
    if ((await live.round(undefined, undefined, { readGaps: true })).lagMs <= maxLagMs) return true;
  }
  return false;
}

/**
 * Settle the proof's differences against catch-up, in place (counts, differences, passed, confidence). Only when
 * every difference is named in the report: beyond the reported cap nothing is re-read and the proof stands as is.
 */
export async function settleAfterCatchUp(
  r: ProofReport,
  live: LiveCapture,
  o: CompareOptions,
  opts: { maxLagMs: number; idScan: boolean; info?: (line: string) => void },
): Promise<void> {
  const total = r.missing + r.extra + r.changed;
  if (total === 0 || total > r.differences.length) return;
  opts.info?.(
    `proof: ${total} difference(s) while catch-up ran beside it; re-checking them once catch-up has passed the state compared`,
  );
  // The state compared: read now, after the rounds beside the proof stopped; every round from here starts later.
  const first = await recheckDifferences(o, r.differences);
  let known = first.knownMissing;
  let pending = first.still;
  const real: Difference[] = [];
  const progressed = new Set<string>();
  /** extra in the last re-read only because the source deleted it during that pass */
  const deletedLately = new Set<string>();
  let stalled = 0;
  let passes = 0;
  while (passes < MAX_PASSES && pending.length) {
    passes++;
    const caughtUp = await catchUp(live, opts.maxLagMs, o.signal);
    // Rounds apply changes, not deletes: a document deleted on the source is found by an id scan (unless the
    // capture sees deletes as they happen).
    if (opts.idScan && pending.some((d) => d.kind === 'extra' && d.sourceVersion === undefined))
      await live.reconcile(undefined, o.signal);
    // Tests: the source moves on between catch-up and the re-read, as under a busy writer.
    await delaypoint('proof.after-catch-up', o.signal);
    const before = new Map(pending.map((d) => [key(d), d]));
    const now = await recheckDifferences(o, pending);
    known += now.knownMissing;
    const next: Difference[] = [];
    deletedLately.clear();
    for (const d of now.still) {
      const v = verdict(before.get(key(d)), d);
      if (deletedSince(before.get(key(d)), d)) deletedLately.add(key(d));
      if (v === 'real') real.push(d);
      else {
        next.push(d);
        if (v === 'lag') progressed.add(key(d));
      }
    }
    stalled = next.length >= pending.length ? stalled + 1 : 0;
    pending = next;
    // Nothing shrinks any more, catch-up is caught up, and what is left has been seen passing its compared state.
    if (stalled >= 2 && caughtUp && pending.every((d) => progressed.has(key(d)))) break;
  }
  const laggingOnly = (d: Difference) =>
    deletedLately.has(key(d)) ||
    (progressed.has(key(d)) &&
      d.targetVersion !== undefined &&
      d.sourceVersion !== undefined &&
      d.targetVersion < d.sourceVersion) ||
    // Rewritten on the source in some pass and still missing: as hot as the above (the counts under the freeze
    // or hold, with nothing rewritten, are what prove it arrived).
    (progressed.has(key(d)) && d.kind === 'missing' && d.sourceVersion !== undefined) ||
    // Re-created and deleted again in some pass and extra now: as hot (the deletes checked under the freeze or
    // hold, and the counts there, settle it).
    (progressed.has(key(d)) && d.kind === 'extra' && d.sourceVersion === undefined);
  const changing = pending.filter(laggingOnly);
  const reported = [...real, ...pending.filter((d) => !laggingOnly(d))];
  r.missing = reported.filter((d) => d.kind === 'missing').length;
  r.extra = reported.filter((d) => d.kind === 'extra').length;
  r.changed = reported.filter((d) => d.kind === 'changed').length;
  r.differences = reported;
  r.knownMissing += known;
  r.resolvedAfterCatchUp = total - reported.length - changing.length - known;
  r.changingAfterCatchUp = changing.length;
  r.changingIds = changing.slice(0, MAX_IDS).map((d) => d.id);
  r.passed = reported.length === 0;
  r.confidence = `${confidenceOf(r)}; of ${total} difference(s) seen while catch-up was behind, ${r.resolvedAfterCatchUp} matched after ${passes} catch-up pass(es)`;
  if (changing.length)
    r.confidence += `, ${changing.length} kept changing faster than catch-up (catch-up was seen passing the state compared, the source had a newer one each time: ${r.changingIds.slice(0, 5).join(', ')})`;
  if (reported.length) r.confidence += `, ${reported.length} still differ`;
}
