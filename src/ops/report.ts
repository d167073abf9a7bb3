/** The final report of a run: the figures an operator pastes into the change ticket. */
import { emptyTotals, type MigrationState } from '../plan/state.js';

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
}

export function buildReport(s: MigrationState, deadLetterFile: string): RunReport {
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
  if (r.cutoverAt) rows.push(['cut over at', r.cutoverAt], ['old index kept until', r.retainUntil ?? '-']);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}
