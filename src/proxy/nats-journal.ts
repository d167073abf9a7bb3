/**
 * The shared journal on NATS JetStream: every proxy of a migration appends to one stream, and the stream's sequence
 * number is the entry's position. JetStream numbers messages one after the other and stores a message before it
 * acknowledges it, in order, so when a proxy holds the ack for position N every position below N is stored too:
 * positions are gap-free across proxies, and a proxy's `end` is a point the runner can read up to.
 *
 * An append resolves once JetStream acknowledged every entry of it. A publish that fails or times out is fatal, as
 * a failed fdatasync is for the file journal: this and every later append reject and the proxy stops taking writes
 * (never forward-anyway, the OpenSearch Migration Assistant's gap). A proxy whose previous life published no `stop`
 * may have forwarded a write it never journaled: its next life journals a reconcile marker before its `start`.
 *
 * The stream this module creates refuses message deletes and purges (both permanent in JetStream). A reader still
 * checks: a missing position, unread positions gone from the front (a purge, a limit an operator lowered), a stream
 * shorter than what was read, or another stream under the same name (its creation time differs) is JournalBroken.
 *
 * Durability is the NATS server's: an acknowledged message has been written to the stream's file (page cache) and
 * is fsynced by the server's background sync, every 2 minutes by default (2.9.x has no setting for it; newer servers
 * take `sync_interval`). So it survives a crash of any process, the NATS server's included (tested), but not a power
 * loss or kernel crash of the NATS host within that interval.
 */
import { randomBytes } from 'node:crypto';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type PubAck,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import { redactUrl, redactUrlsIn } from '../cluster/redact.js';
import type { LoadedSpec } from '../spec/load.js';
import { type ProxyInfo, ProxyUnavailable } from './control.js';
import {
  type EntryBody,
  JournalBroken,
  type JournalEntry,
  JournalFailed,
  type JournalPos,
  type JournalReader,
  type JournalWriter,
} from './journal.js';
import { type NatsNames, natsNames } from './nats-names.js';

/** How long a proxy waits for a PubAck before the journal is failed (well under the clients' 30 s). */
const PUBLISH_TIMEOUT_MS = 5_000;
/** Nats-Msg-Id de-duplication window of the stream it creates. */
const DUPLICATE_WINDOW_MS = 120_000;
/** How long a read waits for positions the stream info promised; a shortfall is then checked one by one. */
const FETCH_EXPIRES_MS = 3_000;
/** JetStream API error "stream name already in use" (not among the client's named codes) */
const STREAM_NAME_IN_USE = 10058;

/**
 * A position in a NATS journal also names the stream it counts in (name and creation time): a stream deleted and
 * created again restarts at 1, and a position from the old one means nothing in the new one. Persist it whole.
 */
interface NatsPos extends JournalPos {
  epoch?: string;
}

/** A heartbeat on `cutover.<name>.proxies`: the proxy's registration, sent every heartbeatMs. */
interface Heartbeat extends ProxyInfo {
  at: string;
  stopping?: true;
}

function errText(e: unknown): string {
  return redactUrlsIn(e instanceof Error ? e.message : String(e));
}

function serversText(names: NatsNames): string {
  return names.servers.map(redactUrl).join(',');
}

async function connectTo(names: NatsNames, who: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: names.servers,
      name: who,
      // A publish that waits through a reconnect times out and fails the journal; the connection itself keeps
      // trying, so heartbeats and the runner's reads resume when the server is back.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
    });
  } catch (e) {
    throw new JournalFailed(`cannot reach NATS at ${serversText(names)} (${errText(e)})`);
  }
}

function isApiError(e: unknown, code: number): boolean {
  return e instanceof JetStreamApiError && e.code === code;
}

async function streamInfo(jsm: JetStreamManager, stream: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(stream);
  } catch (e) {
    if (isApiError(e, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw e;
  }
}

function epochOf(si: StreamInfo): string {
  return `${si.config.name}@${si.created}`;
}

/** What makes a stream unfit to hold a journal: something that would drop entries by policy. */
function unfit(c: StreamConfig, names: NatsNames): string | undefined {
  const missing = names.streamSubjects.filter((s) => !c.subjects?.includes(s));
  if (missing.length > 0) return `its subjects lack ${missing.join(', ')}`;
  if (c.retention !== RetentionPolicy.Limits)
    return `its retention is ${c.retention} (entries would be removed once consumed)`;
  if (c.storage !== StorageType.File)
    return `its storage is ${c.storage} (a restart of the NATS server would lose it)`;
  const limits: [string, number | undefined][] = [
    ['max_msgs', c.max_msgs],
    ['max_bytes', c.max_bytes],
    ['max_age', c.max_age],
    ['max_msgs_per_subject', c.max_msgs_per_subject],
  ];
  const set = limits.filter(([, v]) => v !== undefined && v > 0).map(([k, v]) => `${k}=${v}`);
  if (set.length > 0) return `it drops old messages (${set.join(', ')})`;
  return undefined;
}

/** The stream of the journal: found, or created (file storage, no limits, deletes and purges refused). */
async function ensureStream(jsm: JetStreamManager, names: NatsNames): Promise<StreamInfo> {
  let si = await streamInfo(jsm, names.stream);
  if (!si) {
    try {
      si = await jsm.streams.add({
        name: names.stream,
        description: 'cutover write-proxy journal: ids written through the proxies, in order',
        subjects: names.streamSubjects,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.New,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
        num_replicas: 1,
        deny_delete: true,
        deny_purge: true,
      });
    } catch (e) {
      // Another proxy created it meanwhile.
      if (!isApiError(e, STREAM_NAME_IN_USE)) throw e;
      si = await jsm.streams.info(names.stream);
    }
  }
  const why = unfit(si.config, names);
  if (why)
    throw new JournalFailed(
      `JetStream stream ${names.stream} cannot hold the journal: ${why}; name another stream (proxy.journal.stream) or fix its configuration`,
    );
  return si;
}

/** A stored message's entry, or why it is not one. */
function decodeEntry(data: Uint8Array, seq: number): JournalEntry | string {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return 'not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'not an entry';
  const e = v as Record<string, unknown>;
  if (typeof e.proxy !== 'string' || typeof e.at !== 'number') return 'no proxy or time';
  switch (e.kind) {
    case 'doc':
      if (typeof e.index !== 'string' || typeof e.id !== 'string' || typeof e.op !== 'string')
        return 'a doc entry without index, id or op';
      break;
    case 'reconcile':
      if (typeof e.why !== 'string') return 'a reconcile entry without a reason';
      break;
    case 'start':
    case 'stop':
      break;
    default:
      return 'unknown kind';
  }
  return { ...(e as unknown as JournalEntry), seq };
}

class NatsJournalWriter implements JournalWriter {
  /** Nats-Msg-Ids must not repeat across lives: a restart within the window would have its entries dropped as duplicates */
  private readonly life = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  private counter = 0;
  private durable: NatsPos;
  private failed?: JournalFailed;
  private closed = false;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly names: NatsNames,
    private readonly proxy: string,
    epoch: string,
  ) {
    this.durable = { seq: 0, epoch };
  }

  get end(): JournalPos {
    return this.durable;
  }

  append(entries: EntryBody[]): Promise<JournalPos> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new JournalFailed(`journal of proxy ${this.proxy} is closed`));
    if (entries.length === 0) return Promise.resolve(this.durable);
    const at = Date.now();
    // All entries go out at once, in order on one connection; their acks come back in that order.
    const acks = entries.map((body) => this.publish(body, at));
    const done = Promise.all(acks).then(
      (seqs) => {
        // Another append failed while these were in flight: the journal is failed for everyone.
        if (this.failed) throw this.failed;
        const seq = Math.max(...seqs);
        if (seq > this.durable.seq) this.durable = { seq, epoch: this.durable.epoch };
        return { seq, epoch: this.durable.epoch } as NatsPos;
      },
      (e: unknown) => {
        throw this.failed ?? e;
      },
    );
    this.inflight.add(done);
    void done.then(
      () => this.inflight.delete(done),
      () => this.inflight.delete(done),
    );
    return done;
  }

  private async publish(body: EntryBody, at: number): Promise<number> {
    const subject =
      body.kind === 'start' || body.kind === 'stop' ? this.names.life(this.proxy) : this.names.journal;
    const msgID = `${this.proxy}-${this.life}-${++this.counter}`;
    let pa: PubAck;
    try {
      pa = await this.js.publish(subject, JSON.stringify({ ...body, at, proxy: this.proxy }), {
        msgID,
        timeout: PUBLISH_TIMEOUT_MS,
        expect: { streamName: this.names.stream },
      });
    } catch (e) {
      throw this.fail(`publish to ${this.names.stream} failed (${errText(e)})`);
    }
    // Nothing is ever retried, so a duplicate means the server kept an older message instead of this one.
    if (pa.duplicate) throw this.fail(`the stream took entry ${msgID} for a duplicate and did not store it`);
    return pa.seq;
  }

  private fail(why: string): JournalFailed {
    this.failed ??= new JournalFailed(
      `NATS journal of proxy ${this.proxy}: ${why}; the proxy stops taking writes`,
    );
    return this.failed;
  }

  /** Record a clean stop (the next life of this proxy id then needs no reconcile) once every append returned. */
  async close(): Promise<void> {
    if (this.closed) return;
    const stop = this.failed ? undefined : this.append([{ kind: 'stop' }]);
    this.closed = true;
    await Promise.allSettled([...this.inflight, ...(stop ? [stop] : [])]);
  }
}

/**
 * The proxy's side: the journal writer (its start entry already durable, after a reconcile marker if this proxy
 * id's previous life did not stop cleanly), its heartbeats, and close() for both.
 */
export async function openNatsJournal(
  spec: LoadedSpec,
  proxyId: string,
): Promise<{
  writer: JournalWriter;
  register: (info: ProxyInfo) => Promise<void>;
  close(): Promise<void>;
}> {
  const names = natsNames(spec);
  const nc = await connectTo(names, `cutover proxy ${proxyId}`);
  let writer: NatsJournalWriter;
  try {
    const jsm = await jetstreamManager(nc);
    const si = await ensureStream(jsm, names);
    const last = await jsm.streams.getMessage(names.stream, { last_by_subj: names.life(proxyId) });
    const lastKind = last ? decodeEntry(last.data, last.seq) : undefined;
    writer = new NatsJournalWriter(jetstream(nc), names, proxyId, epochOf(si));
    if (lastKind !== undefined && (typeof lastKind === 'string' || lastKind.kind !== 'stop'))
      await writer.append([
        {
          kind: 'reconcile',
          why: `proxy ${proxyId} restarted after a crash (its previous life, from position ${last?.seq}, published no stop): a write it forwarded may not be journaled`,
        },
      ]);
    await writer.append([{ kind: 'start' }]);
  } catch (e) {
    await nc.close().catch(() => undefined);
    if (e instanceof JournalFailed) throw e;
    throw new JournalFailed(
      `cannot open the NATS journal (stream ${names.stream} at ${serversText(names)}): ${errText(e)}`,
    );
  }

  let info: ProxyInfo | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const beat = (stopping: boolean) => {
    if (!info || nc.isClosed()) return;
    const hb: Heartbeat = { ...info, at: new Date().toISOString(), ...(stopping ? { stopping: true } : {}) };
    nc.publish(names.proxies, JSON.stringify(hb));
  };

  return {
    writer,
    async register(i: ProxyInfo): Promise<void> {
      if (closed) throw new JournalFailed(`proxy ${proxyId} is closed: it cannot register`);
      info = i;
      clearInterval(timer);
      beat(false);
      timer = setInterval(() => beat(false), spec.proxy.heartbeatMs);
      timer.unref();
      await nc.flush();
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await writer.close();
      beat(true);
      await nc.flush().catch(() => undefined);
      await nc.close();
    },
  };
}

/** The runner's side: entries in position order, or JournalBroken when the stream lost or replaced any of them. */
export class NatsJournalReader implements JournalReader {
  /** the stream this reader has read from; a position carries it too (NatsPos.epoch) */
  private epoch?: string;

  private readonly names: NatsNames;
  private readonly conn: Promise<{ nc: NatsConnection; jsm: JetStreamManager; js: JetStreamClient }>;
  /** resolves once connected; rejects (JournalFailed) if NATS cannot be reached. Every method waits for it too. */
  readonly ready: Promise<void>;
  private closed = false;

  constructor(spec: LoadedSpec) {
    const names = natsNames(spec);
    this.names = names;
    this.conn = (async () => {
      const nc = await connectTo(names, 'cutover runner journal reader');
      try {
        return { nc, jsm: await jetstreamManager(nc), js: jetstream(nc) };
      } catch (e) {
        await nc.close().catch(() => undefined);
        throw new JournalFailed(`cannot use JetStream at ${serversText(names)}: ${errText(e)}`);
      }
    })();
    this.ready = this.conn.then(() => undefined);
    // Whoever reads finds the failure; nobody has to await ready.
    this.ready.catch(() => undefined);
  }

  private broken(why: string): JournalBroken {
    return new JournalBroken(`NATS journal ${this.names.stream}: ${why}`);
  }

  /** The stream as it is now, checked against what was read from it: the reason it broke, thrown. */
  private async current(after: JournalPos): Promise<StreamInfo | undefined> {
    const si = await streamInfo((await this.conn).jsm, this.names.stream);
    if (!si) {
      if (after.seq > 0)
        throw this.broken(`the stream is gone, though ${after.seq} entries were read from it`);
      return undefined;
    }
    const epoch = epochOf(si);
    const known = (after as NatsPos).epoch ?? this.epoch;
    if (after.seq > 0 && known !== undefined && known !== epoch)
      throw this.broken(
        `the stream was deleted and created again (created ${si.created}, read up to ${after.seq} in the one of ${known.slice(known.indexOf('@') + 1)})`,
      );
    this.epoch = epoch;
    const { first_seq: first, last_seq: last } = si.state;
    if (last < after.seq)
      throw this.broken(
        `the stream ends at position ${last}, though ${after.seq} were read from it (it was replaced or cut)`,
      );
    if (first > after.seq + 1 && last > after.seq)
      throw this.broken(
        `positions ${after.seq + 1} to ${Math.min(first, last + 1) - 1} are gone from the front of the stream before they were read (deleted, purged, or dropped by a limit)`,
      );
    return si;
  }

  async read(after: JournalPos, max: number): Promise<{ entries: JournalEntry[]; next: JournalPos }> {
    const si = await this.current(after);
    const next = (seq: number): NatsPos => ({ seq, epoch: this.epoch });
    if (!si || si.state.last_seq <= after.seq || max <= 0) return { entries: [], next: next(after.seq) };
    const want = Math.min(max, si.state.last_seq - after.seq);
    const entries: JournalEntry[] = [];
    let expect = after.seq + 1;
    try {
      const { js, jsm } = await this.conn;
      const consumer = await js.consumers.get(this.names.stream, { opt_start_seq: expect });
      try {
        const msgs = await consumer.fetch({ max_messages: want, expires: FETCH_EXPIRES_MS });
        try {
          for await (const m of msgs) {
            // A later position than the one expected: the expected one is looked up below.
            if (m.seq !== expect) break;
            const e = decodeEntry(m.data, m.seq);
            if (typeof e === 'string') throw this.broken(`position ${m.seq} holds no entry (${e})`);
            entries.push(e);
            expect++;
            if (entries.length === want) break;
          }
        } finally {
          await msgs.close().catch(() => undefined);
        }
      } finally {
        // An ordered consumer would otherwise linger on the server for 5 minutes.
        await consumer.delete().catch(() => undefined);
      }
      if (entries.length < want) {
        const m = await jsm.streams.getMessage(this.names.stream, { seq: expect });
        if (m === null) {
          await this.current({ seq: expect - 1, epoch: this.epoch } as NatsPos);
          throw this.broken(
            `position ${expect} is missing (a message deleted from the stream), though the stream goes on to ${si.state.last_seq}`,
          );
        }
        // Present, only slow to come: the next read goes on from here.
      }
    } catch (e) {
      if (e instanceof JournalBroken) throw e;
      // Whatever went wrong, a stream deleted or replaced meanwhile is what to report.
      await this.current({ seq: expect - 1, epoch: this.epoch } as NatsPos);
      throw e;
    }
    return { entries, next: next(expect - 1) };
  }

  async end(): Promise<JournalPos> {
    const si = await streamInfo((await this.conn).jsm, this.names.stream);
    if (!si) return { seq: 0 };
    return { seq: si.state.last_seq, epoch: epochOf(si) } as NatsPos;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const c = await this.conn.catch(() => undefined);
    await c?.nc.close();
  }
}

/** The proxies a runner hears from: for holds, it must reach every live one. */
export interface ProxyRegistry {
  /** proxies heard from within 3 heartbeat intervals that did not say they are stopping, by id */
  live(): ProxyInfo[];
  /** resolves with the live proxies once there are at least n; ProxyUnavailable after timeoutMs */
  waitFor(n: number, timeoutMs: number): Promise<ProxyInfo[]>;
  close(): Promise<void>;
}

function readHeartbeat(data: Uint8Array): Heartbeat | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as Partial<Heartbeat>;
    if (typeof v.id !== 'string' || typeof v.control !== 'string' || typeof v.pid !== 'number')
      return undefined;
    return v as Heartbeat;
  } catch {
    return undefined;
  }
}

export async function openNatsRegistry(spec: LoadedSpec): Promise<ProxyRegistry> {
  const names = natsNames(spec);
  const windowMs = 3 * spec.proxy.heartbeatMs;
  const nc = await connectTo(names, 'cutover runner registry');
  // Local receive times on a monotonic clock: the proxies' clocks may disagree with this host's.
  const heard = new Map<string, { info: ProxyInfo; at: number }>();
  const waiters = new Set<() => void>();
  const live = (): ProxyInfo[] => {
    const now = performance.now();
    return [...heard.values()]
      .filter((h) => now - h.at <= windowMs)
      .map((h) => h.info)
      .sort((a, b) => a.id.localeCompare(b.id));
  };
  const sub = nc.subscribe(names.proxies, {
    callback: (err, msg) => {
      if (err) return;
      const hb = readHeartbeat(msg.data);
      if (!hb) return;
      if (hb.stopping) heard.delete(hb.id);
      else {
        const { at: _at, stopping: _s, ...info } = hb;
        heard.set(hb.id, { info, at: performance.now() });
      }
      for (const w of [...waiters]) w();
    },
  });
  // The subscription is in place at the server before anyone waits on it.
  await nc.flush();

  return {
    live,
    waitFor(n: number, timeoutMs: number): Promise<ProxyInfo[]> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const l = live();
          if (l.length < n) return;
          finish();
          resolve(l);
        };
        const timer = setTimeout(() => {
          finish();
          const l = live();
          reject(
            new ProxyUnavailable(
              `waited ${timeoutMs} ms for ${n} write prox${n === 1 ? 'y' : 'ies'} of migration ${spec.name} on NATS (${names.proxies}); heard from ${l.length}${l.length ? `: ${l.map((p) => p.id).join(', ')}` : ''}`,
            ),
          );
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async close(): Promise<void> {
      sub.unsubscribe();
      await nc.close();
    },
  };
}
