/**
 * What the journal records for one write the cluster answered: every id it may have touched, where it landed
 * (the response's `_index`, else the name the application used), and a reconcile marker whenever an id it may
 * have touched cannot be known (an auto-generated id the response hid, a by-query, a body that could not be read).
 * A write that surely changed nothing may be recorded too: the runner copies current state, so a spare id costs
 * one lookup, while a missing one loses a write.
 */
import type { BulkAction } from './bulk-actions.js';
import type { ByQueryWrite, DocWrite } from './classify.js';
import type { DocEntry, EntryBody } from './journal.js';

/** The cluster's answer: status, and the body when it could be read as JSON. */
export interface Outcome {
  status: number;
  body?: unknown;
}

/** A request the cluster refused as a whole before doing anything (malformed, no such index). */
function refusedWhole(status: number): boolean {
  return status === 400 || status === 404;
}

/** The cluster refused this document's write (not found, conflict, bad request, rejected): nothing changed. */
function refused(status: number): boolean {
  return status >= 400 && status < 500;
}

function field(v: unknown, name: string): string | undefined {
  const f = v && typeof v === 'object' ? (v as Record<string, unknown>)[name] : undefined;
  return typeof f === 'string' ? f : undefined;
}

/** A whole number the response gave (`_seq_no`), else undefined. */
function seqNo(v: unknown): number | undefined {
  const f = v && typeof v === 'object' ? (v as Record<string, unknown>)._seq_no : undefined;
  return typeof f === 'number' && Number.isSafeInteger(f) && f >= 0 ? f : undefined;
}

function doc(
  op: DocEntry['op'],
  index: string,
  id: string,
  routing: string | undefined,
  sn: number | undefined,
  failed: boolean,
): DocEntry {
  const e: DocEntry = { kind: 'doc', op, index, id };
  if (routing !== undefined) e.routing = routing;
  if (sn !== undefined) e.sn = sn;
  if (failed) e.failed = true;
  return e;
}

export function docEntries(w: DocWrite, out: Outcome, concerned: string): EntryBody[] {
  const id = w.id ?? field(out.body, '_id');
  const index = field(out.body, '_index') ?? w.index;
  // Only a 4xx is a refusal; no answer (status 0) or a 5xx may hide a write that landed.
  if (id !== undefined) return [doc(w.op, index, id, w.routing, seqNo(out.body), refused(out.status))];
  if (out.status >= 300) return [];
  return [
    {
      kind: 'reconcile',
      index: concerned,
      why: `a document was created in ${w.index} with an id the response did not show (filter_path?)`,
    },
  ];
}

/**
 * The bulk's migrated actions, matched with the response items by position (the items come in request order).
 * Items missing or not one per action (filter_path): known ids are still journaled, unknown ones need a marker.
 */
export function bulkEntries(
  actions: readonly BulkAction[],
  migrated: (a: BulkAction) => boolean,
  out: Outcome,
  concerned: string,
): EntryBody[] {
  const raw = (out.body as { items?: unknown } | undefined)?.items;
  const items = Array.isArray(raw) && raw.length === actions.length ? raw : undefined;
  const entries: EntryBody[] = [];
  let unknown = 0;
  actions.forEach((a, i) => {
    if (!migrated(a)) return;
    const item =
      items?.[i] && typeof items[i] === 'object' ? Object.values(items[i] as object)[0] : undefined;
    const id = a.id ?? field(item, '_id');
    const status = (item as { status?: unknown } | undefined)?.status;
    if (id !== undefined) {
      const failed = typeof status === 'number' ? refused(status) : !items && refusedWhole(out.status);
      entries.push(
        doc(a.op, field(item, '_index') ?? a.index ?? concerned, id, a.routing, seqNo(item), failed),
      );
      return;
    }
    // An auto-id action that failed created nothing; one whose outcome is hidden may have.
    if (typeof status === 'number' && status >= 300) return;
    if (!items && refusedWhole(out.status)) return;
    unknown++;
  });
  if (unknown > 0)
    entries.push({
      kind: 'reconcile',
      index: concerned,
      why: `${unknown} bulk action(s) created documents with ids the response did not show (filter_path?)`,
    });
  return entries;
}

export function byQueryEntries(
  w: ByQueryWrite,
  out: Outcome,
  concerned: string,
  async: boolean,
): EntryBody[] {
  if (refusedWhole(out.status)) return [];
  const task = async ? field(out.body, 'task') : undefined;
  const e: EntryBody = {
    kind: 'reconcile',
    index: concerned,
    why: `_${w.op} on ${w.index} changes documents nobody named${async ? ` (wait_for_completion=false: task ${task ?? 'unknown'} goes on after this marker)` : ''}`,
  };
  if (task !== undefined) e.task = task;
  return [e];
}

/** A bulk body the proxy could not read: which ids it touched is unknown, unless the cluster refused it whole. */
export function unreadableBulkEntries(why: string, out: Outcome, concerned: string): EntryBody[] {
  if (refusedWhole(out.status)) return [];
  return [{ kind: 'reconcile', index: concerned, why: `a bulk body the proxy could not read (${why})` }];
}
