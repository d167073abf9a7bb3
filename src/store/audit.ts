/** Append-only audit trail: what was done to which cluster, when, by which process. Never holds secrets. */
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
}
