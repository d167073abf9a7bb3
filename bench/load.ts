/**
 * Load generation of the proxy benchmark (undici), the same code for the direct path and the proxied one, so the
 * only difference between two runs is the address. Open loop: requests leave on a fixed schedule whatever the
 * answers do, and latency counts from the moment each was due (a slow answer delays nothing after it and hides
 * nothing: no coordinated omission). Closed loop: keep-alive clients that each send their next request when the
 * previous one is answered. An answer counts once its whole body has been read.
 */
import { Client, Pool } from 'undici';

export interface Req {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  path: string;
  body?: string | Buffer;
  contentType?: string;
}

/** n / p50 / p90 / p99 / max of a sample, ms (nearest rank); nulls when there is none */
export interface Dist {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentile, like the engine's `percentile` (src/capture/live.ts). */
export function pct(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

export function dist(values: ArrayLike<number>): Dist {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    p50: r3(pct(sorted, 50)),
    p90: r3(pct(sorted, 90)),
    p99: r3(pct(sorted, 99)),
    max: r3(sorted.length ? sorted[sorted.length - 1]! : null),
    mean: r3(sorted.length ? sum / sorted.length : null),
  };
}

function count(into: Record<string, number>, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n;
}

/** What went wrong with one answer, as a short key (never a body or a header). */
async function failureOf(status: number, body: Buffer): Promise<string> {
  try {
    const j = JSON.parse(body.toString('utf8')) as { error?: { type?: string } };
    return `${status} ${j.error?.type ?? ''}`.trim();
  } catch {
    return `${status}`;
  }
}

function errorKey(e: unknown): string {
  const err = e as { code?: string; name?: string; message?: string };
  return err.code ?? err.name ?? String(err.message ?? e).slice(0, 60);
}

async function readBody(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

// ---- open loop -----------------------------------------------------------------------------------------

export interface OpenLoopResult {
  rate: number;
  seconds: number;
  scheduled: number;
  answered: number;
  ok: number;
  errors: number;
  errorsByType: Record<string, number>;
  /** successful answers per second, from the first request's due time to the last answer */
  okPerSecond: number;
  /** not sent because `maxInFlight` requests were already waiting (counted in `errors`) */
  dropped: number;
  /** ms from the moment each request was due to its answer (successful ones) */
  latencyMs: Dist;
  /** ms from the moment each request was handed to undici (without the generator's own delay) */
  serviceMs: Dist;
  /** how late the generator sent, ms (its own event-loop delay; the same on both paths) */
  sendDelayMs: Dist;
  wallSeconds: number;
  /** with `keepSamples`: every successful request's latency and service time, ms (to pool several runs) */
  samples?: { latency: number[]; service: number[] };
}

/**
 * `rate` requests/s for `seconds`, request i made by `make(i)` and due at start + i / rate. `ok(status)` says
 * which statuses are answers (default 2xx).
 */
export async function openLoop(o: {
  origin: string;
  rate: number;
  seconds: number;
  make: (i: number) => Req;
  ok?: (status: number) => boolean;
  connections?: number;
  maxInFlight?: number;
  timeoutMs?: number;
  keepSamples?: boolean;
}): Promise<OpenLoopResult> {
  const okStatus = o.ok ?? ((s: number) => s >= 200 && s < 300);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const maxInFlight = o.maxInFlight ?? 4096;
  const pool = new Pool(o.origin, {
    connections: o.connections ?? 1024,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const total = Math.round(o.rate * o.seconds);
  const latency = new Float64Array(total).fill(Number.NaN);
  const service = new Float64Array(total).fill(Number.NaN);
  const delay = new Float64Array(total);
  const errorsByType: Record<string, number> = {};
  let answered = 0;
  let ok = 0;
  let dropped = 0;
  let inFlight = 0;
  let sent = 0;
  let done!: () => void;
  const allAnswered = new Promise<void>((r) => {
    done = r;
  });
  const settle = () => {
    answered++;
    if (answered === total) done();
  };
  const fire = (i: number, dueAt: number) => {
    const t = performance.now();
    delay[i] = t - dueAt;
    if (inFlight >= maxInFlight) {
      dropped++;
      count(errorsByType, 'dropped (too many in flight)');
      settle();
      return;
    }
    inFlight++;
    const r = o.make(i);
    pool
      .request({
        method: r.method,
        path: r.path,
        body: r.body,
        headers: r.body === undefined ? {} : { 'content-type': r.contentType ?? 'application/json' },
      })
      .then(async (res) => {
        const body = await readBody(res.body);
        const at = performance.now();
        // A bulk answered 200 may still have refused items (429 per item under load): not an answer counted ok.
        if (okStatus(res.statusCode) && r.path.endsWith('/_bulk') && body.includes('"errors":true'))
          count(errorsByType, 'bulk items refused');
        else if (okStatus(res.statusCode)) {
          ok++;
          latency[i] = at - dueAt;
          service[i] = at - t;
        } else count(errorsByType, await failureOf(res.statusCode, body));
      })
      .catch((e: unknown) => count(errorsByType, errorKey(e)))
      .finally(() => {
        inFlight--;
        settle();
      });
  };
  const started = performance.now();
  if (total === 0) done();
  // Start a little ahead so the first requests are not already late.
  const t0 = started + 20;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * o.rate) / 1000) + 1);
      while (sent < due) {
        const i = sent++;
        fire(i, t0 + (i * 1000) / o.rate);
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 20);
  });
  await allAnswered;
  const endAt = performance.now();
  const wallSeconds = (endAt - started) / 1000;
  await pool.close();
  const okOnly = (a: Float64Array) => a.filter((x) => !Number.isNaN(x));
  const latencyOk = okOnly(latency);
  const serviceOk = okOnly(service);
  return {
    rate: o.rate,
    seconds: o.seconds,
    scheduled: total,
    answered,
    ok,
    errors: total - ok,
    errorsByType,
    okPerSecond: Math.round(ok / ((endAt - t0) / 1000)),
    dropped,
    latencyMs: dist(latencyOk),
    serviceMs: dist(serviceOk),
    sendDelayMs: dist(delay),
    wallSeconds,
    samples: o.keepSamples ? { latency: Array.from(latencyOk), service: Array.from(serviceOk) } : undefined,
  };
}

// ---- closed loop ---------------------------------------------------------------------------------------

export interface ClosedLoopResult {
  clients: number;
  seconds: number;
  requests: number;
  ok: number;
  errors: number;
  errorsByType: Record<string, number>;
  /** answered requests per second over the whole run (ramp included) */
  okPerSecond: number;
  latencyMs: Dist;
  /** clients that got at least one answer */
  clientsAnswered: number;
  wallSeconds: number;
}

/**
 * `clients` keep-alive clients (one connection each), started over `rampMs`, each sending `make(client, k)` in a
 * loop until `seconds` after the first started. A failed request is counted and the client goes on after 10 ms.
 * `during` runs every second meanwhile (e.g. to count the proxy's sockets).
 */
export async function closedLoop(o: {
  origin: string;
  clients: number;
  seconds: number;
  rampMs?: number;
  make: (client: number, k: number) => Req;
  ok?: (status: number) => boolean;
  timeoutMs?: number;
  during?: () => void;
}): Promise<ClosedLoopResult> {
  const okStatus = o.ok ?? ((s: number) => s >= 200 && s < 300);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const rampMs = o.rampMs ?? 1000;
  const latencies: number[] = [];
  const errorsByType: Record<string, number> = {};
  let requests = 0;
  let ok = 0;
  const answeredBy = new Set<number>();
  const started = performance.now();
  const until = started + o.seconds * 1000;
  const clients: Client[] = [];
  const one = async (c: number) => {
    await new Promise((r) => setTimeout(r, (c * rampMs) / o.clients));
    const client = new Client(o.origin, {
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    clients.push(client);
    for (let k = 0; performance.now() < until; k++) {
      const r = o.make(c, k);
      const t = performance.now();
      requests++;
      try {
        const res = await client.request({
          method: r.method,
          path: r.path,
          body: r.body,
          headers: r.body === undefined ? {} : { 'content-type': r.contentType ?? 'application/json' },
        });
        const body = await readBody(res.body);
        if (okStatus(res.statusCode)) {
          ok++;
          answeredBy.add(c);
          latencies.push(performance.now() - t);
        } else count(errorsByType, await failureOf(res.statusCode, body));
      } catch (e) {
        count(errorsByType, errorKey(e));
        await new Promise((res) => setTimeout(res, 10));
      }
    }
  };
  const runs = Array.from({ length: o.clients }, (_, c) => one(c));
  const sampler = o.during ? setInterval(o.during, 1000) : undefined;
  await Promise.all(runs);
  if (sampler) clearInterval(sampler);
  const wallSeconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  return {
    clients: o.clients,
    seconds: o.seconds,
    requests,
    ok,
    errors: requests - ok,
    errorsByType,
    okPerSecond: Math.round(ok / wallSeconds),
    latencyMs: dist(latencies),
    clientsAnswered: answeredBy.size,
    wallSeconds,
  };
}

// ---- bulk streams --------------------------------------------------------------------------------------

export interface BulkResult {
  streams: number;
  requests: number;
  docs: number;
  bytes: number;
  seconds: number;
  docsPerSecond: number;
  mbPerSecond: number;
  /** failed requests and failed items */
  errors: number;
  errorsByType: Record<string, number>;
  latencyMs: Dist;
}

/** The prebuilt `_bulk` bodies sent to `path`, `streams` at a time, each the next body as soon as one is answered. */
export async function bulkStreams(o: {
  origin: string;
  path: string;
  bodies: Buffer[];
  docsPerBody: number;
  streams: number;
  timeoutMs?: number;
}): Promise<BulkResult> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const pool = new Pool(o.origin, {
    connections: o.streams,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const errorsByType: Record<string, number> = {};
  const latencies: number[] = [];
  let next = 0;
  let docs = 0;
  let bytes = 0;
  let errors = 0;
  const started = performance.now();
  const stream = async () => {
    for (let b = next++; b < o.bodies.length; b = next++) {
      const body = o.bodies[b]!;
      const t = performance.now();
      try {
        const res = await pool.request({
          method: 'POST',
          path: `${o.path}?filter_path=errors,items.*.status,items.*.error.type`,
          body,
          headers: { 'content-type': 'application/x-ndjson' },
        });
        const text = await readBody(res.body);
        latencies.push(performance.now() - t);
        if (res.statusCode !== 200) {
          errors += o.docsPerBody;
          count(errorsByType, await failureOf(res.statusCode, text), o.docsPerBody);
          continue;
        }
        const j = JSON.parse(text.toString('utf8')) as {
          errors: boolean;
          items: Array<Record<string, { status: number; error?: { type?: string } }>>;
        };
        let failed = 0;
        if (j.errors)
          for (const it of j.items) {
            const r = Object.values(it)[0]!;
            if (r.status >= 300) {
              failed++;
              count(errorsByType, `${r.status} ${r.error?.type ?? ''}`.trim());
            }
          }
        errors += failed;
        docs += j.items.length - failed;
        bytes += body.length;
      } catch (e) {
        errors += o.docsPerBody;
        count(errorsByType, errorKey(e), o.docsPerBody);
      }
    }
  };
  await Promise.all(Array.from({ length: o.streams }, stream));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return {
    streams: o.streams,
    requests: o.bodies.length,
    docs,
    bytes,
    seconds,
    docsPerSecond: Math.round(docs / seconds),
    mbPerSecond: Math.round((bytes / 2 ** 20 / seconds) * 10) / 10,
    errors,
    errorsByType,
    latencyMs: dist(latencies),
  };
}
