/**
 * The one HTTP layer of cutover. Every request to every cluster goes through `Transport.request`:
 * keep-alive pool (undici), auth, TLS verification (CA file or pinned CA fingerprint), typed errors,
 * and retries — only for idempotent requests.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { checkServerIdentity } from 'node:tls';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Agent, buildConnector, type Dispatcher, request as undiciRequest } from 'undici';
import { ClusterError, parseErrorBody, TransportError } from './errors.js';
import { explainFailure, type FailureContext, retryNotice } from './explain.js';
import { clusterNotice } from './notices.js';
import { redactUrl, scrub } from './redact.js';
import { type RetryPolicy, TRANSPORT_RETRY, withRetry } from './retry.js';

const gzipAsync = promisify(gzip);

export type Auth = { username: string; password: string } | { apiKey: string } | { bearer: string };

export interface TlsOptions {
  /** PEM file of the CA that signed the cluster's HTTP certificate */
  caFile?: string;
  /** SHA-256 fingerprint (hex, colons optional) of a certificate in the server's chain: pins it */
  caFingerprint?: string;
  /** Turns certificate verification off. Never the default; the CLI prints a warning when set. */
  insecure?: boolean;
}

export interface ClusterConfig {
  url: string;
  auth?: Auth;
  tls?: TlsOptions;
  /** per request, ms (default 120 s: a bulk under load may take long) */
  requestTimeoutMs?: number;
  /** sockets per origin (default 16) */
  connections?: number;
  retry?: RetryPolicy;
  /** spec field of this cluster ("source.cluster"): failures and retry notices name it */
  label?: string;
  /** where `auth` came from ("source.cluster.auth.passwordEnv (ES_PASSWORD)"): a 401 says to check it */
  authSetting?: string;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  path: string;
  query?: Query;
  /** JSON value, or a prebuilt NDJSON string/Buffer when `ndjson` is set */
  body?: unknown;
  ndjson?: boolean;
  gzip?: boolean;
  /** safe to send twice (reads, PUT of the same state, versioned writes): enables transport retries */
  idempotent?: boolean;
  /** statuses that are answers, not errors (e.g. 404 for an existence check); 'all' returns every status */
  okStatuses?: number[] | 'all';
  signal?: AbortSignal;
  /** return a successful answer's body as bytes (a Buffer), unparsed (errors are parsed as always) */
  raw?: boolean;
  /** this request's retries, when the caller cannot wait the cluster's whole budget (a quick look) */
  retry?: RetryPolicy;
}

export interface Response<T = unknown> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

function normalizeFingerprint(fp: string): string {
  return fp.replace(/:/g, '').toLowerCase();
}

/** Pinning: accept the chain only when one of its certificates has the configured SHA-256 fingerprint. */
function fingerprintConnector(fingerprint: string, base: Record<string, unknown>): buildConnector.connector {
  const wanted = normalizeFingerprint(fingerprint);
  // The chain is self-signed, so Node's verification cannot succeed on its own; the pin replaces it.
  const connect = buildConnector({ ...base, rejectUnauthorized: false });
  return (opts, callback) =>
    connect(opts, (err, socket) => {
      if (err || !socket) return callback(err, null as never);
      const tls = socket as TLSSocket;
      let cert = tls.getPeerCertificate?.(true);
      const seen = new Set<string>();
      let matched = false;
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        if (createHash('sha256').update(cert.raw).digest('hex') === wanted) matched = true;
        cert = cert.issuerCertificate;
      }
      const leaf = tls.getPeerCertificate?.();
      const hostErr = leaf ? checkServerIdentity(opts.hostname, leaf) : new Error('no peer certificate');
      if (!matched || hostErr) {
        socket.destroy();
        const why = !matched
          ? 'no certificate in the chain matches the configured CA fingerprint'
          : hostErr?.message;
        const e = new Error(`TLS verification failed: ${why}`) as Error & { code: string };
        e.code = 'CUTOVER_TLS_PIN_MISMATCH';
        return callback(e, null as never);
      }
      callback(null, socket);
    });
}

/**
 * The `connect` option of an undici dispatcher for these TLS settings: verification on unless `insecure`, the CA
 * file added to the trusted roots, or the chain pinned by fingerprint. Shared with the write proxy's upstream.
 */
export function tlsConnect(tls: TlsOptions | undefined): Record<string, unknown> | buildConnector.connector {
  const base: Record<string, unknown> = {};
  if (tls?.caFile) base.ca = readFileSync(tls.caFile);
  if (tls?.insecure) base.rejectUnauthorized = false;
  return tls?.caFingerprint && !tls.insecure ? fingerprintConnector(tls.caFingerprint, base) : base;
}

export class Transport {
  readonly origin: string;
  /** URL safe to print */
  readonly displayUrl: string;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly dispatcher: Dispatcher;
  private readonly secrets: string[];
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly failure: FailureContext;

  constructor(config: ClusterConfig) {
    let url: URL;
    try {
      url = new URL(config.url);
    } catch {
      throw new TypeError(`${config.label ?? 'cluster'}.url is not a valid URL: ${redactUrl(config.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(
        `${config.label ?? 'cluster'}.url must be http:// or https://, got ${redactUrl(url.protocol)}`,
      );
    }
    let auth = config.auth;
    let authSetting = auth ? (config.authSetting ?? 'the configured credentials') : undefined;
    if (!auth && (url.username || url.password)) {
      auth = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      authSetting = `the credentials in ${config.label ? `${config.label}.url` : 'the cluster URL'}`;
    }
    url.username = '';
    url.password = '';
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.displayUrl = redactUrl(url.toString());
    this.failure = { label: config.label, displayUrl: this.displayUrl, authSetting };
    this.headers = { accept: 'application/json' };
    this.secrets = [];
    const authorization = authorizationOf(auth);
    if (authorization && auth) {
      this.headers.authorization = authorization.header;
      this.secrets.push(...authorization.secrets);
    }
    this.retry = config.retry ?? TRANSPORT_RETRY;
    this.timeoutMs = config.requestTimeoutMs ?? 120_000;

    const connect = tlsConnect(config.tls);
    this.dispatcher = new Agent({
      connections: config.connections ?? 16,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect,
    });
  }

  /** Remove anything secret from text that came back from the server or the network stack. */
  scrub(text: string): string {
    return scrub(text, this.secrets);
  }

  /** A failure comes out naming this cluster's spec field and what to check; each retry is announced. */
  async request<T = unknown>(opts: RequestOptions): Promise<Response<T>> {
    const started = Date.now();
    const policy = opts.retry ?? this.retry;
    let retries = 0;
    try {
      if (!opts.idempotent) return await this.once<T>(opts);
      return await withRetry(
        () => this.once<T>(opts),
        (err) => (err instanceof TransportError || err instanceof ClusterError) && err.transient,
        policy,
        {
          signal: opts.signal,
          onRetry: (err, attempt, delayMs) => {
            retries++;
            clusterNotice(
              retryNotice(
                err as TransportError | ClusterError,
                this.failure,
                attempt + 2,
                delayMs,
                policy.budgetMs,
              ),
            );
          },
        },
      );
    } catch (err) {
      if (err instanceof TransportError || err instanceof ClusterError)
        err.message = explainFailure(err, this.failure, retries, Date.now() - started);
      throw err;
    }
  }

  private async once<T>(opts: RequestOptions): Promise<Response<T>> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const path = `${this.basePath}${opts.path}${qs.size ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { ...this.headers };
    let body: string | Buffer | undefined;
    if (opts.body !== undefined) {
      if (opts.ndjson) {
        body = opts.body as string | Buffer;
        headers['content-type'] = 'application/x-ndjson';
      } else {
        body = JSON.stringify(opts.body);
        headers['content-type'] = 'application/json';
      }
      if (opts.gzip) {
        body = await gzipAsync(body);
        headers['content-encoding'] = 'gzip';
      }
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(`${this.origin}${path}`, {
        method: opts.method,
        headers,
        body,
        dispatcher: this.dispatcher,
        signal: opts.signal,
      });
    } catch (err) {
      // Stopped by its caller (Ctrl-C, a lost seat): that reason, not a network failure to retry and announce.
      if (opts.signal?.aborted) throw opts.signal.reason;
      type NetError = Error & { code?: string; address?: string; port?: number };
      const e = err as NetError & { cause?: NetError };
      const code = e.code ?? e.cause?.code;
      const message = this.scrub(e.cause?.message ? `${e.message}: ${e.cause.message}` : e.message);
      const at = e.address ?? e.cause?.address;
      const port = e.port ?? e.cause?.port;
      const address = at ? (port !== undefined ? `${at}:${port}` : at) : undefined;
      throw new TransportError(message, code, opts.method, opts.path, address);
    }
    const ok = opts.okStatuses === 'all' || opts.okStatuses?.includes(res.statusCode);
    if (opts.raw && opts.method !== 'HEAD') {
      // Bytes, not a string: a page of documents as one JS string is garbage only a full collection frees.
      const bytes = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode < 400 || ok)
        return { status: res.statusCode, body: bytes as T, headers: res.headers };
      return this.answer<T>(opts, res, bytes.toString('utf8'), ok);
    }
    const text = opts.method === 'HEAD' ? '' : await res.body.text();
    return this.answer<T>(opts, res, text, ok);
  }

  /** A JSON answer, or the cluster's refusal as a ClusterError. */
  private answer<T>(
    opts: RequestOptions,
    res: Dispatcher.ResponseData,
    text: string,
    ok: boolean | undefined,
  ): Response<T> {
    let parsed: unknown = text;
    if (text.length > 0 && (text[0] === '{' || text[0] === '[')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (res.statusCode >= 400 && !ok) {
      const { type, reason, rootCause } = parseErrorBody(parsed);
      throw new ClusterError(res.statusCode, type, this.scrub(reason), opts.method, opts.path, rootCause);
    }
    return { status: res.statusCode, body: parsed as T, headers: res.headers };
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

/** SHA-256 fingerprint of a PEM certificate, as printed by `openssl x509 -fingerprint -sha256` without colons. */
export function certificateFingerprint(pem: string | Buffer): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

/** The Authorization header for these credentials, with every form of the secret it carries (for redaction). */
export function authorizationOf(auth: Auth | undefined): { header: string; secrets: string[] } | undefined {
  if (auth && 'username' in auth) {
    const token = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    return { header: `Basic ${token}`, secrets: [auth.password, token] };
  }
  if (auth && 'apiKey' in auth) return { header: `ApiKey ${auth.apiKey}`, secrets: [auth.apiKey] };
  if (auth && 'bearer' in auth) return { header: `Bearer ${auth.bearer}`, secrets: [auth.bearer] };
  return undefined;
}
