/**
 * Leases on a NATS JetStream key-value bucket: a record is held by at most one live process, as far as the bucket's
 * compare-and-set decides. Every change of a held record (a renewal, a new value) is an update at the revision its
 * holder last wrote; a holder whose update is refused for the revision has lost the record and stops acting for it.
 *
 * Expiry is observed, never computed from clocks: a record is taken over when its revision has not moved for
 * `leaseMs` as seen by the taker's own monotonic clock (machines' clocks may disagree; the bucket's revisions do
 * not). A holder that could not renew for two thirds of `leaseMs` gives the record up itself, so two live holders
 * overlap at most by what one update in flight takes. Callers keep their work safe under that overlap (the copy
 * does: its writes are versioned, and a checkpoint moves only by a compare-and-set of its holder).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { JetStreamApiError } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { redactUrl, redactUrlsIn } from '../cluster/redact.js';
import { CutoverError, EXIT } from './errors.js';
import { alive } from './lock.js';

/** JetStream "wrong last sequence": the record changed since the revision the update named. */
const WRONG_LAST_SEQUENCE = 10071;

export interface HolderId {
  /** one per process life: a restarted process is another holder */
  id: string;
  host: string;
  pid: number;
}

interface Stored<T> {
  holder: HolderId | null;
  value: T;
}

export interface Entry<T> {
  key: string;
  value: T;
  holder: HolderId | null;
  revision: number;
}

/** The coordination service cannot be reached or refused a request: nothing was decided. */
export class CoordinationError extends CutoverError {
  override readonly name = 'CoordinationError';
  readonly exitCode = EXIT.cluster;
}

/** This process no longer holds the record: another took it over, or renewals failed for too long. */
export class LeaseLost extends Error {
  override readonly name = 'LeaseLost';
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`lease on ${key} lost: ${why}`);
  }
}

const wrongRevision = (e: unknown) => e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE;

const enc = (v: unknown) => JSON.stringify(v);

/** One bucket on one connection; records under it are read and leased through LeaseTable. */
export class KvBucket {
  private constructor(
    readonly name: string,
    private bucketKv: KV,
    private readonly nc: NatsConnection,
  ) {}

  get kv(): KV {
    return this.bucketKv;
  }

  /** `create`: make the bucket when it is missing (the runner); otherwise undefined when it is missing (a worker). */
  static async open(servers: string, name: string, create: true): Promise<KvBucket>;
  static async open(servers: string, name: string, create: false): Promise<KvBucket | undefined>;
  static async open(servers: string, name: string, create: boolean): Promise<KvBucket | undefined> {
    const list = servers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: list, name: 'cutover', maxReconnectAttempts: -1 });
    } catch (e) {
      throw new CoordinationError(
        `cannot reach NATS at ${list.map(redactUrl).join(',')} (copy.workers.servers): ${redactUrlsIn(String((e as Error).message ?? e))}`,
      );
    }
    try {
      const kvm = new Kvm(nc);
      const kv = create ? await kvm.create(name, { history: 1 }) : await kvm.open(name);
      if (!create) await kv.status(); // open is lazy: a missing bucket shows here
      return new KvBucket(name, kv, nc);
    } catch (e) {
      await nc.close().catch(() => undefined);
      if (!create && /stream not found/i.test(String((e as Error).message))) return undefined;
      throw new CoordinationError(
        `NATS JetStream refused the key-value bucket ${name}: ${redactUrlsIn(String((e as Error).message ?? e))} (JetStream must be enabled on the server)`,
      );
    }
  }

  async get<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    const e = await this.kv.get(key);
    if (e?.operation !== 'PUT') return undefined;
    return { value: e.json<T>(), revision: e.revision };
  }

  /** Put only where nothing is: false when the key already holds a value. */
  async create(key: string, value: unknown): Promise<boolean> {
    try {
      await this.kv.create(key, enc(value));
      return true;
    } catch (e) {
      if (wrongRevision(e)) return false;
      throw e;
    }
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.kv.put(key, enc(value));
  }

  async keys(filter: string): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.kv.keys(filter)) out.push(k);
    return out;
  }

  async destroy(): Promise<void> {
    await this.kv.destroy();
  }

  /** Every record gone at once: the bucket removed and made again, empty. */
  async reset(): Promise<void> {
    await this.kv.destroy();
    this.bucketKv = await new Kvm(this.nc).create(this.name, { history: 1 });
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}

/**
 * Records of one kind (`<prefix>.<name>`) that processes lease one at a time. `want` decides which records are worth
 * taking (a slice that is done is not).
 */
export class LeaseTable<T> {
  /** key -> the revision this process last saw it at, and since when (monotonic ms) */
  private readonly seen = new Map<string, { revision: number; since: number }>();

  constructor(
    private readonly bucket: KvBucket,
    readonly me: HolderId,
    readonly leaseMs: number,
  ) {}

  /** Create the record unheld when it does not exist yet; an existing record is left as it is. */
  async ensure(key: string, value: T): Promise<void> {
    await this.bucket.create(key, { holder: null, value } satisfies Stored<T>);
  }

  async read(key: string): Promise<Entry<T> | undefined> {
    const e = await this.bucket.get<Stored<T>>(key);
    return e && { key, value: e.value.value, holder: e.value.holder, revision: e.revision };
  }

  /**
   * Take the record when it is free, its holder is a dead process of this host, or its revision stood still for
   * leaseMs as this process saw it. Undefined when it is not (yet) takeable or another process was quicker.
   */
  async tryTake(key: string, want: (v: T) => boolean): Promise<Lease<T> | undefined> {
    const e = await this.read(key);
    if (!e || !want(e.value)) return undefined;
    // Held by this process already (another of its slots): never taken twice.
    if (e.holder?.id === this.me.id) return undefined;
    if (e.holder && !this.holderGone(e.holder)) {
      const now = performance.now();
      const s = this.seen.get(key);
      if (!s || s.revision !== e.revision) {
        this.seen.set(key, { revision: e.revision, since: now });
        return undefined;
      }
      if (now - s.since < this.leaseMs) return undefined;
    }
    try {
      const revision = await this.bucket.kv.update(
        key,
        enc({ holder: this.me, value: e.value } satisfies Stored<T>),
        e.revision,
      );
      this.seen.delete(key);
      return new Lease(this.bucket, key, this.me, e.value, revision, this.leaseMs, e.holder);
    } catch (err) {
      if (wrongRevision(err)) return undefined;
      throw err;
    }
  }

  private holderGone(h: HolderId): boolean {
    return h.host === this.me.host && h.pid !== this.me.pid && !alive(h.pid);
  }
}

/** A record this process holds: renewed in the background until released or lost. */
export class Lease<T> {
  private readonly ctl = new AbortController();
  private chain: Promise<unknown> = Promise.resolve();
  private lastOk = performance.now();
  private readonly timer: NodeJS.Timeout;
  private released = false;

  constructor(
    private readonly bucket: KvBucket,
    readonly key: string,
    private readonly me: HolderId,
    private current: T,
    private revision: number,
    private readonly leaseMs: number,
    /** who held it before (a takeover), for the notice */
    readonly takenFrom: HolderId | null,
  ) {
    this.timer = setInterval(
      () => {
        this.renew().catch(() => undefined);
      },
      Math.max(250, Math.floor(leaseMs / 3)),
    );
    this.timer.unref();
  }

  get value(): T {
    return this.current;
  }

  /** Aborted (with LeaseLost as its reason) once this process no longer holds the record. */
  get lost(): AbortSignal {
    return this.ctl.signal;
  }

  /** Write a new value as the holder; throws LeaseLost when the record is no longer this process's. */
  update(value: T): Promise<void> {
    return this.enqueue(() =>
      this.write({ holder: this.me, value }, true).then(() => {
        this.current = value;
      }),
    );
  }

  /** Give the record up (with a last value): the next process takes it at once, without waiting for expiry. */
  async release(value: T = this.current): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    if (this.ctl.signal.aborted) return;
    await this.enqueue(() => this.write({ holder: null, value }, true)).catch(() => undefined);
    this.current = value;
  }

  private renew(): Promise<void> {
    if (this.released || this.ctl.signal.aborted) return Promise.resolve();
    return this.enqueue(() => this.write({ holder: this.me, value: this.current }, false));
  }

  private enqueue(f: () => Promise<void>): Promise<void> {
    const p = this.chain.then(f);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private lose(why: string): never {
    clearInterval(this.timer);
    const err = new LeaseLost(this.key, why);
    if (!this.ctl.signal.aborted) this.ctl.abort(err);
    throw err;
  }

  /**
   * One compare-and-set at the revision this holder wrote last. A refused revision is re-read once: an earlier
   * attempt that timed out may have been applied, and then the record still holds this process's own write.
   * A value update retries a failing connection until two thirds of the lease have passed since the last success
   * (others may take the record after a whole lease); a renewal just waits for the next tick.
   */
  private async write(stored: Stored<T>, retry: boolean): Promise<void> {
    if (this.ctl.signal.aborted) this.lose('taken over earlier');
    const deadline = this.lastOk + (this.leaseMs * 2) / 3;
    for (;;) {
      try {
        this.revision = await this.bucket.kv.update(this.key, enc(stored), this.revision);
        this.lastOk = performance.now();
        return;
      } catch (e) {
        if (wrongRevision(e)) {
          const now = await this.bucket.get<Stored<T>>(this.key).catch(() => undefined);
          if (now && now.value.holder?.id === this.me.id && enc(now.value) === enc(stored)) {
            this.revision = now.revision;
            this.lastOk = performance.now();
            return;
          }
          this.lose(
            now?.value.holder
              ? `${now.value.holder.host} pid ${now.value.holder.pid} (${now.value.holder.id.slice(0, 8)}) holds it now at revision ${now.revision}, this process wrote revision ${this.revision}`
              : 'the record changed under this process',
          );
        }
        if (performance.now() >= deadline)
          this.lose(
            `not renewed for ${Math.round((performance.now() - this.lastOk) / 1000)} s (${redactUrlsIn(String((e as Error).message ?? e))})`,
          );
        if (!retry) return;
        await sleep(250);
      }
    }
  }
}
