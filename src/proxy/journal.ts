/**
 * The journal: what the write proxy saw, in the order it saw it, made durable before the client got its answer.
 * It holds ids, never documents: the runner copies each id's *current* state from the source, so the order of
 * concurrent writes to one id never matters, and a document deleted meanwhile is simply deleted on the target.
 *
 * Every entry carries a position (`seq`) one above the previous one. A reader that finds a hole, a repeated
 * number, a line whose checksum does not match, or less journal than it already read, has found a journal that
 * was cut or edited: it says so (JournalBroken) and the runner reconciles the whole index instead of trusting it.
 */
import { crc32 } from 'node:zlib';
import { CutoverError, EXIT } from '../store/errors.js';

export type DocOp = 'index' | 'create' | 'update' | 'delete';

/** One document the application touched; `index` is where the write landed (from the response), else as named. */
export interface DocEntry {
  kind: 'doc';
  op: DocOp;
  index: string;
  id: string;
  routing?: string;
  /**
   * The `_seq_no` the cluster gave this write on its shard, when the response showed one. The runner uses them to
   * prove that no source operation escaped the journal (journal-accounting.ts); an entry without one only makes
   * that proof fall back to a listing.
   */
  sn?: number;
  /**
   * The cluster refused this document's write with a 4xx (a delete or update of a document it did not have, a
   * version conflict, a rejection): nothing changed. A 5xx is not marked: the write may still have landed. Still journaled, since copying current state is harmless;
   * the revert window's reverse sync tells from it which writes took effect since the switch.
   */
  failed?: true;
}

/**
 * The journal cannot say which ids changed: a `_delete_by_query`/`_update_by_query`, a bulk whose response hid
 * its items (`filter_path`), a body the proxy could not read, a proxy restarted after a crash (a write may have
 * been forwarded and never journaled). The runner must reconcile the whole index before it may switch.
 */
export interface ReconcileEntry {
  kind: 'reconcile';
  /** the index concerned; absent: every index of the migration */
  index?: string;
  why: string;
  /** a by-query run as a task (`wait_for_completion=false`): the runner waits for it before reconciling */
  task?: string;
}

/** A proxy started or stopped cleanly (a start without the previous stop is a crash: see ReconcileEntry). */
export interface LifeEntry {
  kind: 'start' | 'stop';
}

export type EntryBody = DocEntry | ReconcileEntry | LifeEntry;

export type JournalEntry = EntryBody & {
  /** position in the journal: consecutive, from 1 */
  seq: number;
  /** ms since epoch when the proxy journaled it */
  at: number;
  /** the proxy that wrote it */
  proxy: string;
};

/** Where a reader stands: the last position it has consumed, and (file journal) the byte offset after it. */
export interface JournalPos {
  seq: number;
  offset?: number;
}

export const JOURNAL_START: JournalPos = { seq: 0, offset: 0 };

/** The proxy's side. */
export interface JournalWriter {
  /**
   * Append entries and resolve once they are durable. Entries appended while a flush runs share the next one
   * (group commit). A failed flush is fatal: this and every later append reject, and nothing is retried.
   */
  append(entries: EntryBody[]): Promise<JournalPos>;
  /** the position of the last durable entry */
  readonly end: JournalPos;
  close(): Promise<void>;
}

/** The runner's side. */
export interface JournalReader {
  /** entries after `after`, at most `max`, in order; `next` is where the following read starts */
  read(after: JournalPos, max: number): Promise<{ entries: JournalEntry[]; next: JournalPos }>;
  /** the position of the last durable entry */
  end(): Promise<JournalPos>;
  close(): Promise<void>;
}

/** The journal was cut, edited or lost: the entries after a position cannot be trusted. */
export class JournalBroken extends CutoverError {
  override readonly name = 'JournalBroken';
  readonly exitCode = EXIT.cluster;
}

/** The journal could not be made durable: the proxy must stop taking writes (fsyncgate: never retry a flush). */
export class JournalFailed extends CutoverError {
  override readonly name = 'JournalFailed';
  readonly exitCode = EXIT.cluster;
}

/** One line of the file journal: `<crc32 hex of the JSON> <JSON>\n`. */
export function encodeLine(e: JournalEntry): string {
  const json = JSON.stringify(e);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** A string JSON.stringify leaves as it is between its quotes: printable ASCII without `"` and `\\`. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** Bytes appended in place, grown by doubling. */
class Lines {
  buf: Buffer;
  len = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
  /** `s` known to be ASCII (one byte per character) */
  ascii(s: string): void {
    this.len += this.buf.write(s, this.len, 'latin1');
  }
  utf8(s: string): void {
    this.len += this.buf.write(s, this.len, 'utf8');
  }
  /** `s` as JSON.stringify writes it */
  json(s: string): void {
    if (PLAIN.test(s)) {
      this.buf[this.len++] = 0x22;
      this.ascii(s);
      this.buf[this.len++] = 0x22;
    } else this.utf8(JSON.stringify(s));
  }
}

/**
 * The lines of entries numbered from `firstSeq`, as one buffer: the same bytes as `encodeLine` of each entry with
 * `seq`, `at` and `proxy` added, written in place without a string per line. A bulk journals hundreds of lines per
 * request, and on a machine the proxy shares with the cluster its CPU is the cluster's throughput: the strings this
 * once built were most of what the proxy allocated under `_bulk`, and so most of its garbage collection.
 */
export function encodeEntries(
  bodies: readonly EntryBody[],
  firstSeq: number,
  at: number,
  proxy: string,
): Buffer {
  const tail = `,"at":${at},"proxy":${JSON.stringify(proxy)}}`;
  const tailBytes = Buffer.byteLength(tail);
  const out = new Lines(bodies.length * 160 + 256);
  let seq = firstSeq;
  for (const b of bodies) {
    const start = out.len;
    if (b.kind === 'doc') {
      // The key order of JSON.stringify of the spread entry: kind, op, index, id, routing, sn, failed, seq, at,
      // proxy. A JSON string takes at most 6 bytes per UTF-16 unit (`\uXXXX`).
      out.reserve(
        9 + 120 + tailBytes + 6 * (b.op.length + b.index.length + b.id.length + (b.routing?.length ?? 0)),
      );
      out.len += 9;
      out.ascii('{"kind":"doc","op":');
      out.json(b.op);
      out.ascii(',"index":');
      out.json(b.index);
      out.ascii(',"id":');
      out.json(b.id);
      if (b.routing !== undefined) {
        out.ascii(',"routing":');
        out.json(b.routing);
      }
      if (b.sn !== undefined) out.ascii(`,"sn":${b.sn}`);
      if (b.failed) out.ascii(',"failed":true');
      out.ascii(`,"seq":${seq}`);
      out.utf8(tail);
    } else {
      const json = JSON.stringify({ ...b, seq, at, proxy });
      out.reserve(9 + Buffer.byteLength(json) + 1);
      out.len += 9;
      out.utf8(json);
    }
    seq++;
    // `<crc32 hex of the JSON> ` before it, as encodeLine writes it.
    let crc = crc32(out.buf.subarray(start + 9, out.len));
    for (let i = 7; i >= 0; i--) {
      out.buf[start + i] = HEX[crc & 0xf]!;
      crc >>>= 4;
    }
    out.buf[start + 8] = 0x20;
    out.reserve(1);
    out.buf[out.len++] = 0x0a;
  }
  return out.buf.subarray(0, out.len);
}

/** The entry of a line (without its newline), or why it is not one. */
export function decodeLine(line: string): JournalEntry | string {
  const sp = line.indexOf(' ');
  if (sp !== 8) return 'no checksum';
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return 'checksum mismatch';
  try {
    const e = JSON.parse(json) as JournalEntry;
    if (typeof e.seq !== 'number' || typeof e.kind !== 'string') return 'not an entry';
    return e;
  } catch {
    return 'not JSON';
  }
}
