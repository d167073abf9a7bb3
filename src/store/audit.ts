/** Append-only audit trail: what was done to which cluster, when, by which process. Never holds secrets. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { appendLineDurable } from './atomic-file.js';

export type AuditEvent = { event: string } & Record<string, unknown>;

export type AuditListener = (r: AuditEvent & { at: string; pid: number }) => void;

export class AuditLog {
  private readonly listeners = new Set<AuditListener>();

  constructor(readonly path: string) {}

  record(e: AuditEvent): void {
    const r = { at: new Date().toISOString(), pid: process.pid, ...e };
    appendLineDurable(this.path, JSON.stringify(r));
    // Told after the record is durable; a listener (alerts, hooks) never fails the step that recorded.
    for (const l of this.listeners)
      try {
        l(r);
      } catch {
        // its own failures are its own to report
      }
  }

  /** Be told of every record this process writes; returns the unsubscribe function. */
  onRecord(l: AuditListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** The last `n` records (read from the end of the file: the trail of a long migration is never read whole). */
  tail(n: number): Array<AuditEvent & { at: string }> {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      const lines = buf.toString('utf8').split('\n');
      if (len < size) lines.shift(); // the first line may be cut
      const out: Array<AuditEvent & { at: string }> = [];
      for (const line of lines.filter(Boolean).slice(-n)) {
        try {
          out.push(JSON.parse(line) as AuditEvent & { at: string });
        } catch {
          // a line being appended right now: skipped, it shows in the next read
        }
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }
}
