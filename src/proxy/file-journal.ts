/**
 * The embedded journal for one proxy: an append-only file, one checksummed line per entry.
 *
 * Durability: an append resolves only after `fdatasync` returned, and every append that arrived while a flush ran
 * shares the next one (group commit: one disk flush per batch of concurrent requests, not per request). A failed
 * flush may have dropped the dirty pages while a retried one reports success (PostgreSQL's fsyncgate), so it is
 * fatal: the writer refuses every later append and the proxy stops taking writes.
 *
 * A line torn by a crash (no newline) was never acknowledged to anyone: the next proxy cuts it off. A journal
 * whose last entry is not a clean stop belonged to a proxy that died, perhaps between forwarding a write and
 * journaling it, so the next proxy appends a reconcile marker before it takes writes.
 */
import {
  closeSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  write,
} from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import {
  decodeLine,
  type EntryBody,
  encodeEntries,
  JournalBroken,
  type JournalEntry,
  JournalFailed,
  type JournalPos,
  type JournalReader,
  type JournalWriter,
} from './journal.js';

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);

interface Pending {
  entries: EntryBody[];
  resolve: (p: JournalPos) => void;
  reject: (e: Error) => void;
}

/** What an existing journal file holds at its end, read when a proxy opens it. */
interface Tail {
  seq: number;
  size: number;
  last?: JournalEntry;
  tornBytes: number;
}

function readTail(fd: number): Tail {
  const size = fstatSync(fd).size;
  if (size === 0) return { seq: 0, size: 0, tornBytes: 0 };
  // The last complete line is within the last 64 KiB (entries are small).
  const len = Math.min(size, 65_536);
  const buf = Buffer.alloc(len);
  readSync(fd, buf, 0, len, size - len);
  const text = buf.toString('utf8');
  const lastNl = text.lastIndexOf('\n');
  const tornBytes = Buffer.byteLength(text.slice(lastNl + 1));
  if (lastNl < 0) return { seq: 0, size: 0, tornBytes: size };
  const prevNl = text.lastIndexOf('\n', lastNl - 1);
  const line = text.slice(prevNl + 1, lastNl);
  const e = decodeLine(line);
  if (typeof e === 'string')
    throw new JournalBroken(`journal's last entry is unreadable (${e}): not trusted`);
  return { seq: e.seq, size: size - tornBytes, last: e, tornBytes };
}

export class FileJournalWriter implements JournalWriter {
  private fd: number;
  private seq: number;
  private offset: number;
  private queue: Pending[] = [];
  private flushing = false;
  private failed?: Error;
  private durable: JournalPos;
  /** the previous proxy on this journal did not stop cleanly */
  readonly crashedBefore: boolean;

  private constructor(
    readonly path: string,
    private readonly proxy: string,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a+', 0o600);
    const tail = readTail(this.fd);
    if (tail.tornBytes > 0) ftruncateSync(this.fd, tail.size);
    this.seq = tail.seq;
    this.offset = tail.size;
    this.durable = { seq: this.seq, offset: this.offset };
    this.crashedBefore = tail.last !== undefined && tail.last.kind !== 'stop';
  }

  /** Open (or create) the journal and record this proxy's start, after a reconcile marker if one crashed. */
  static async open(path: string, proxy: string): Promise<FileJournalWriter> {
    const w = new FileJournalWriter(path, proxy);
    const first: EntryBody[] = [];
    if (w.crashedBefore)
      first.push({
        kind: 'reconcile',
        why: 'the previous proxy stopped without closing its journal (killed or crashed): a write it forwarded may not be journaled',
      });
    first.push({ kind: 'start' });
    await w.append(first);
    return w;
  }

  get end(): JournalPos {
    return this.durable;
  }

  append(entries: EntryBody[]): Promise<JournalPos> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ entries, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0 && !this.failed) {
      const batch = this.queue;
      this.queue = [];
      const at = Date.now();
      const ends: JournalPos[] = [];
      const chunks: Buffer[] = [];
      let seq = this.seq;
      let offset = this.offset;
      // One buffer per request (a bulk journals hundreds of lines): its length gives the request's end offset.
      for (const p of batch) {
        const chunk = encodeEntries(p.entries, seq + 1, at, this.proxy);
        seq += p.entries.length;
        chunks.push(chunk);
        offset += chunk.length;
        ends.push({ seq, offset });
      }
      try {
        const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        for (let done = 0; done < buf.length; ) {
          const { bytesWritten } = await writeAsync(this.fd, buf, done, buf.length - done, null);
          done += bytesWritten;
        }
        await fdatasyncAsync(this.fd);
      } catch (e) {
        this.failed = new JournalFailed(
          `journal ${this.path} could not be made durable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the proxy stops taking writes`,
        );
        for (const p of [...batch, ...this.queue]) p.reject(this.failed);
        this.queue = [];
        break;
      }
      this.seq = seq;
      this.offset = offset;
      this.durable = { seq, offset };
      for (const [i, p] of batch.entries()) p.resolve(ends[i]!);
    }
    this.flushing = false;
  }

  /** Record a clean stop (the next proxy then needs no reconcile) and close the file. */
  async close(): Promise<void> {
    if (!this.failed) await this.append([{ kind: 'stop' }]).catch(() => undefined);
    while (this.flushing) await new Promise((r) => setTimeout(r, 5));
    closeSync(this.fd);
  }
}

export class FileJournalReader implements JournalReader {
  constructor(readonly path: string) {}

  async read(after: JournalPos, max: number): Promise<{ entries: JournalEntry[]; next: JournalPos }> {
    let fh: Awaited<ReturnType<typeof openAsync>>;
    try {
      fh = await openAsync(this.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        if (after.seq > 0)
          throw new JournalBroken(
            `journal ${this.path} is gone, though ${after.seq} entries were read from it`,
          );
        return { entries: [], next: after };
      }
      throw e;
    }
    try {
      const size = (await fh.stat()).size;
      const offset = after.offset ?? (after.seq === 0 ? 0 : await this.offsetOf(fh, after.seq, size));
      if (size < offset)
        throw new JournalBroken(
          `journal ${this.path} is shorter (${size} bytes) than what was already read from it (${offset} bytes): it was truncated`,
        );
      const entries: JournalEntry[] = [];
      let pos = offset;
      let seq = after.seq;
      const chunk = Buffer.alloc(256 * 1024);
      let carry = '';
      while (entries.length < max && pos < size) {
        const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
        if (bytesRead === 0) break;
        const text = carry + chunk.subarray(0, bytesRead).toString('utf8');
        const readFrom = pos - Buffer.byteLength(carry);
        pos += bytesRead;
        let start = 0;
        let consumed = readFrom;
        for (let nl = text.indexOf('\n'); nl >= 0 && entries.length < max; nl = text.indexOf('\n', start)) {
          const line = text.slice(start, nl);
          const e = decodeLine(line);
          if (typeof e === 'string')
            throw new JournalBroken(`journal ${this.path}: entry after position ${seq} is unreadable (${e})`);
          if (e.seq !== seq + 1)
            throw new JournalBroken(
              `journal ${this.path}: position ${seq} is followed by ${e.seq} (entries were removed or the journal was replaced)`,
            );
          seq = e.seq;
          entries.push(e);
          consumed += Buffer.byteLength(line) + 1;
          start = nl + 1;
        }
        if (entries.length >= max) return { entries, next: { seq, offset: consumed } };
        carry = text.slice(start);
        // A line still being written (no newline yet) waits for the next read.
        if (pos >= size) return { entries, next: { seq, offset: consumed } };
      }
      return { entries, next: { seq, offset: pos - Buffer.byteLength(carry) } };
    } finally {
      await fh.close();
    }
  }

  /** A position without its offset (from another journal kind or an old state): found by a scan. */
  private async offsetOf(
    fh: Awaited<ReturnType<typeof openAsync>>,
    seq: number,
    size: number,
  ): Promise<number> {
    const text = (await fh.readFile()).toString('utf8').slice(0, size);
    let offset = 0;
    for (const line of text.split('\n')) {
      const e = decodeLine(line);
      offset += Buffer.byteLength(line) + 1;
      if (typeof e !== 'string' && e.seq === seq) return offset;
    }
    throw new JournalBroken(`journal ${this.path} has no position ${seq}, though it was read up to there`);
  }

  async end(): Promise<JournalPos> {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { seq: 0, offset: 0 };
      throw e;
    }
    try {
      const t = readTail(fd);
      return { seq: t.seq, offset: t.size };
    } finally {
      closeSync(fd);
    }
  }

  async close(): Promise<void> {}
}
