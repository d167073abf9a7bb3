/**
 * The source's document count under a hold without refreshing it there. Before the hold: the journal's end J is
 * read, then the source is refreshed and a point in time opened on it, and counted. A write absent from that
 * point in time had not completed when the refresh began, so the proxy journaled it (after the cluster's answer)
 * past J. Under the hold, once the journal was drained and accounts for every source `_seq_no` (no writer
 * bypassed the proxies), the count is the point in time's count, minus the documents among the ids journaled past
 * J that the point in time holds, plus those of them the sync's realtime `_mget` found last. Ids are taken with
 * their shard, so the same id under two routings is two documents, as on the cluster.
 *
 * There is a figure only when every such id has an `_mget` answer after its last entry, the ids stay under a bound,
 * and the point in time answered in full; otherwise (and whenever the figure disagrees with the target) the caller
 * refreshes and counts as before. The refresh it saves was the longest wait left under a hold (docs/benchmarks.md).
 */
import type { PresenceWatcher } from '../capture/journal-sync.js';
import type { Cluster } from '../cluster/client.js';
import type { ShardRouter } from '../cluster/routing.js';
import type { DocRef } from '../copy/slice-copier.js';

/** More ids than this past J and the figure is given up (memory; a hold that far behind would not fit anyway). */
export const MAX_WATCHED_IDS = 200_000;
/** ids per lookup in the point in time */
const LOOKUP_IDS = 1_000;
const KEEP_ALIVE = '2m';

interface Watched {
  id: string;
  /** what the last `_mget` after the id's last entry found; undefined: none yet */
  found?: boolean;
}

interface Journal {
  journalEnd(): Promise<{ seq: number }>;
  watch(w: PresenceWatcher | undefined): void;
}

export class SourceCountWatch implements PresenceWatcher {
  private readonly ids = new Map<string, Watched>();
  private overflow = false;
  private pit?: string;
  private base?: number;

  private constructor(
    readonly from: number,
    private readonly router: ShardRouter,
    private readonly journal: Journal,
  ) {}

  /** Start watching at the journal's end now; `snapshot` must follow before the figure can be had. */
  static async start(journal: Journal, router: ShardRouter): Promise<SourceCountWatch> {
    const end = await journal.journalEnd();
    const w = new SourceCountWatch(end.seq, router, journal);
    journal.watch(w);
    return w;
  }

  private key(ref: DocRef): string {
    return `${this.router.shardOf(ref._id, ref.routing)}\u0000${ref._id}`;
  }

  entry(ref: DocRef): void {
    if (this.overflow) return;
    const k = this.key(ref);
    const w = this.ids.get(k);
    if (w) {
      w.found = undefined;
      return;
    }
    if (this.ids.size >= MAX_WATCHED_IDS) {
      this.overflow = true;
      this.ids.clear();
      return;
    }
    this.ids.set(k, { id: ref._id });
  }

  found(ref: DocRef, found: boolean): void {
    const w = this.ids.get(this.key(ref));
    if (w) w.found = found;
  }

  /** Refresh the source, open a point in time on it and count it (after `start`, so past the journal end J). */
  async snapshot(source: Cluster, index: string, signal?: AbortSignal): Promise<void> {
    await source.refresh(index);
    signal?.throwIfAborted();
    if (!(await source.capabilities()).pit) return;
    try {
      this.pit = await source.openPit(index, KEEP_ALIVE);
      const r = await source.search(
        undefined,
        { size: 0, track_total_hits: true, pit: { id: this.pit, keep_alive: KEEP_ALIVE } },
        undefined,
        signal,
      );
      if (r._shards.failed === 0) this.base = totalOf(r.hits.total);
    } catch (e) {
      // Without the figure the hold refreshes and counts the source as before; an abort still ends the run.
      if (signal?.aborted) throw e;
    }
  }

  /**
   * The source's count now, or undefined when it cannot be told exactly. Only valid once the journal was read past
   * every write the cluster took (under the hold, after the drain) and it accounts for every source operation.
   */
  async count(source: Cluster, signal?: AbortSignal): Promise<number | undefined> {
    if (this.overflow || this.base === undefined || !this.pit) return undefined;
    let present = 0;
    const distinct = new Set<string>();
    for (const w of this.ids.values()) {
      if (w.found === undefined) return undefined;
      if (w.found) present++;
      distinct.add(w.id);
    }
    const ids = [...distinct];
    const lookups: Promise<number | undefined>[] = [];
    for (let i = 0; i < ids.length; i += LOOKUP_IDS)
      lookups.push(this.heldThen(source, ids.slice(i, i + LOOKUP_IDS), signal));
    let held = 0;
    for (const n of await Promise.all(lookups)) {
      if (n === undefined) return undefined;
      held += n;
    }
    return this.base - held + present;
  }

  /** How many of the watched (id, shard) pairs among these ids the point in time holds; undefined: not all read. */
  private async heldThen(source: Cluster, ids: string[], signal?: AbortSignal): Promise<number | undefined> {
    // An id is one document per shard at most; a page this size holds every hit unless routings spread one id wide.
    const size = Math.min(10_000, ids.length * 4);
    const r = await source.search<Record<string, never>>(
      undefined,
      {
        size,
        _source: false,
        track_total_hits: true,
        query: { ids: { values: ids } },
        pit: { id: this.pit, keep_alive: KEEP_ALIVE },
      },
      undefined,
      signal,
    );
    if (r._shards.failed > 0 || (totalOf(r.hits.total) ?? Number.POSITIVE_INFINITY) > r.hits.hits.length)
      return undefined;
    let n = 0;
    for (const h of r.hits.hits) {
      const routing = typeof h._routing === 'string' ? h._routing : undefined;
      if (this.ids.has(this.key({ _id: h._id, routing }))) n++;
    }
    return n;
  }

  /** Stop watching and let the point in time go (never fails: it expires by itself). */
  async close(source: Cluster): Promise<void> {
    this.journal.watch(undefined);
    const pit = this.pit;
    this.pit = undefined;
    if (pit) await source.closePit(pit).catch(() => undefined);
  }
}

function totalOf(t: { value: number } | number | undefined): number | undefined {
  return typeof t === 'number' ? t : t?.value;
}
