/**
 * What a long-running command shows on its status server, as plain data. The migration (or the proxy) fills it
 * from what it persisted; the status board adds what only this process sees. Only redacted cluster addresses
 * (displayUrl) and figures go in here: never a credential, a header or a document.
 */

import type { CopyTotals } from '../store/state.js';
export interface SliceFigures {
  slice: number;
  /** documents of this slice handled so far: copied, conflicts, dropped by the transform, dead letters */
  processed: number;
  copied: number;
  done: boolean;
}

/** The copy's totals as the state keeps them, with each slice's progress. */
export interface CopyFigures extends CopyTotals {
  slices: SliceFigures[];
  /** a newest-first copy: every document of `field` from `reachedBack` on is copied ('all': every dated one) */
  newestFirst?: { field: string; reachedBack: string | 'all' | null };
}

/** A write freeze (seqno/timestamp capture) or a hold of the application's writes in the proxy. */
export interface PauseOfWrites {
  kind: 'freeze' | 'hold';
  attempt: number;
  durationMs: number;
  switched: boolean;
  reason?: string;
}

export interface CatchUpFigures {
  rounds: number;
  applied: number;
  deleted: number;
  /** the most recent round's lag, ms */
  lastLagMs?: number;
  lagP50Ms: number;
  lagP99Ms: number;
}

export interface JournalFigures {
  /** entries the runner read (run) or journaled (proxy) */
  entries: number;
  /** where the runner stands in the journal (run) */
  position?: number;
  /** the journal's end (proxy) */
  end?: number;
}

export interface ProxyFigures {
  requests: number;
  journaledDocs: number;
  heldRequests: number;
  holds: number;
  proxyErrors: number;
  holding: boolean;
}

export interface StatusFigures {
  migration: string;
  phase: string;
  /** the capture strategy, in words */
  capture: string;
  source: string;
  target: string;
  sourceIndex?: string;
  targetIndex: string;
  stepsDone: string[];
  lastError?: { at: string; step: string; message: string };
  copy?: CopyFigures;
  catchUp?: CatchUpFigures;
  pausesOfWrites: PauseOfWrites[];
  journal?: JournalFigures;
  proxy?: ProxyFigures;
}
