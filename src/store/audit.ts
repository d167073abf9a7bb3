/** Append-only audit trail: what was done to which cluster, when, by which process. Never holds secrets. */
import { appendLineDurable } from './atomic-file.js';

export type AuditEvent = { event: string } & Record<string, unknown>;

export class AuditLog {
  constructor(readonly path: string) {}

  record(e: AuditEvent): void {
    appendLineDurable(this.path, JSON.stringify({ at: new Date().toISOString(), pid: process.pid, ...e }));
  }
}
