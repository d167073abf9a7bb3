/**
 * What crosses the proxy unchanged and what does not: end-to-end headers pass both ways as they are (clients
 * check `x-elastic-product`, the application's own Authorization reaches the cluster), hop-by-hop headers
 * (RFC 9110 §7.6.1, and any the Connection header lists) stop at the proxy, and `host` becomes the upstream's.
 * Nothing here logs or inspects a header's value.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { promisify } from 'node:util';
import { deflate, gunzip, gzip, inflate } from 'node:zlib';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function connectionListed(headers: Record<string, unknown>): Set<string> {
  const c = headers.connection;
  const listed = new Set<string>();
  for (const v of Array.isArray(c) ? c : [c])
    if (typeof v === 'string') for (const t of v.split(',')) listed.add(t.trim().toLowerCase());
  return listed;
}

/**
 * Client request headers for the upstream: hop-by-hop, `host` and `expect` removed (undici sets the host and
 * refuses `expect`; Node's server already answered 100-continue). `drop` names more to remove (content-length
 * when the body is replaced, accept-encoding when the proxy must read the answer).
 */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  drop: readonly string[] = [],
): Record<string, string | string[]> {
  const listed = connectionListed(headers);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed.has(k) || k === 'host' || k === 'expect') continue;
    if (drop.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/** Upstream response headers for the client: everything end-to-end, as the cluster sent it. */
export function clientResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop: readonly string[] = [],
): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed.has(k) || drop.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The first value of a header (undici and Node give arrays for repeated ones). */
export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A body as sent (possibly compressed), decompressed only for reading; throws on an encoding it cannot undo. */
export async function decodedBody(body: Buffer, contentEncoding: string | undefined): Promise<Buffer> {
  const enc = (contentEncoding ?? '').trim().toLowerCase();
  if (enc === '' || enc === 'identity') return body;
  if (enc === 'gzip' || enc === 'x-gzip') return gunzipAsync(body);
  if (enc === 'deflate') return inflateAsync(body);
  throw new Error(`content-encoding ${enc} is not one the proxy can read`);
}

/** A body the proxy changed, encoded again as the client sent the original. */
export async function encodedBody(body: Buffer, contentEncoding: string | undefined): Promise<Buffer> {
  const enc = (contentEncoding ?? '').trim().toLowerCase();
  if (enc === 'gzip' || enc === 'x-gzip') return gzipAsync(body);
  if (enc === 'deflate') return deflateAsync(body);
  return body;
}

/** An error in Elasticsearch's shape, so clients report it as they report the cluster's own. */
export function esErrorBody(status: number, type: string, reason: string): Buffer {
  return Buffer.from(JSON.stringify({ error: { root_cause: [{ type, reason }], type, reason }, status }));
}
