/** The final report of a run: the figures an operator pastes into the change ticket. */
import { type CaptureState, percentile } from '../capture/live.js';
import { emptyTotals, type MigrationState } from '../store/state.js';

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
}

export function buildReport(
  s: MigrationState,
  deadLetterFile: string,
  capture?: CaptureState,
  reverse?: CaptureState,
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
    cutoverAt: s.cutoverAt,
    retainUntil: s.retainUntil,
    deadLetterFile: t.deadLetters > 0 ? deadLetterFile : undefined,
    capture: capture ? captureReport(capture) : undefined,
    reverse: reverse ? captureReport(reverse) : undefined,
    revertUntil: s.revertUntil,
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
  if (r.cutoverAt) rows.push(['cut over at', r.cutoverAt], ['old index kept until', r.retainUntil ?? '-']);
  if (r.revertUntil) rows.push(['revert window until', r.revertUntil]);
  if (r.reverse)
    rows.push(['copied back (revert)', `${r.reverse.applied} written, ${r.reverse.deleted} deleted`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}
