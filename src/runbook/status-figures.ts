/**
 * The figures a migration's status server shows, read from what the migration persisted (state, slice
 * checkpoints, the capture and journal files) on every call, so they are true whichever process wrote them.
 * Cluster addresses are the redacted display URLs; nothing here can carry a credential.
 */
import type { JournalSyncState } from '../capture/journal-sync.js';
import { type CaptureState, percentile } from '../capture/live.js';
import { loadCheckpoints, totalsOf } from '../copy/backfill.js';
import { planOf } from '../copy/ranges.js';
import type { PauseOfWrites, StatusFigures } from '../ops/status-figures.js';
import type { ProxyStatus } from '../proxy/control.js';
import { readJson } from '../store/atomic-file.js';
import type { Migration } from './migration.js';
import { newestFirstOf } from './report.js';

export function migrationFigures(m: Migration, capture: string): StatusFigures {
  const s = m.state();
  const live = readJson<CaptureState>(m.store.capturePath);
  const journal = readJson<JournalSyncState>(m.store.journalSyncPath);
  const figures: StatusFigures = {
    migration: m.spec.name,
    phase: s.phase,
    capture,
    source: m.source.displayUrl,
    target: m.target.displayUrl,
    sourceIndex: s.sourceIndex,
    targetIndex: m.spec.target.index,
    stepsDone: Object.keys(s.completed),
    lastError: s.phase === 'failed' ? s.lastError : undefined,
    pausesOfWrites: [],
  };
  if (m.spec.copy.engine === 'reindex' && s.totals) {
    // The server copies: its task's figures, saved by the copy step as it follows the task.
    const t = s.totals;
    figures.copy = {
      ...t,
      slices: [
        {
          slice: 0,
          processed: t.copied + t.conflicts + t.deadLetters,
          copied: t.copied,
          done: !!s.completed.copy,
        },
      ],
    };
  } else if (s.sourceShards) {
    const cps = loadCheckpoints(m.store, planOf(s));
    const t = totalsOf(cps, s.totals?.sourceDocs ?? 0);
    figures.copy = {
      sourceDocs: t.sourceDocs,
      copied: t.copied,
      conflicts: t.conflicts,
      dropped: t.dropped,
      deadLetters: t.deadLetters,
      bytes: t.bytes,
      retries: t.retries,
      slices: cps.map((cp) => ({
        slice: cp.slice,
        processed: cp.copied + cp.conflicts + cp.dropped + cp.deadLetters,
        copied: cp.copied,
        done: cp.done,
      })),
      newestFirst: newestFirstOf(s, cps),
    };
  }
  if (live) {
    figures.catchUp = {
      rounds: live.rounds,
      applied: live.applied,
      deleted: live.deleted,
      lastLagMs: live.lags[live.lags.length - 1],
      lagP50Ms: percentile(live.lags, 50),
      lagP99Ms: percentile(live.lags, 99),
    };
    figures.pausesOfWrites.push(
      ...live.freezes.map(
        (f): PauseOfWrites => ({
          kind: 'freeze',
          attempt: f.attempt,
          durationMs: f.durationMs,
          switched: f.switched,
          reason: f.reason,
        }),
      ),
    );
  }
  if (journal) {
    figures.journal = { entries: journal.entries, position: journal.pos.seq };
    figures.catchUp ??= {
      rounds: 0,
      applied: journal.copied,
      deleted: journal.deleted,
      lastLagMs: journal.lags[journal.lags.length - 1],
      lagP50Ms: percentile(journal.lags, 50),
      lagP99Ms: percentile(journal.lags, 99),
    };
    figures.pausesOfWrites.push(
      ...journal.holds.map(
        (h): PauseOfWrites => ({
          kind: 'hold',
          attempt: h.attempt,
          durationMs: h.durationMs,
          switched: h.switched,
          reason: h.reason,
        }),
      ),
    );
  }
  return figures;
}

/** The proxy's figures: the migration as persisted, and the proxy's own counters and journal end. */
export function proxyFigures(m: Migration, capture: string, p: ProxyStatus): StatusFigures {
  const f = migrationFigures(m, capture);
  f.journal = { ...f.journal, entries: p.journalEnd.seq, end: p.journalEnd.seq };
  f.proxy = {
    requests: p.stats.requests,
    journaledDocs: p.stats.journaledDocs,
    heldRequests: p.stats.heldRequests,
    holds: p.stats.holds,
    proxyErrors: p.stats.proxyErrors,
    holding: !!p.holding,
  };
  return f;
}
