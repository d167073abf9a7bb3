/**
 * The one writer. Backfill, live capture and reverse sync all end here, and versions decide who wins:
 * every write carries an external version derived from the source, so an older state of a document can never
 * overwrite a newer one, whatever order they arrive in.
 */
import type { BulkItemResult, Cluster } from '../cluster/client.js';
import { ClusterError, isTransientFailure, TransportError } from '../cluster/errors.js';
import { backoffDelay, ITEM_RETRY, type RetryPolicy, sleep } from '../cluster/retry.js';
import { failpoint } from '../ops/failpoints.js';
import type { BulkSample } from '../ops/throttle-signals.js';
import { CutoverError, EXIT } from '../store/errors.js';
import type { DeadLetter, DeadLetterSink } from './dead-letters.js';
import type { Doc } from './transform.js';

/** A document as the source sent it, written without being parsed (the copy without a transform): its bytes. */
export class RawDoc {
  constructor(readonly json: Buffer) {}
  parse(): Doc {
    return JSON.parse(this.json.toString('utf8')) as Doc;
  }
}

const docJson = (d: Doc | RawDoc): Buffer | string => (d instanceof RawDoc ? d.json : JSON.stringify(d));
const docValue = (d: Doc | RawDoc): Doc => (d instanceof RawDoc ? d.parse() : d);

export type WriteOp =
  | { kind: 'index'; id: string; routing?: string; version: number; doc: Doc | RawDoc }
  | { kind: 'delete'; id: string; routing?: string; version: number };

export interface WriteResult {
  /** created or updated on the target */
  written: number;
  deleted: number;
  /** a newer (or the same) state was already there: not an error */
  conflicts: number;
  deadLetters: number;
  retries: number;
  bytes: number;
}

/**
 * What this writer's bulks did to the index's document count, from the cluster's answer for each item (`created`
 * +1, `deleted` -1, anything else 0): a count taken when no bulk of this writer was in flight, plus the change of
 * `net` since, is the index's count now, without a refresh (hold-switch.ts). Exact only while nothing else writes
 * to the index and no answer was lost: `unsure` counts bulks whose effect is unknown (the request failed after it
 * may have reached the cluster, or an item's answer had no result).
 */
export interface CountTally {
  net: number;
  /** bulk requests sent so far, and those of them not yet answered */
  sent: number;
  inFlight: number;
  unsure: number;
}

/** A bulk kept being refused (429 storms, rejected execution) past the writer's retry budget. */
export class RetryBudgetExceeded extends CutoverError {
  override readonly name = 'RetryBudgetExceeded';
  readonly exitCode = EXIT.cluster;
}

export interface WriterOptions {
  deadLetters: DeadLetterSink;
  /**
   * op_type=create without versions (append-only capture): the application already writes to the target, and a
   * document that is there already is newer than any copy of it. Elasticsearch refuses external versions on create.
   */
  createOnly?: boolean;
  maxBytes: number;
  gzip?: boolean;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  onRetry?: (reason: string, items: number, delayMs: number) => void;
  /** told after every bulk request (the closed-loop throttle's signals); changes nothing the writer does */
  onBulk?: (b: BulkSample) => void;
  /**
   * The copy's pacing (backfill only; catch-up is never slowed): `slot` is taken around every bulk request (the
   * throttle's concurrency limit), `beforeRetry` before documents refused for now are sent again (the throttle's
   * rate: a resend loads the cluster as much as the first send). Time spent waiting there is not retry time.
   */
  pacing?: {
    slot: (signal?: AbortSignal) => Promise<() => void>;
    beforeRetry: (docs: number, signal?: AbortSignal) => Promise<void>;
  };
}

/** One op's NDJSON lines, kept apart until the bulk body is built: the action line and the document. */
interface Encoded {
  op: WriteOp;
  head: string;
  doc?: Buffer | string;
  /** UTF-8 bytes of both lines with their newlines */
  bytes: number;
}

function encoded(op: WriteOp, head: string, doc?: Buffer | string): Encoded {
  const docBytes =
    doc === undefined ? 0 : typeof doc === 'string' ? Buffer.byteLength(doc) + 1 : doc.length + 1;
  return { op, head, doc, bytes: Buffer.byteLength(head) + docBytes };
}

/**
 * The bulk body as one buffer written in place: no joined string (a megabyte of garbage per bulk in V8's
 * large-object space, which only a full collection frees, and a second copy when it is sent).
 */
function ndjsonBody(chunk: Encoded[]): Buffer {
  let size = 0;
  for (const c of chunk) size += c.bytes;
  const body = Buffer.allocUnsafe(size);
  let at = 0;
  for (const c of chunk) {
    at += body.write(c.head, at, 'utf8');
    if (c.doc === undefined) continue;
    at += typeof c.doc === 'string' ? body.write(c.doc, at, 'utf8') : c.doc.copy(body, at);
    body[at++] = 0x0a;
  }
  if (at !== size) throw new Error(`bulk body is ${at} bytes, ${size} were counted`);
  return body;
}

export function emptyResult(): WriteResult {
  return { written: 0, deleted: 0, conflicts: 0, deadLetters: 0, retries: 0, bytes: 0 };
}

export function addResults(a: WriteResult, b: WriteResult): WriteResult {
  return {
    written: a.written + b.written,
    deleted: a.deleted + b.deleted,
    conflicts: a.conflicts + b.conflicts,
    deadLetters: a.deadLetters + b.deadLetters,
    retries: a.retries + b.retries,
    bytes: a.bytes + b.bytes,
  };
}

export class BulkWriter {
  private readonly retry: RetryPolicy;
  private readonly count: CountTally = { net: 0, sent: 0, inFlight: 0, unsure: 0 };

  /** A copy of the count tally as it stands (see CountTally). */
  get tally(): CountTally {
    return { ...this.count };
  }

  constructor(
    private readonly cluster: Cluster,
    readonly index: string,
    private readonly opts: WriterOptions,
  ) {
    this.retry = opts.retry ?? ITEM_RETRY;
  }

  private encode(op: WriteOp): Encoded {
    const meta: Record<string, unknown> = { _index: this.index, _id: op.id };
    if (!(this.opts.createOnly && op.kind === 'index')) {
      meta.version = op.version;
      meta.version_type = 'external';
    }
    if (op.routing !== undefined) meta.routing = op.routing;
    if (op.kind === 'delete') return encoded(op, `${JSON.stringify({ delete: meta })}\n`);
    const action = this.opts.createOnly ? { create: meta } : { index: meta };
    return encoded(op, `${JSON.stringify(action)}\n`, docJson(op.doc));
  }

  /** Write all ops; returns only when each one is applied, a version conflict, or a dead letter. */
  /** `signal` (optional) cuts this call short, e.g. at the end of a freeze budget; versions make a partial write harmless. */
  async write(ops: WriteOp[], signal?: AbortSignal): Promise<WriteResult> {
    const sig =
      signal && this.opts.signal ? AbortSignal.any([signal, this.opts.signal]) : (signal ?? this.opts.signal);
    const result = emptyResult();
    let pending = ops.map((op) => this.encode(op));
    let started = Date.now();
    for (let attempt = 0; pending.length > 0; attempt++) {
      const again: Encoded[] = [];
      let why = '';
      for (const chunk of this.chunks(pending)) {
        const failed = await this.send(chunk, result, sig);
        if (failed.items.length) {
          again.push(...failed.items);
          why = failed.reason;
        }
      }
      if (again.length === 0) break;
      // Cut off on purpose (a freeze deadline, Ctrl-C): not a refusal to report or retry.
      if (sig?.aborted) throw sig.reason;
      const delay = backoffDelay(attempt, this.retry);
      if (Date.now() - started + delay > this.retry.budgetMs) {
        throw new RetryBudgetExceeded(
          `${again.length} document(s) still refused after ${Math.round((Date.now() - started) / 1000)} s of retries (${why}); nothing was lost: the checkpoint was not advanced, run again when the cluster recovers`,
        );
      }
      result.retries += again.length;
      this.opts.onRetry?.(why, again.length, delay);
      await sleep(delay, sig);
      if (this.opts.pacing) {
        const waitFrom = Date.now();
        await this.opts.pacing.beforeRetry(again.length, sig);
        started += Date.now() - waitFrom;
      }
      pending = again;
    }
    return result;
  }

  private *chunks(items: Encoded[]): Generator<Encoded[]> {
    let chunk: Encoded[] = [];
    let size = 0;
    for (const it of items) {
      if (chunk.length > 0 && size + it.bytes > this.opts.maxBytes) {
        yield chunk;
        chunk = [];
        size = 0;
      }
      chunk.push(it);
      size += it.bytes;
    }
    if (chunk.length) yield chunk;
  }

  /** Send one bulk; returns the items to retry. Splits on 413 instead of dropping. */
  private async send(
    chunk: Encoded[],
    result: WriteResult,
    signal?: AbortSignal,
  ): Promise<{ items: Encoded[]; reason: string }> {
    const body = ndjsonBody(chunk);
    let res: Awaited<ReturnType<Cluster['bulk']>>;
    const release = await this.opts.pacing?.slot(signal);
    const sentAt = Date.now();
    this.count.sent++;
    this.count.inFlight++;
    try {
      failpoint('bulk.before-send');
      res = await this.cluster.bulk(body, { gzip: this.opts.gzip, signal });
      failpoint('bulk.after-send');
    } catch (e) {
      // A request the cluster refused whole (413 too large, 429 rejected) changed nothing; any other failure may
      // have been applied in part.
      if (!(e instanceof ClusterError && (e.status === 413 || e.status === 429))) this.count.unsure++;
      // Before a 413 split sends its halves: each takes a slot of its own.
      release?.();
      if (e instanceof ClusterError)
        this.observe({
          ms: Date.now() - sentAt,
          docs: chunk.length,
          settled: 0,
          rejected: e.status === 429 ? chunk.length : 0,
          status: e.status,
        });
      if (e instanceof ClusterError && e.status === 413) {
        if (chunk.length === 1) {
          this.deadLetter(
            chunk,
            result,
            413,
            'request_entity_too_large',
            'a single document is larger than the cluster accepts (http.max_content_length)',
          );
          return { items: [], reason: '' };
        }
        const half = Math.ceil(chunk.length / 2);
        const a = await this.send(chunk.slice(0, half), result, signal);
        const b = await this.send(chunk.slice(half), result, signal);
        return { items: [...a.items, ...b.items], reason: a.reason || b.reason };
      }
      // A whole-request failure that may clear: resend everything (versions make a resend harmless).
      if ((e instanceof TransportError || e instanceof ClusterError) && e.transient) {
        return {
          items: chunk,
          reason: e instanceof ClusterError ? `${e.status} ${e.type}` : (e.code ?? e.message),
        };
      }
      throw e;
    } finally {
      this.count.inFlight--;
    }
    release?.();
    result.bytes += body.length;
    const retry: Encoded[] = [];
    let reason = '';
    const dead: Array<{ enc: Encoded; item: BulkItemResult }> = [];
    if (res.items.length !== chunk.length) {
      throw new Error(
        `_bulk answered ${res.items.length} items for ${chunk.length} sent; refusing to guess which were applied`,
      );
    }
    res.items.forEach((wrapper, i) => {
      const item = Object.values(wrapper)[0];
      const enc = chunk[i];
      if (!item || !enc) return;
      if (item.status >= 200 && item.status < 300) {
        if (enc.op.kind === 'delete') result.deleted++;
        else result.written++;
        if (item.result === 'created') this.count.net++;
        else if (item.result === 'deleted') this.count.net--;
        else if (item.result === undefined) this.count.unsure++;
      } else if (item.status === 409 && item.error?.type === 'version_conflict_engine_exception') {
        result.conflicts++;
      } else if (enc.op.kind === 'delete' && item.status === 404) {
        // A versioned delete of an absent document still leaves its tombstone: the goal state is reached.
        result.deleted++;
      } else if (isTransientFailure(item.status, item.error?.type)) {
        retry.push(enc);
        reason = `${item.status} ${item.error?.type ?? ''}`.trim();
      } else {
        dead.push({ enc, item });
      }
    });
    this.observe({
      ms: Date.now() - sentAt,
      docs: chunk.length,
      settled: chunk.length - retry.length - dead.length,
      rejected: retry.length,
      status: 200,
    });
    if (dead.length) {
      const now = new Date().toISOString();
      const letters: DeadLetter[] = dead.map(({ enc, item }) => ({
        id: enc.op.id,
        index: this.index,
        routing: enc.op.routing,
        version: enc.op.version,
        status: item.status,
        type: item.error?.type ?? 'unknown',
        reason: item.error?.caused_by?.reason
          ? `${item.error.reason}: ${item.error.caused_by.reason}`
          : (item.error?.reason ?? ''),
        doc: enc.op.kind === 'index' ? docValue(enc.op.doc) : undefined,
        at: now,
      }));
      this.opts.deadLetters.add(letters);
      result.deadLetters += letters.length;
    }
    return { items: retry, reason };
  }

  /** A faulty observer must not change what the writer does. */
  private observe(b: BulkSample): void {
    try {
      this.opts.onBulk?.(b);
    } catch {
      // the observer's problem, not the copy's
    }
  }

  private deadLetter(
    chunk: Encoded[],
    result: WriteResult,
    status: number,
    type: string,
    reason: string,
  ): void {
    const at = new Date().toISOString();
    this.opts.deadLetters.add(
      chunk.map((c) => ({
        id: c.op.id,
        index: this.index,
        routing: c.op.routing,
        version: c.op.version,
        status,
        type,
        reason,
        doc: c.op.kind === 'index' ? docValue(c.op.doc) : undefined,
        at,
      })),
    );
    result.deadLetters += chunk.length;
  }
}
