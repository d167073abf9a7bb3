/**
 * The runner talks to each write proxy on its control port, never on the data port the application uses: the
 * application can neither hold nor release writes. Every control request carries the token the proxy keeps in
 * the state directory (mode 0600); a request without it is refused before anything else is read.
 *
 * A hold is a promise with a deadline the proxy keeps by itself: if the runner dies while writes are held, the
 * proxy releases them when the deadline passes, so no write waits for a human.
 */
import { hostname } from 'node:os';
import { request } from 'undici';
import { readJson, writeFileAtomic } from '../store/atomic-file.js';
import { CutoverError, EXIT } from '../store/errors.js';
import { bearerMatches, readOrCreateToken, readToken } from '../store/secret-token.js';
import type { JournalPos } from './journal.js';

/** What a proxy registers about itself (file: proxy.json in the state directory; nats: its heartbeats). */
export interface ProxyInfo {
  id: string;
  pid: number;
  host: string;
  /** http://host:port of its control listener */
  control: string;
  /** the data address the application uses */
  listen: string;
  startedAt: string;
  journal: 'file' | 'nats';
}

export interface ProxyStats {
  /** requests answered, all kinds */
  requests: number;
  /** documents journaled (bulk items count one each) */
  journaledDocs: number;
  /** reconcile markers journaled (by-query, unreadable bodies, hidden bulk items) */
  reconcileMarkers: number;
  /** requests queued by holds, and the longest any of them waited */
  heldRequests: number;
  longestHoldWaitMs: number;
  holds: number;
  /** writes after the switch that named the old index by its concrete name (routed or not, see concreteNames) */
  concreteNameWrites: number;
  routedConcreteNameWrites: number;
  /** writes to the migrated index with if_seq_no/if_primary_term: meaningless on the new index */
  optimisticConcurrencyWrites: number;
  /** `_nodes` requests answered with the proxy's own address (client sniffing) */
  sniffRequests: number;
  /** requests the proxy answered with an error of its own (upstream unreachable, journal failed) */
  proxyErrors: number;
  /** writes refused by the source's write block (the switch's fence) and sent again until it lifted */
  blockRetried: number;
}

export interface HoldState {
  holdId: string;
  since: string;
  deadlineAt: string;
  queued: number;
}

export interface ProxyStatus extends ProxyInfo {
  holding?: HoldState;
  /** set once a runner released a hold after moving the aliases */
  switchedTo?: string;
  /** where requests go: the source cluster, or the target cluster once the application moved there */
  upstream: 'source' | 'target';
  /** the target cluster the application moves to at the switch (proxy.moveApplication), and whether it answers */
  moveTo?: { url: string; auth: 'forward' | 'mapped'; check?: string };
  journalEnd: JournalPos;
  stats: ProxyStats;
}

export interface HoldRequest {
  holdId: string;
  budgetMs: number;
}

/** Granted once every write the proxy had forwarded to the migrated index has returned and is journaled. */
export interface HoldGranted {
  holdId: string;
  /** the journal's end when the hold took effect: every held-off write comes after it */
  journalEnd: JournalPos;
  heldAt: string;
  deadlineAt: string;
  /** ms spent waiting for in-flight writes before the hold was granted */
  inflightWaitMs: number;
}

export interface ReleaseRequest {
  holdId: string;
  /** the aliases moved to this index: queued writes go on through the aliases, concrete old names per concreteNames */
  switchedTo?: string;
  /** the aliases moved to another cluster: from now on every request goes there */
  cluster?: 'target';
  /**
   * a rollback moved the aliases back to the old index (under this hold): the proxy forgets the switch, and
   * requests go to the source cluster again; queued writes land on the old index
   */
  rolledBack?: true;
}

export interface HoldRecord {
  holdId: string;
  heldRequests: number;
  longestWaitMs: number;
  durationMs: number;
  releasedBy: 'runner' | 'deadline' | 'shutdown';
  switchedTo?: string;
}

export class ProxyUnavailable extends CutoverError {
  override readonly name: string = 'ProxyUnavailable';
  readonly exitCode = EXIT.cluster;
}

/** 409 from a proxy: another hold is active (`holding`), or the hold named has ended (`record` says how). */
export class HoldRefused extends ProxyUnavailable {
  override readonly name: string = 'HoldRefused';
  constructor(
    message: string,
    readonly holding?: HoldState,
    readonly record?: HoldRecord,
  ) {
    super(message);
  }
}

/** The control token: created once (random, 0600), then read by the proxy and the runner alike. */
export function controlToken(path: string, create: boolean): string {
  if (create) return readOrCreateToken(path);
  const token = readToken(path);
  if (!token)
    throw new ProxyUnavailable(
      `no proxy control token at ${path}: start the proxy first (cutover proxy <spec>), with the same state directory`,
    );
  return token;
}

/** Constant-time check of an `Authorization: Bearer <token>` header. */
export const tokenMatches = bearerMatches;

export function readProxyInfo(path: string): ProxyInfo | undefined {
  return readJson<ProxyInfo>(path);
}

export function writeProxyInfo(path: string, info: ProxyInfo): void {
  writeFileAtomic(path, `${JSON.stringify(info, null, 2)}\n`);
}

/** A registered proxy is alive if its process runs (same host) or, elsewhere, if its control port answers. */
export function processAlive(info: ProxyInfo): boolean | undefined {
  if (info.host !== hostname()) return undefined;
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runner-side client of one proxy's control port. */
export class ProxyControl {
  constructor(
    readonly info: ProxyInfo,
    private readonly token: string,
  ) {}

  private async call<T>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    timeoutMs = 10_000,
  ): Promise<T> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${this.info.control}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (e) {
      throw new ProxyUnavailable(
        `proxy ${this.info.id} does not answer on its control port ${this.info.control} (${(e as Error).message})`,
      );
    }
    const text = await res.body.text();
    if (res.statusCode === 409) {
      const body = (() => {
        try {
          return JSON.parse(text) as { error?: string; holding?: HoldState; record?: HoldRecord };
        } catch {
          return {};
        }
      })();
      throw new HoldRefused(
        `proxy ${this.info.id}: ${method} ${path} -> 409 ${body.error ?? text.slice(0, 300)}`,
        body.holding,
        body.record,
      );
    }
    if (res.statusCode >= 300)
      throw new ProxyUnavailable(
        `proxy ${this.info.id}: ${method} ${path} -> ${res.statusCode} ${text.slice(0, 300)}`,
      );
    return JSON.parse(text) as T;
  }

  status(): Promise<ProxyStatus> {
    return this.call('GET', '/v1/status', undefined, 5_000);
  }

  /** Resolves once the hold is in effect; the proxy releases it by itself at the deadline. */
  hold(r: HoldRequest): Promise<HoldGranted> {
    return this.call('POST', '/v1/hold', r, r.budgetMs + 5_000);
  }

  release(r: ReleaseRequest): Promise<HoldRecord> {
    return this.call('POST', '/v1/release', r);
  }
}
