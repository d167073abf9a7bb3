/**
 * The action lines of a `_bulk` body, and nothing else: a source line (after index/create/update) is skipped by
 * position and never parsed, so a document's content never reaches a parser, a log or the journal. A body the
 * rules below cannot read is an error the caller turns into a reconcile marker, never a guess.
 *
 * Rewriting keeps every byte of every source line: only action lines whose `_index` changes are re-serialized.
 */
import { CutoverError, EXIT } from '../store/errors.js';
import type { DocOp } from './journal.js';

export interface BulkAction {
  op: DocOp;
  /** the action's `_index`, else the path's default; undefined when neither names one (the server refuses it) */
  index?: string;
  id?: string;
  routing?: string;
  /** if_seq_no / if_primary_term on the action */
  optimistic: boolean;
}

/** The body cannot be read as bulk action lines: the journal cannot say which ids it touched. */
export class BulkBodyUnreadable extends CutoverError {
  override readonly name = 'BulkBodyUnreadable';
  readonly exitCode = EXIT.badInput;
}

const OPS = new Set<DocOp>(['index', 'create', 'update', 'delete']);
const NL = 0x0a;

/**
 * Whether bytes [start, end) are only whitespace, decided on the bytes: a source line (almost always starting with
 * `{`) is never decoded, which keeps a bulk of large documents from being copied into strings.
 */
function blank(body: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = body[i]!;
    if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0b || b === 0x0c) continue;
    // Other Unicode whitespace is rare enough to be decoded.
    return b < 0x80 ? false : body.toString('utf8', i, end).trim() === '';
  }
  return true;
}

interface ActionLine {
  op: DocOp;
  meta: Record<string, unknown>;
  start: number;
  end: number;
  /** where the item ends: after its source line, or its action line for a delete */
  itemEnd: number;
}

function parseAction(text: string, n: number): { op: DocOp; meta: Record<string, unknown> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BulkBodyUnreadable(`bulk action line ${n} is not JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new BulkBodyUnreadable(`bulk action line ${n} is not an object`);
  const keys = Object.keys(parsed);
  const op = keys[0] as DocOp;
  if (keys.length !== 1 || !OPS.has(op))
    throw new BulkBodyUnreadable(`bulk action line ${n} is not one of index, create, update, delete`);
  const meta = (parsed as Record<string, unknown>)[op];
  if (!meta || typeof meta !== 'object' || Array.isArray(meta))
    throw new BulkBodyUnreadable(`bulk action line ${n} has no metadata object`);
  return { op, meta: meta as Record<string, unknown> };
}

function actionLines(body: Buffer): ActionLine[] {
  const out: ActionLine[] = [];
  let expectSource = false;
  let n = 0;
  // Line by line, blank lines (only whitespace) left out; no object per line (a bulk has a thousand of them).
  for (let start = 0; start < body.length; ) {
    let end = body.indexOf(NL, start);
    if (end < 0) end = body.length;
    const lineStart = start;
    start = end + 1;
    if (blank(body, lineStart, end)) continue;
    n++;
    if (expectSource) {
      expectSource = false;
      out[out.length - 1]!.itemEnd = end;
      continue;
    }
    const { op, meta } = parseAction(body.toString('utf8', lineStart, end), n);
    out.push({ op, meta, start: lineStart, end, itemEnd: end });
    expectSource = op !== 'delete';
  }
  if (expectSource) throw new BulkBodyUnreadable('bulk body ends with an action line that needs a source');
  return out;
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;

/** The actions of a bulk body (decompressed), with the path's default index and routing applied. */
export function parseBulkActions(
  body: Buffer,
  defaults: { index?: string; routing?: string } = {},
): BulkAction[] {
  return actionLines(body).map(({ op, meta }) => {
    const a: BulkAction = {
      op,
      optimistic: meta.if_seq_no !== undefined || meta.if_primary_term !== undefined,
    };
    const index = str(meta._index) ?? defaults.index;
    const id = str(meta._id);
    // `routing` since 7.0, `_routing` before; both are still accepted by 7.17.
    const routing = str(meta.routing) ?? str(meta._routing) ?? defaults.routing;
    if (index !== undefined) a.index = index;
    if (id !== undefined) a.id = id;
    if (routing !== undefined) a.routing = routing;
    return a;
  });
}

/**
 * The body with every action line whose `_index` is `from` naming `to` instead (lines without `_index` follow
 * the path, which the caller rewrites). Returns the same buffer when nothing changed.
 */
export function rewriteBulkIndex(
  body: Buffer,
  from: string,
  to: string,
): { body: Buffer; rewritten: number } {
  const parts: Buffer[] = [];
  let last = 0;
  let rewritten = 0;
  for (const a of actionLines(body)) {
    if (a.meta._index !== from) continue;
    parts.push(body.subarray(last, a.start));
    parts.push(Buffer.from(JSON.stringify({ [a.op]: { ...a.meta, _index: to } })));
    last = a.end;
    rewritten++;
  }
  if (rewritten === 0) return { body, rewritten };
  parts.push(body.subarray(last));
  return { body: Buffer.concat(parts), rewritten };
}

/** A bulk body of only the items at these positions (action and source lines as they were), in their order. */
export function bulkItems(body: Buffer, positions: readonly number[]): Buffer {
  const items = actionLines(body);
  const parts: Buffer[] = [];
  for (const i of positions) {
    const a = items[i];
    if (!a) throw new BulkBodyUnreadable(`bulk item ${i} is not in the body`);
    parts.push(body.subarray(a.start, a.itemEnd), Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}
