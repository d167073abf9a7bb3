/**
 * The application of the hold and lag parts: `_bulk` requests of `batch` small ops through the proxy on a fixed
 * schedule (never waiting for the previous answer, never retried), mix index / partial update / delete like
 * bench/live.ts. Updates and deletes pick ids believed present, and no id is in two requests at once, so a failed
 * item means the write was refused or lost, not that writers raced each other. Every op is counted: acknowledged,
 * refused (a status the application would have to retry: 429, 5xx, a write block, a transport failure), failed
 * otherwise, or not sent (its tick found `maxInFlight` requests still waiting: back-pressure, not a refusal).
 */
import { Pool } from 'undici';
import { docId, prng } from './lib.js';
import { type Dist, dist } from './load.js';

export type OpKind = 'index' | 'update' | 'delete';

export interface WritersStats {
  rate: number;
  batch: number;
  seconds: number;
  ticks: number;
  /** ticks with `maxInFlight` requests waiting: their ops were never sent */
  skippedTicks: number;
  /** ops of the skipped ticks */
  notSent: number;
  requests: number;
  sent: number;
  acked: number;
  ackedByKind: Record<OpKind, number>;
  refused: number;
  refusedByType: Record<string, number>;
  otherFailures: number;
  otherFailuresByType: Record<string, number>;
  achievedAckedPerSecond: number;
  /** ms from due to answer, per request */
  requestMs: Dist;
  /** the requests that waited longest: when they were due (ISO) and how long, ms */
  slowest: Array<{ at: string; ms: number }>;
}

interface Op {
  id: number;
  kind: OpKind;
}

const REFUSING_TYPES = new Set([
  'cluster_block_exception',
  'es_rejected_execution_exception',
  'circuit_breaking_exception',
]);

function refusal(status: number, type: string | undefined): boolean {
  return status === 429 || status >= 500 || status === 0 || (type !== undefined && REFUSING_TYPES.has(type));
}

export class AppWriters {
  private readonly rand: () => number;
  private present: Uint8Array;
  private nextNew: number;
  private n = 0;
  private readonly busy = new Set<number>();
  private readonly pool: Pool;
  private stopped = false;
  private loop?: Promise<void>;
  private readonly requests = new Set<Promise<void>>();
  private inFlight = 0;
  private startedAt = 0;
  private stoppedAt = 0;
  private readonly latencies: number[] = [];
  private readonly slow: Array<{ at: number; ms: number }> = [];
  private readonly st = {
    ticks: 0,
    skippedTicks: 0,
    notSent: 0,
    requests: 0,
    sent: 0,
    acked: 0,
    ackedByKind: { index: 0, update: 0, delete: 0 } as Record<OpKind, number>,
    refused: 0,
    refusedByType: {} as Record<string, number>,
    otherFailures: 0,
    otherFailuresByType: {} as Record<string, number>,
  };
  private readonly totalWeight: number;

  constructor(
    private readonly o: {
      origin: string;
      /** the write alias */
      alias: string;
      rate: number;
      batch: number;
      /** ids docId(0..docs-1) exist at the start */
      docs: number;
      templates: Array<Record<string, unknown>>;
      mix: Record<OpKind, number>;
      seed: number;
      maxInFlight?: number;
      /**
       * `filter_path` on the bulks, as Logstash sends it (only each item's status, result and error type come
       * back): the proxy then sees no `_seq_no` and the hold cannot skip its safety-net round. Default: the whole
       * answer, as the official clients ask for it.
       */
      filterPath?: boolean;
    },
  ) {
    this.rand = prng(o.seed);
    this.present = new Uint8Array(o.docs * 2).fill(1, 0, o.docs);
    this.nextNew = o.docs;
    this.totalWeight = o.mix.index + o.mix.update + o.mix.delete;
    this.pool = new Pool(o.origin, {
      connections: o.maxInFlight ?? 256,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
  }

  start(): void {
    this.startedAt = Date.now();
    this.loop = this.run();
  }

  async stop(): Promise<WritersStats> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.requests]);
    this.stoppedAt = Date.now();
    await this.pool.close();
    const seconds = (this.stoppedAt - this.startedAt) / 1000;
    return {
      rate: this.o.rate,
      batch: this.o.batch,
      seconds,
      ...this.st,
      achievedAckedPerSecond: Math.round(this.st.acked / seconds),
      requestMs: dist(this.latencies),
      slowest: [...this.slow]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 5)
        .map((s) => ({ at: new Date(s.at).toISOString(), ms: Math.round(s.ms) })),
    };
  }

  private count(into: Record<string, number>, key: string, n = 1): void {
    into[key] = (into[key] ?? 0) + n;
  }

  private async run(): Promise<void> {
    const interval = (1000 * this.o.batch) / this.o.rate;
    const max = this.o.maxInFlight ?? 256;
    const t0 = performance.now();
    for (let k = 0; !this.stopped; k++) {
      const due = t0 + k * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.stopped) break;
      this.st.ticks++;
      if (this.inFlight >= max) {
        this.st.skippedTicks++;
        this.st.notSent += this.o.batch;
        continue;
      }
      const p = this.send(Date.now() + (due - performance.now()));
      this.requests.add(p);
      void p.finally(() => this.requests.delete(p));
    }
  }

  private pickKind(): OpKind {
    let r = this.rand() * this.totalWeight;
    for (const k of ['index', 'update', 'delete'] as const) {
      if (r < this.o.mix[k]) return k;
      r -= this.o.mix[k];
    }
    return 'index';
  }

  private isPresent(id: number): boolean {
    return id < this.present.length && this.present[id] === 1;
  }

  private setPresent(id: number, v: boolean): void {
    if (id >= this.present.length) {
      const grown = new Uint8Array(Math.max(id + 1, this.present.length * 2));
      grown.set(this.present);
      this.present = grown;
    }
    this.present[id] = v ? 1 : 0;
  }

  /** An id for `kind` that no request in flight touches; index ops go half to new ids. */
  private pickId(kind: OpKind): number | undefined {
    if (kind === 'index' && this.rand() < 0.5) return this.nextNew++;
    for (let tries = 0; tries < 16; tries++) {
      const id = Math.floor(this.rand() * this.nextNew);
      if (this.busy.has(id)) continue;
      if (kind !== 'index' && !this.isPresent(id)) continue;
      return id;
    }
    return kind === 'index' ? this.nextNew++ : undefined;
  }

  private async send(dueAtEpoch: number): Promise<void> {
    const ops: Op[] = [];
    for (let i = 0; i < this.o.batch; i++) {
      let kind = this.pickKind();
      let id = this.pickId(kind);
      if (id === undefined) {
        kind = 'index';
        id = this.pickId(kind)!;
      }
      this.busy.add(id);
      ops.push({ id, kind });
    }
    const lines: string[] = [];
    for (const op of ops) {
      const _id = docId(op.id);
      const w = ++this.n;
      if (op.kind === 'index') {
        const t = this.o.templates[w % this.o.templates.length];
        lines.push(JSON.stringify({ index: { _id } }), JSON.stringify({ ...t, w }));
      } else if (op.kind === 'update')
        lines.push(JSON.stringify({ update: { _id } }), JSON.stringify({ doc: { w, quantity: w % 1000 } }));
      else lines.push(JSON.stringify({ delete: { _id } }));
    }
    this.inFlight++;
    this.st.requests++;
    this.st.sent += ops.length;
    let items: Array<{ status: number; result?: string; error?: { type?: string } }>;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: `/${encodeURIComponent(this.o.alias)}/_bulk${this.o.filterPath ? '?filter_path=items.*.status,items.*.result,items.*.error.type' : ''}`,
        body: `${lines.join('\n')}\n`,
        headers: { 'content-type': 'application/x-ndjson' },
      });
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      if (res.statusCode !== 200) {
        let type: string | undefined;
        try {
          type = (JSON.parse(text) as { error?: { type?: string } }).error?.type;
        } catch {
          type = undefined;
        }
        items = ops.map(() => ({
          status: res.statusCode,
          error: { type: type ?? `status ${res.statusCode}` },
        }));
      } else
        items = (JSON.parse(text) as { items: Array<Record<string, { status: number }>> }).items.map(
          (it) => Object.values(it)[0]!,
        );
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'transport error';
      items = ops.map(() => ({ status: 0, error: { type: code } }));
    } finally {
      this.inFlight--;
    }
    const ms = Date.now() - dueAtEpoch;
    this.latencies.push(ms);
    this.slow.push({ at: dueAtEpoch, ms });
    if (this.slow.length > 50) {
      this.slow.sort((a, b) => b.ms - a.ms);
      this.slow.length = 10;
    }
    ops.forEach((op, i) => {
      this.busy.delete(op.id);
      const it = items[i] ?? { status: 0, error: { type: 'no item in the answer' } };
      // A delete of an id already gone is answered 404 not_found: acknowledged, nothing changed.
      const noopDelete = op.kind === 'delete' && it.status === 404 && it.result === 'not_found';
      if ((it.status >= 200 && it.status < 300) || noopDelete) {
        this.st.acked++;
        this.st.ackedByKind[op.kind]++;
        this.setPresent(op.id, op.kind !== 'delete');
        return;
      }
      const type = it.error?.type ?? `status ${it.status}`;
      if (refusal(it.status, it.error?.type)) {
        this.st.refused++;
        this.count(this.st.refusedByType, type);
      } else {
        this.st.otherFailures++;
        this.count(this.st.otherFailuresByType, type);
      }
      if (type === 'document_missing_exception') this.setPresent(op.id, false);
    });
  }
}
