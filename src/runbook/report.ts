/** The final report of a run: the figures an operator pastes into the change ticket. */
import type { JournalSyncState } from '../capture/journal-sync.js';
import { type CaptureState, percentile } from '../capture/live.js';
import { reachedBack } from '../copy/ranges.js';
import type { WatchdogPause, WatchdogRecord } from '../ops/watchdog.js';
import { emptyTotals, type MigrationState, type SliceCheckpoint } from '../store/state.js';

/** Live capture figures: what was caught up, how far behind it ran, and every write freeze. */
export interface CaptureReport {
  rounds: number;
  applied: number;
  deleted: number;
  versionConflicts: number;
  deadLetters: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** time the copy and background id scans waited for catch-up (capture.copyYields) */
  heldBackMs: number;
  freezes: Array<{ attempt: number; durationMs: number; switched: boolean; reason?: string }>;
}

export function captureReport(c: CaptureState): CaptureReport {
  return {
    rounds: c.rounds,
    applied: c.applied,
    deleted: c.deleted,
    versionConflicts: c.conflicts,
    deadLetters: c.deadLetters,
    lagP50Ms: percentile(c.lags, 50),
    lagP99Ms: percentile(c.lags, 99),
    lagMaxMs: c.lags.length ? Math.max(...c.lags) : 0,
    heldBackMs: c.heldBackMs ?? 0,
    freezes: c.freezes.map((f) => ({
      attempt: f.attempt,
      durationMs: f.durationMs,
      switched: f.switched,
      reason: f.reason,
    })),
  };
}

/** Proxy capture: what the journal carried, writers that bypassed it, and every hold of the application's writes. */
export interface ProxyReport {
  journalEntries: number;
  copied: number;
  deleted: number;
  lagP50Ms: number;
  lagP99Ms: number;
  bypass: number;
  bypassSample: string[];
  lateOnOldIndex: number;
  holds: Array<{
    attempt: number;
    durationMs: number;
    switched: boolean;
    reason?: string;
    heldRequests: number;
    longestWaitMs: number;
    releasedBy: string[];
    fenced?: boolean;
    fenceMs?: number;
    /** no safety-net round under the hold: the journal accounted for every source operation */
    accounted?: boolean;
  }>;
}

export function proxyReport(j: JournalSyncState): ProxyReport {
  return {
    journalEntries: j.entries,
    copied: j.copied,
    deleted: j.deleted,
    lagP50Ms: percentile(j.lags, 50),
    lagP99Ms: percentile(j.lags, 99),
    bypass: j.bypass,
    bypassSample: j.bypassSample,
    lateOnOldIndex: j.lateOnOldIndex,
    holds: j.holds.map((h) => ({
      attempt: h.attempt,
      durationMs: h.durationMs,
      switched: h.switched,
      reason: h.reason,
      heldRequests: h.heldRequests,
      longestWaitMs: h.longestWaitMs,
      releasedBy: h.releasedBy,
      fenced: h.fence?.fenced,
      fenceMs: h.fence?.freezeMs,
      accounted: h.accounted,
    })),
  };
}

export interface RunReport {
  migration: string;
  phase: string;
  sourceIndex?: string;
  targetIndex: string;
  sourceDocs: number;
  copied: number;
  droppedByTransform: number;
  versionConflicts: number;
  deadLetters: number;
  retries: number;
  bytes: number;
  durationSeconds: number | null;
  docsPerSecond: number | null;
  mbPerSecond: number | null;
  countGate?: MigrationState['countGate'];
  cutoverAt?: string;
  retainUntil?: string;
  deadLetterFile?: string;
  capture?: CaptureReport;
  /** the revert window's reverse sync (new index -> old index) */
  reverse?: CaptureReport;
  revertUntil?: string;
  proxy?: ProxyReport;
  /** pauses of the watchdog (a cluster red too long), each with the allocation explain of the unassigned shard */
  watchdogPauses?: WatchdogPause[];
  /** the warm-up before the switch: each query's ms on the new index (first, median) and the old one (median) */
  warmup?: MigrationState['warmup'];
  /** a newest-first copy: every document of `field` at or after `reachedBack` is on the target ('all': every dated
   * one; null: not even the newest window yet) */
  newestFirst?: { field: string; reachedBack: string | 'all' | null };
}

export function buildReport(
  s: MigrationState,
  deadLetterFile: string,
  capture?: CaptureState,
  reverse?: CaptureState,
  journal?: JournalSyncState,
  watchdog?: WatchdogRecord,
  checkpoints?: readonly SliceCheckpoint[],
): RunReport {
  const t = s.totals ?? emptyTotals();
  const secs =
    s.copyStartedAt && s.copyFinishedAt
      ? (Date.parse(s.copyFinishedAt) - Date.parse(s.copyStartedAt)) / 1000
      : null;
  return {
    migration: s.name,
    phase: s.phase,
    sourceIndex: s.sourceIndex,
    targetIndex: s.targetIndex,
    sourceDocs: t.sourceDocs,
    copied: t.copied,
    droppedByTransform: t.dropped,
    versionConflicts: t.conflicts,
    deadLetters: t.deadLetters,
    retries: t.retries,
    bytes: t.bytes,
    durationSeconds: secs,
    docsPerSecond: secs ? Math.round(t.copied / secs) : null,
    mbPerSecond: secs ? Number((t.bytes / 1048576 / secs).toFixed(2)) : null,
    countGate: s.countGate,
    newestFirst: newestFirstOf(s, checkpoints),
    cutoverAt: s.cutoverAt,
    retainUntil: s.retainUntil,
    deadLetterFile: t.deadLetters > 0 ? deadLetterFile : undefined,
    capture: capture ? captureReport(capture) : undefined,
    reverse: reverse ? captureReport(reverse) : undefined,
    revertUntil: s.revertUntil,
    proxy: journal ? proxyReport(journal) : undefined,
    watchdogPauses: watchdog?.pauses.length ? watchdog.pauses : undefined,
    warmup: s.warmup,
  };
}

export function formatReport(r: RunReport): string {
  const rows: Array<[string, string]> = [
    ['migration', `${r.migration} (${r.phase})`],
    ['source -> target', `${r.sourceIndex ?? '?'} -> ${r.targetIndex}`],
    ['source documents', String(r.sourceDocs)],
    ['copied', String(r.copied)],
    ['dropped by transform', String(r.droppedByTransform)],
    ['version conflicts', `${r.versionConflicts} (a newer or identical state was already on the target)`],
    ['dead letters', r.deadLetters ? `${r.deadLetters} -> ${r.deadLetterFile}` : '0'],
    ['retries', String(r.retries)],
    ['duration', r.durationSeconds === null ? '-' : `${r.durationSeconds.toFixed(1)} s`],
    ['throughput', r.docsPerSecond === null ? '-' : `${r.docsPerSecond} docs/s, ${r.mbPerSecond} MB/s`],
  ];
  if (r.newestFirst)
    rows.push([
      'newest first',
      r.newestFirst.reachedBack === null
        ? `by ${r.newestFirst.field}; the newest window is not copied yet`
        : r.newestFirst.reachedBack === 'all'
          ? `by ${r.newestFirst.field}; every dated document is copied`
          : `by ${r.newestFirst.field}; every document from ${r.newestFirst.reachedBack} on is copied`,
    ]);
  if (r.countGate)
    rows.push([
      'count gate',
      `source ${r.countGate.source}, target ${r.countGate.target}, expected ${r.countGate.expectedTarget}`,
    ]);
  if (r.capture) {
    const c = r.capture;
    rows.push(
      ['live changes caught up', `${c.applied} written, ${c.deleted} deleted in ${c.rounds} round(s)`],
      ['catch-up lag', `p50 ${c.lagP50Ms} ms, p99 ${c.lagP99Ms} ms, max ${c.lagMaxMs} ms`],
    );
    if (c.heldBackMs)
      rows.push([
        'copy held back for catch-up',
        `${(c.heldBackMs / 1000).toFixed(1)} s (capture.copyYields)`,
      ]);
    for (const f of c.freezes)
      rows.push([
        `write freeze ${f.attempt}`,
        `${f.durationMs} ms, ${f.switched ? 'switched' : `lifted without switching: ${f.reason}`}`,
      ]);
  }
  if (r.proxy) {
    const p = r.proxy;
    rows.push(
      [
        'proxy journal',
        `${p.journalEntries} entries; ${p.copied} written, ${p.deleted} deleted through it; lag p50 ${p.lagP50Ms} ms, p99 ${p.lagP99Ms} ms`,
      ],
      [
        'writes bypassing the proxy',
        p.bypass
          ? `${p.bypass} (e.g. ${p.bypassSample.slice(0, 3).join(', ')}): point every writer at the proxy`
          : '0',
      ],
    );
    for (const h of p.holds)
      rows.push([
        `write hold ${h.attempt}`,
        `${h.durationMs} ms, ${h.heldRequests} request(s) waited (longest ${h.longestWaitMs} ms)${h.fenced ? `; the source was write-fenced ${h.fenceMs ?? '?'} ms for writers bypassing the proxy (their writes refused meanwhile)` : ', none refused'}${h.accounted ? '; every source operation journaled, no safety-net round under it' : ''}; ${h.switched ? 'switched' : `released without switching: ${h.reason}`}`,
      ]);
    if (p.lateOnOldIndex)
      rows.push([
        'writes to the old index after the switch',
        `${p.lateOnOldIndex} (a client names it directly)`,
      ]);
  }
  for (const p of r.watchdogPauses ?? []) {
    const secs = p.resumedAt
      ? Math.round((Date.parse(p.resumedAt) - Date.parse(p.pausedAt)) / 1000)
      : undefined;
    rows.push([
      `paused by the watchdog`,
      `${p.pausedAt}, ${secs === undefined ? 'not resumed' : `${secs} s`}: ${p.why}`,
    ]);
  }
  for (const q of r.warmup ?? [])
    rows.push([
      `warm-up query ${q.query}`,
      `new index first ${q.targetFirstMs} ms, median ${q.targetMedianMs} ms${q.sourceMedianMs === undefined ? '' : `; old index median ${q.sourceMedianMs} ms`}`,
    ]);
  if (r.cutoverAt) rows.push(['cut over at', r.cutoverAt], ['old index kept until', r.retainUntil ?? '-']);
  if (r.revertUntil) rows.push(['revert window until', r.revertUntil]);
  if (r.reverse)
    rows.push(['copied back (revert)', `${r.reverse.applied} written, ${r.reverse.deleted} deleted`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}

/** How far back a newest-first copy has reached, from its checkpoints (or 'all' once the copy is done). */
export function newestFirstOf(
  s: MigrationState,
  checkpoints?: readonly SliceCheckpoint[],
): RunReport['newestFirst'] {
  const w = s.copyRanges?.find((r) => r.window)?.window;
  if (!w) return undefined;
  if (s.completed.copy || !checkpoints)
    return { field: w.field, reachedBack: s.completed.copy ? 'all' : null };
  const r = reachedBack(checkpoints);
  return { field: w.field, reachedBack: typeof r === 'number' ? new Date(r).toISOString() : r };
}
