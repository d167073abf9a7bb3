/**
 * The write proxy: the application talks to it instead of the cluster. A write that may change the migrated
 * index stays inside the write gate until the journal durably holds every id it touched (or a reconcile marker
 * when that cannot be known); everything else is streamed through untouched, bodies never buffered or parsed. A
 * hold closes the gate at the switch (writes wait, none is refused) and is granted only once every write inside
 * it is journaled, so no switch can pass a write the journal does not hold.
 *
 * The client gets the cluster's answer before the journal's disk flush, not after it: the flush (~1 ms here,
 * more on a busy disk) is off the application's path. The window this opens, an answered write whose entry a
 * crash lost, is closed where crashes are already handled: a proxy that ends without a clean stop makes the
 * runner reconcile every id before it may switch (its next life journals a marker; a proxy that never comes back
 * is found by the runner as a journal life without a stop and without a live proxy).
 *
 * A journal that cannot be made durable stops the proxy: no later write is taken, and the life it leaves open
 * asks for that reconcile.
 *
 * Logs carry method, index, status and ms: never a body, a header value, a query string or a credential.
 */

import { randomBytes } from 'node:crypto';
import { once as eventOnce } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { type Dispatcher, Pool } from 'undici';
import { redactUrl } from '../cluster/redact.js';
import { sleep } from '../cluster/retry.js';
import { type TlsOptions, tlsConnect } from '../cluster/transport.js';
import { armed, failpoint } from '../ops/failpoints.js';
import {
  type BulkAction,
  BulkBodyUnreadable,
  bulkItems,
  parseBulkActions,
  rewriteBulkIndex,
} from './bulk-actions.js';
import {
  type ByQueryWrite,
  classify,
  type DocWrite,
  migratedNames,
  namesMigrated,
  type RequestFacts,
} from './classify.js';
import type { HoldRecord, ProxyInfo, ProxyStats, ProxyStatus } from './control.js';
import { startControlServer } from './control-server.js';
import {
  clientResponseHeaders,
  decodedBody,
  encodedBody,
  esErrorBody,
  headerValue,
  upstreamRequestHeaders,
} from './http-forward.js';
import { type EntryBody, JournalFailed, type JournalWriter } from './journal.js';
import {
  bulkEntries,
  byQueryEntries,
  docEntries,
  type Outcome,
  unreadableBulkEntries,
} from './journal-entries.js';
import { rewriteNodesHttp } from './sniff.js';
import { forgetSwitch, readSwitch, type SwitchRecord, writeSwitch } from './switch-state.js';
import { blockedItems, blockRetryDelayMs, refusedByWriteBlock } from './write-block.js';
import { HoldConflict, WriteGate } from './write-gate.js';

export interface ProxyOptions {
  /** the cluster; no credentials: each client's own Authorization header is forwarded unchanged */
  upstream: { url: string; tls?: TlsOptions };
  /**
   * the target cluster, when the application moves there at the switch: every request goes there once a runner
   * releases a hold with `cluster: 'target'`. `authorization`: the header that replaces the client's own there
   * (absent: the client's is forwarded)
   */
  moveTo?: { url: string; tls?: TlsOptions; authorization?: string };
  /** HOST:PORT of the data listener (port 0: any free port) */
  listen: string;
  /** HOST:PORT of the control listener */
  control: string;
  migrated: {
    /** the concrete index being migrated */
    sourceIndex: string;
    /** every other name the application may use for it (spec source.index, aliases.write, aliases.read) */
    names: string[];
  };
  journal: JournalWriter;
  /** what kind of journal `journal` is (for ProxyInfo) */
  journalKind?: 'file' | 'nats';
  token: string;
  holdBudgetDefaultMs: number;
  concreteNames: 'report' | 'route';
  /** serve HTTPS on the data listener */
  tls?: { certFile: string; keyFile: string };
  /** announce this proxy (file mode: proxy.json; nats: heartbeats), once both listeners are up */
  register?: (info: ProxyInfo) => Promise<void>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  id?: string;
  /** where a switch the runner reported is kept, so a restarted proxy still knows it */
  switchStatePath?: string;
  /** where the journal is, for people (a file path, a NATS stream) */
  journalLabel?: string;
  /** sockets to the upstream (default 256: a thousand clients must not queue behind a small pool) */
  connections?: number;
  /**
   * how long a write refused by the source's write block (the switch's fence) is retried before the refusal is
   * passed on: longer than any fence can last (write-block.ts)
   */
  blockRetryMs?: number;
}

export interface RunningProxy {
  info: ProxyInfo;
  dataUrl: string;
  controlUrl: string;
  /** where the journal is, for people (a file path, a NATS stream) */
  journalWhere: string;
  stats(): ProxyStats;
  status(): ProxyStatus;
  /** resolves once every write answered so far is journaled (what a hold waits for, without holding) */
  settled(): Promise<void>;
  /** stop accepting, finish what is in flight, release a hold, close the journal */
  close(): Promise<void>;
  /** resolves when the proxy stopped: with the fatal error when the journal failed */
  closed: Promise<Error | undefined>;
}

export function parseHostPort(s: string, what: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65_535)
    throw new TypeError(`${what} must be HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: s.slice(0, i), port };
}

function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** A by-query that returns a task: its changes go on after the answer. */
function isAsync(search: string): boolean {
  return new URLSearchParams(search).get('wait_for_completion') === 'false';
}

/** Read a whole stream (a migrated write's body or its answer: both needed whole to journal). */
async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

/** A migrated write on its way: what it is, its body as received, and what the journal needs from it. */
interface MigratedWrite {
  method: string;
  /** path without query, as received (percent-encoded) */
  path: string;
  /** `?...` or '' */
  search: string;
  facts: RequestFacts;
  /** bytes as the client sent them (possibly compressed) */
  body: Buffer;
  /** bulk: the actions, or why they could not be read */
  actions?: BulkAction[];
  unreadable?: string;
}

export async function startProxy(o: ProxyOptions): Promise<RunningProxy> {
  const id = o.id ?? `proxy-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const sourceIndex = o.migrated.sourceIndex;
  const names = migratedNames(sourceIndex, o.migrated.names);
  const upstreamOf = (u: { url: string; tls?: TlsOptions; authorization?: string }) => {
    const url = new URL(u.url);
    url.username = '';
    url.password = '';
    return {
      basePath: url.pathname.replace(/\/+$/, ''),
      authorization: u.authorization,
      pool: new Pool(url.origin, {
        connections: o.connections ?? 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        // The client decides how long it waits (a by-query may run for minutes); the proxy adds no deadline.
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: tlsConnect(u.tls),
      }),
    };
  };
  const sourceUp = upstreamOf(o.upstream);
  const targetUp = o.moveTo ? upstreamOf(o.moveTo) : undefined;
  /** where requests go now: the source cluster, or the target once the application moved there */
  let up = sourceUp;
  let moveCheck: string | undefined;

  const stats: ProxyStats = {
    requests: 0,
    journaledDocs: 0,
    reconcileMarkers: 0,
    heldRequests: 0,
    longestHoldWaitMs: 0,
    holds: 0,
    concreteNameWrites: 0,
    routedConcreteNameWrites: 0,
    optimisticConcurrencyWrites: 0,
    sniffRequests: 0,
    proxyErrors: 0,
    blockRetried: 0,
  };
  let switched: SwitchRecord | undefined = o.switchStatePath ? readSwitch(o.switchStatePath) : undefined;
  if (switched && switched.sourceIndex !== sourceIndex) switched = undefined;
  // A proxy started again after the application moved stays on the target cluster.
  if (switched?.cluster === 'target' && targetUp) up = targetUp;
  let failed: Error | undefined;
  let closing: Promise<void> | undefined;
  let resolveClosed!: (e: Error | undefined) => void;
  const closed = new Promise<Error | undefined>((r) => {
    resolveClosed = r;
  });
  /** requests on the data port not yet answered (graceful close waits for them) */
  let active = 0;
  let idle: (() => void) | undefined;
  /** the product header the cluster sends, echoed on the proxy's own errors so clients accept them */
  let product: string | undefined;
  const once = new Set<string>();
  let concreteWarnedAt = 0;
  let concreteSinceWarn = 0;

  const gate = new WriteGate(
    () => o.journal.end,
    (r: HoldRecord) =>
      o.log('hold ended', {
        holdId: r.holdId,
        releasedBy: r.releasedBy,
        heldRequests: r.heldRequests,
        longestWaitMs: r.longestWaitMs,
        ms: r.durationMs,
      }),
  );

  function logOnce(key: string, msg: string, fields?: Record<string, unknown>): void {
    if (once.has(key)) return;
    once.add(key);
    o.log(msg, fields);
  }

  function sendError(res: ServerResponse, status: number, type: string, reason: string): void {
    stats.proxyErrors++;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = esErrorBody(status, type, reason);
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': body.length,
    };
    if (product) headers['x-elastic-product'] = product;
    res.writeHead(status, headers);
    res.end(body);
  }

  function noteProduct(headers: Record<string, string | string[] | undefined>): void {
    const p = headerValue(headers['x-elastic-product']);
    if (p) product = p;
  }

  /** The concrete index a marker concerns: the new one for names that follow the aliases after the switch. */
  function concerned(named: string): string {
    return switched && named !== sourceIndex ? switched.switchedTo : sourceIndex;
  }

  async function journal(entries: EntryBody[]): Promise<void> {
    if (entries.length === 0) return;
    await o.journal.append(entries);
    for (const e of entries)
      if (e.kind === 'doc') stats.journaledDocs++;
      else if (e.kind === 'reconcile') stats.reconcileMarkers++;
  }

  /** Journal a write already answered; a failure stops the proxy (its unclosed journal then asks for a reconcile). */
  async function journalAfterAnswer(entries: EntryBody[]): Promise<void> {
    try {
      await journal(entries);
    } catch (e) {
      if (e instanceof JournalFailed) journalFailed(e);
      else journalFailed(new JournalFailed(`journal append failed: ${(e as Error).message}`));
    }
  }

  function journalFailed(e: Error): void {
    if (failed) return;
    failed = e;
    o.log('journal failed: the proxy stops taking writes', { error: e.message });
    void close(e);
  }

  function forward(
    method: string,
    pathAndQuery: string,
    headers: Record<string, string | string[]>,
    body: Dispatcher.DispatchOptions['body'],
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    const to = up;
    return to.pool.request({
      method: method as Dispatcher.HttpMethod,
      path: to.basePath + pathAndQuery,
      headers: to.authorization ? { ...headers, authorization: to.authorization } : headers,
      body,
      signal,
    });
  }

  function upstreamFailed(res: ServerResponse, method: string, index: string | undefined, e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).name;
    o.log('upstream unreachable', { method, index, status: 502, error: code });
    sendError(res, 502, 'proxy_upstream_error', `the write proxy could not reach the cluster (${code})`);
  }

  /** Reads, and writes that cannot touch the migrated index: both directions streamed as they are. */
  async function stream(req: IncomingMessage, res: ServerResponse, body?: Buffer): Promise<void> {
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    const hasBody =
      body !== undefined || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'];
    let r: Dispatcher.ResponseData;
    try {
      r = await forward(
        req.method!,
        req.url!,
        upstreamRequestHeaders(req.headers, body ? ['content-length'] : []),
        body ?? (hasBody ? req : undefined),
        ac.signal,
      );
    } catch (e) {
      if (!ac.signal.aborted) upstreamFailed(res, req.method!, undefined, e);
      return;
    }
    noteProduct(r.headers);
    res.writeHead(r.statusCode, clientResponseHeaders(r.headers));
    try {
      await pipeline(r.body, res);
    } catch {
      // The client went away, or the cluster cut the answer: either way the connection says so.
    }
  }

  async function sniff(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.sniffRequests++;
    logOnce(
      'sniff',
      'a client sniffs the cluster nodes: answered with the proxy address so it stays on the proxy',
    );
    let r: Dispatcher.ResponseData;
    let text: Buffer;
    try {
      r = await forward(
        req.method!,
        req.url!,
        upstreamRequestHeaders(req.headers, ['accept-encoding']),
        undefined,
      );
      text = await readAll(r.body);
    } catch (e) {
      upstreamFailed(res, req.method!, undefined, e);
      return;
    }
    noteProduct(r.headers);
    let out = text;
    if (r.statusCode === 200) {
      try {
        const body = JSON.parse(text.toString('utf8'));
        out = Buffer.from(JSON.stringify(rewriteNodesHttp(body, publishAddress).body));
      } catch {
        // Not JSON (filter_path=... or a format param): passed as it came.
      }
    }
    const headers = clientResponseHeaders(r.headers, ['content-length', 'content-encoding']);
    headers['content-length'] = out.length;
    res.writeHead(r.statusCode, headers);
    res.end(out);
  }

  /** After the switch, a write naming the old index by its concrete name: counted, then routed or reported. */
  function concreteName(w: MigratedWrite, count: number): void {
    if (count === 0 || !switched) return;
    stats.concreteNameWrites += count;
    if (o.concreteNames === 'route') {
      stats.routedConcreteNameWrites += count;
      return;
    }
    concreteSinceWarn += count;
    const now = Date.now();
    if (now - concreteWarnedAt < 10_000) return;
    o.log(
      `writes name the old index ${sourceIndex} by its concrete name after the switch to ${switched.switchedTo}: they land in the old index; change the writer to use the alias (or set proxy.concreteNames: route)`,
      { method: w.method, index: sourceIndex, writes: concreteSinceWarn },
    );
    concreteWarnedAt = now;
    concreteSinceWarn = 0;
  }

  /** The path with its first segment (the index expression) renamed from the old concrete index to the new. */
  function routedPath(path: string, to: string): string {
    const segs = path.split('/');
    const i = segs.findIndex((s) => s !== '');
    const parts = decodeURIComponent(segs[i]!).split(',');
    segs[i] = parts.map((p) => encodeURIComponent(p.trim() === sourceIndex ? to : p)).join(',');
    return segs.join('/');
  }

  /** Apply the concrete-name rule; returns the path and body to forward. */
  async function afterSwitch(
    w: MigratedWrite,
    decoded: Buffer | undefined,
  ): Promise<{ path: string; body: Buffer }> {
    const c = w.facts.classified;
    let path = w.path;
    let body = w.body;
    if (!switched) return { path, body };
    const to = switched.switchedTo;
    // On the target cluster the old index does not exist: a write naming it would create it there.
    const route = o.concreteNames === 'route' || switched.cluster === 'target';
    if (c.kind === 'doc' && c.index === sourceIndex) {
      concreteName(w, 1);
      if (route) path = routedPath(path, to);
    } else if (c.kind === 'by-query' && c.index.split(',').some((p) => p.trim() === sourceIndex)) {
      concreteName(w, 1);
      if (route) path = routedPath(path, to);
    } else if (c.kind === 'bulk' && w.actions && decoded) {
      const n = w.actions.filter((a) => a.index === sourceIndex).length;
      concreteName(w, n);
      if (route && n > 0) {
        if (c.defaultIndex === sourceIndex) path = routedPath(path, to);
        const { body: rewritten, rewritten: lines } = rewriteBulkIndex(decoded, sourceIndex, to);
        if (lines > 0) body = rewritten;
      }
    }
    return { path, body };
  }

  /** A write that may change the migrated index: gate, forward, read the answer, journal, then answer. */
  async function migratedWrite(req: IncomingMessage, res: ServerResponse, w: MigratedWrite): Promise<void> {
    if (failed) return sendError(res, 503, 'journal_failed', failed.message);
    const c = w.facts.classified;
    const named =
      c.kind === 'doc' || c.kind === 'by-query'
        ? c.index
        : (c.kind === 'bulk' && c.defaultIndex) || sourceIndex;
    const optimistic =
      (c.kind === 'doc' && c.optimistic) || (w.actions?.some((a) => a.optimistic && isMigrated(a)) ?? false);
    if (optimistic) {
      stats.optimisticConcurrencyWrites++;
      logOnce(
        'optimistic',
        'writes to the migrated index use optimistic concurrency (if_seq_no/if_primary_term): those values come from the old index and will be refused (409) on the new one; re-read documents before writing after the switch, or drop if_seq_no for the cutover',
        { method: w.method, index: named },
      );
    }
    const started = Date.now();
    await gate.enter();
    try {
      // The journal may have failed while this write waited at the gate.
      const meanwhile = failed as Error | undefined;
      if (meanwhile) return sendError(res, 503, 'journal_failed', meanwhile.message);
      const encoding = headerValue(req.headers['content-encoding']);
      let decoded: Buffer | undefined;
      if (c.kind === 'bulk' && w.actions) decoded = await decodedBody(w.body, encoding);
      let { path, body } = await afterSwitch(w, decoded);
      // The bulk as sent, decoded: its refused items may be sent again on their own (see below).
      const plainBulk = body !== w.body ? body : decoded;
      // A rewritten bulk goes out encoded as the client sent it.
      if (body !== w.body) body = await encodedBody(body, encoding);
      const headers = upstreamRequestHeaders(req.headers, ['content-length']);
      let answer: Buffer;
      let r: Dispatcher.ResponseData;
      // Read once: a bulk answer can be large, and both the block check and the journal entries need it.
      let parsed: unknown;
      let rawAnswer: Buffer | undefined;
      try {
        const giveUpAt = Date.now() + (o.blockRetryMs ?? 0);
        for (let attempt = 0; ; attempt++) {
          r = await forward(w.method, path + w.search, headers, body);
          answer = await readAll(r.body);
          rawAnswer = answer;
          parsed = await parsedAnswer(r, answer);
          if (r.statusCode !== 403 && r.statusCode !== 200) break;
          if (Date.now() >= giveUpAt || !refusedByWriteBlock(r.statusCode, parsed)) break;
          // Nothing was written: the block refuses before any document is touched. Wait for the fence to lift.
          if (attempt === 0) stats.blockRetried++;
          logOnce(
            'write-block',
            'writes to the migrated index met a write block (the switch fences writers that bypass the proxy): retried until it lifts, not refused',
            {
              index: named,
            },
          );
          await sleep(blockRetryDelayMs(attempt));
        }
        if (r.statusCode === 200 && plainBulk && w.actions) {
          const merged = await retryBlockedItems(w, path, plainBulk, parsed, giveUpAt, named, req.headers);
          if (merged) answer = merged;
        }
      } catch (e) {
        upstreamFailed(res, w.method, named, e);
        // Refused connection: nothing reached the cluster. Anything else: the write may have landed.
        if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED')
          await journalAfterAnswer(entriesFor(w, { status: 0 }, named));
        return;
      }
      noteProduct(r.headers);
      // An answer the proxy cannot read: known ids are still journaled, unknown ones get a marker.
      const outcome: Outcome = { status: r.statusCode, body: parsed };
      if (r.statusCode >= 500)
        o.log('the cluster refused a write', {
          method: w.method,
          index: named,
          status: r.statusCode,
          ms: Date.now() - started,
        });
      // The client has its answer before the disk flush (see the module comment: the write stays inside the
      // gate until its entry is durable, so no hold, and so no switch, passes it).
      // An answer rebuilt from retried items is plain JSON of its own length.
      res.writeHead(
        r.statusCode,
        clientResponseHeaders(r.headers, answer === rawAnswer ? [] : ['content-encoding', 'content-length']),
      );
      res.end(answer);
      if (armed('proxy.after-answer')) {
        // The crash between an answer the client has and its journal entry (tests of the crash rule).
        await eventOnce(res, 'finish');
        failpoint('proxy.after-answer');
      }
      await journalAfterAnswer(entriesFor(w, outcome, named));
    } finally {
      gate.leave();
    }
  }

  /**
   * A bulk refused in part by the write block (some shards met it, others not: a block being set or lifted) has
   * its refused items, which changed nothing, sent again on their own until the block lifts or the retry window
   * ends; their answers take their places in `parsed` (changed in place). Returns the rebuilt answer, or
   * undefined when nothing was retried.
   */
  async function retryBlockedItems(
    w: MigratedWrite,
    path: string,
    plainBulk: Buffer,
    parsed: unknown,
    giveUpAt: number,
    named: string,
    reqHeaders: IncomingMessage['headers'],
  ): Promise<Buffer | undefined> {
    let blocked = blockedItems(parsed);
    const items = (parsed as { items: unknown[] }).items;
    if (blocked.length === 0 || blocked.length === items.length) return undefined;
    const headers = upstreamRequestHeaders(reqHeaders, ['content-length', 'content-encoding']);
    let changed = false;
    for (let attempt = 0; blocked.length > 0 && Date.now() < giveUpAt; attempt++) {
      if (attempt === 0) stats.blockRetried++;
      logOnce(
        'write-block-partial',
        'a bulk to the migrated index was refused in part by a write block (the switch fences writers that bypass the proxy): its refused items are retried until it lifts, not refused',
        { index: named },
      );
      await sleep(blockRetryDelayMs(attempt));
      const again = await forward(w.method, path + w.search, headers, bulkItems(plainBulk, blocked));
      const againParsed = await parsedAnswer(again, await readAll(again.body));
      if (again.statusCode === 403 && refusedByWriteBlock(403, againParsed)) continue;
      const got = (againParsed as { items?: unknown[] } | undefined)?.items;
      if (again.statusCode !== 200 || !Array.isArray(got) || got.length !== blocked.length) break;
      blocked.forEach((pos, k) => {
        items[pos] = got[k];
      });
      changed = true;
      blocked = blockedItems(againParsed).map((k) => blocked[k]!);
    }
    if (!changed) return undefined;
    const p = parsed as { errors?: boolean };
    p.errors = items.some(
      (it) =>
        ((Object.values((it ?? {}) as object)[0] as { status?: number } | undefined)?.status ?? 0) >= 300,
    );
    return Buffer.from(JSON.stringify(parsed));
  }

  /** `dest.index` of a `_reindex` body, or undefined when it cannot be read */
  function reindexDest(body: Buffer | undefined): string | undefined {
    try {
      const d = (JSON.parse(body?.toString('utf8') ?? '') as { dest?: { index?: unknown } }).dest?.index;
      return typeof d === 'string' ? d : undefined;
    } catch {
      return undefined;
    }
  }

  async function parsedAnswer(r: Dispatcher.ResponseData, answer: Buffer): Promise<unknown> {
    try {
      return JSON.parse(
        (await decodedBody(answer, headerValue(r.headers['content-encoding']))).toString('utf8'),
      );
    } catch {
      return undefined;
    }
  }

  function isMigrated(a: BulkAction): boolean {
    return a.index !== undefined && names.has(a.index);
  }

  function entriesFor(w: MigratedWrite, out: Outcome, named: string): EntryBody[] {
    const c = w.facts.classified;
    if (c.kind === 'doc') return docEntries(c as DocWrite, out, concerned(named));
    if (c.kind === 'by-query')
      return byQueryEntries(c as ByQueryWrite, out, concerned(named), isAsync(w.search));
    if (w.actions) return bulkEntries(w.actions, isMigrated, out, concerned(named));
    return unreadableBulkEntries(w.unreadable ?? 'unreadable', out, concerned(named));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q);
    const facts = classify(req.method ?? 'GET', path, search, names);
    const c = facts.classified;
    if (c.kind === 'sniff') return sniff(req, res);
    if (c.kind === 'read') return stream(req, res);
    if (failed) return sendError(res, 503, 'journal_failed', failed.message);
    if (c.kind === 'by-query' && c.destInBody) {
      const body = await readAll(req);
      const dest = reindexDest(
        await decodedBody(body, headerValue(req.headers['content-encoding'])).catch(() => undefined),
      );
      // A body the proxy cannot read may still write into the migrated index: journaled as if it did.
      c.index = dest ?? sourceIndex;
      c.migrated = dest === undefined || namesMigrated(dest, names);
      if (!c.migrated) return stream(req, res, body);
      return migratedWrite(req, res, { method: req.method!, path, search, facts, body });
    }
    if (c.kind === 'other' || ((c.kind === 'doc' || c.kind === 'by-query') && !c.migrated))
      return stream(req, res);
    const body = await readAll(req);
    const w: MigratedWrite = { method: req.method!, path, search, facts, body };
    if (c.kind === 'bulk') {
      try {
        w.actions = parseBulkActions(await decodedBody(body, headerValue(req.headers['content-encoding'])), {
          index: c.defaultIndex,
          routing: c.defaultRouting,
        });
      } catch (e) {
        w.unreadable = e instanceof BulkBodyUnreadable ? e.message : 'the body could not be decompressed';
      }
      // A bulk that surely names only other indices goes on as it came.
      if (
        w.actions &&
        !w.actions.some(isMigrated) &&
        !(switched && w.actions.some((a) => a.index === sourceIndex))
      )
        return stream(req, res, body);
    }
    return migratedWrite(req, res, w);
  }

  const dataServer = o.tls
    ? createHttpsServer({ cert: readFileSync(o.tls.certFile), key: readFileSync(o.tls.keyFile) })
    : createHttpServer();
  dataServer.keepAliveTimeout = 65_000;
  dataServer.requestTimeout = 0;
  dataServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // A request is done when its answer is out and its handler returned: a write is journaled after its answer,
    // and a closing proxy must not close the journal under it.
    active++;
    let parts = 2;
    const done = () => {
      if (--parts === 0 && --active === 0) idle?.();
    };
    res.on('close', () => {
      stats.requests++;
      done();
    });
    handle(req, res)
      .catch((e: unknown) => {
        o.log('request failed in the proxy', { method: req.method, error: (e as Error).name });
        sendError(res, 500, 'proxy_error', 'the write proxy failed on this request');
      })
      .finally(done);
  });

  const listen = parseHostPort(o.listen, 'proxy.listen');
  const dataAddr = await listenOn(dataServer, listen.host, listen.port);
  const shownHost = listen.host === '0.0.0.0' || listen.host === '::' ? hostname() : listen.host;
  const publishAddress = `${shownHost}:${dataAddr.port}`;
  const dataUrl = `${o.tls ? 'https' : 'http'}://${urlHost(shownHost)}:${dataAddr.port}`;

  const info: ProxyInfo = {
    id,
    pid: process.pid,
    host: hostname(),
    control: '',
    listen: dataUrl,
    startedAt: new Date().toISOString(),
    journal: o.journalKind ?? 'file',
  };

  function status(): ProxyStatus {
    const s: ProxyStatus = {
      ...info,
      journalEnd: o.journal.end,
      stats: statsNow(),
      upstream: up === sourceUp ? 'source' : 'target',
    };
    if (o.moveTo)
      s.moveTo = {
        url: redactUrl(o.moveTo.url),
        auth: o.moveTo.authorization ? 'mapped' : 'forward',
        ...(moveCheck ? { check: moveCheck } : {}),
      };
    const holding = gate.state();
    if (holding) s.holding = holding;
    if (switched) s.switchedTo = switched.switchedTo;
    return s;
  }

  function statsNow(): ProxyStats {
    return { ...stats, ...gate.stats };
  }

  let control: Awaited<ReturnType<typeof startControlServer>>;
  try {
    control = await startControlServer({
      address: parseHostPort(o.control, 'proxy.control'),
      token: o.token,
      status,
      hold: async (holdId, budgetMs) => {
        if (failed) throw failed;
        const granted = await gate.hold(holdId, budgetMs ?? o.holdBudgetDefaultMs);
        // A write that left the gate because its journal append failed is not in the journal's end: this
        // proxy's hold proves nothing (the runner finds its open life and reconciles instead).
        const meanwhile = failed as Error | undefined;
        if (meanwhile) throw meanwhile;
        return granted;
      },
      release: ({ holdId, switchedTo, cluster, rolledBack }) => {
        if (rolledBack) {
          // The aliases are back on the old index: this proxy is as it was before the switch, also when it is
          // started again (the record is gone), and every request goes to the source cluster again.
          if (switched) o.log('switch undone', { index: sourceIndex, was: switched.switchedTo });
          switched = undefined;
          if (o.switchStatePath) forgetSwitch(o.switchStatePath);
          up = sourceUp;
          return gate.release(holdId);
        }
        if (cluster === 'target' && !targetUp)
          throw new HoldConflict(
            'this proxy was started without a target cluster to move the application to',
          );
        // The aliases moved whatever became of the hold: a switch reported is remembered either way.
        if (
          switchedTo !== undefined &&
          (switchedTo !== switched?.switchedTo || cluster !== switched?.cluster)
        ) {
          switched = {
            sourceIndex,
            switchedTo,
            at: new Date().toISOString(),
            ...(cluster ? { cluster } : {}),
          };
          if (o.switchStatePath) writeSwitch(o.switchStatePath, switched);
          o.log('switch recorded', { index: sourceIndex, switchedTo, cluster: cluster ?? 'source' });
        }
        // Before the queue is released: the held writes are the first requests to go to the target cluster.
        if (cluster === 'target' && targetUp) up = targetUp;
        return gate.release(holdId, switchedTo);
      },
      log: o.log,
    });
  } catch (e) {
    dataServer.close();
    await Promise.all([sourceUp.pool.close(), targetUp?.pool.close()]);
    throw e;
  }
  info.control = control.url;

  // Whether the target cluster answers, with the credentials the proxy will use there: `plan` reads it from the
  // status before anything moves. With forwarded credentials only the application's own header can tell.
  // The root endpoint first; a server built without it (Elasticsearch's minimal distributions answer `GET /`
  // with 405 or 404) is asked for its health instead, which every distribution serves.
  async function checkMoveTo(): Promise<void> {
    if (!targetUp) return;
    const ask = async (path: string) => {
      const r = await targetUp.pool.request({
        method: 'GET',
        path: `${targetUp.basePath}${path}`,
        headers: targetUp.authorization ? { authorization: targetUp.authorization } : {},
      });
      await r.body.dump();
      return r.statusCode;
    };
    try {
      let status = await ask('/');
      if (status === 405 || status === 404 || status === 400)
        status = await ask('/_cluster/health?local=true');
      moveCheck = status === 200 ? 'ok' : `HTTP ${status}`;
    } catch (e) {
      moveCheck = `unreachable (${(e as NodeJS.ErrnoException).code ?? (e as Error).name})`;
    }
  }
  await checkMoveTo();
  const moveCheckTimer = targetUp ? setInterval(() => void checkMoveTo(), 30_000) : undefined;
  moveCheckTimer?.unref();

  async function close(err?: Error): Promise<void> {
    closing ??= (async () => {
      clearInterval(moveCheckTimer);
      dataServer.close();
      control.server.close();
      gate.shutdown();
      if (active > 0)
        await new Promise<void>((r) => {
          idle = r;
          // A long read (a scroll, a by-query) does not keep the proxy up forever.
          setTimeout(r, 30_000).unref();
        });
      dataServer.closeAllConnections();
      control.server.closeAllConnections();
      await Promise.all([sourceUp.pool.close(), targetUp?.pool.close()]).catch(() => undefined);
      await o.journal.close().catch(() => undefined);
      o.log('proxy stopped', err ? { error: err.message } : {});
      resolveClosed(err);
    })();
    return closing;
  }

  if (o.register) {
    try {
      await o.register(info);
    } catch (e) {
      await close();
      throw e;
    }
  }
  o.log('proxy listening', { listen: dataUrl, control: control.url, index: sourceIndex });

  return {
    info,
    dataUrl,
    controlUrl: control.url,
    journalWhere: o.journalLabel ?? info.journal,
    stats: statsNow,
    status,
    settled: () => gate.settled(),
    close: () => close(),
    closed,
  };
}
