/**
 * The audit trail, mirrored into an index on a cluster (`audit.index`): the same records, in order, so a team
 * can search every migration's history where they search everything else. The file stays the record of truth:
 * the mirror is written in batches every few seconds, a cluster that refuses is reported once and retried with the
 * next batch, and when it stays down the oldest unsent records are dropped from the buffer (never from the file).
 */
import type { Cluster } from '../cluster/client.js';

const FLUSH_MS = 5_000;
const MAX_BUFFER = 10_000;

export class AuditIndex {
  private buffer: Array<Record<string, unknown>> = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private failing = false;
  private dropped = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly index: string,
    private readonly migration: string,
    private readonly warn: (m: string) => void,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  add(r: Record<string, unknown>): void {
    this.buffer.push({ migration: this.migration, ...r, '@timestamp': r.at });
    if (this.buffer.length > MAX_BUFFER) {
      this.dropped += this.buffer.length - MAX_BUFFER;
      this.buffer.splice(0, this.buffer.length - MAX_BUFFER);
    }
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.send());
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async send(): Promise<void> {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    const body = `${batch.map((r) => `{"index":{}}\n${JSON.stringify(r)}`).join('\n')}\n`;
    try {
      const res = await this.cluster.request<{ errors?: boolean; items?: unknown[] }>({
        method: 'POST',
        path: `/${encodeURIComponent(this.index)}/_bulk`,
        body,
        ndjson: true,
      });
      if (res.body.errors) throw new Error('some records were refused (see the index mapping)');
      if (this.failing || this.dropped) {
        this.warn(
          `audit index ${this.index} is written again${this.dropped ? `; ${this.dropped} record(s) were dropped from the mirror meanwhile (all are in the audit file)` : ''}`,
        );
        this.failing = false;
        this.dropped = 0;
      }
    } catch (e) {
      // Back in front of what came since, to be sent with the next batch.
      this.buffer = [...batch, ...this.buffer].slice(-MAX_BUFFER);
      if (!this.failing)
        this.warn(
          `audit index ${this.index} cannot be written (${(e as Error).message}); the audit file has every record, the index gets them when it can`,
        );
      this.failing = true;
    }
  }
}
