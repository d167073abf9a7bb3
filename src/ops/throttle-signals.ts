/**
 * The closed-loop throttle's signals, gathered apart from the decision (as gh-ost's throttler collects on its own
 * tickers and `shouldThrottle` only reads): every interval one `_nodes/stats` per cluster (write thread-pool queue
 * and rejections, heap, circuit breakers, search times), plus what the copy's writer reported about its bulks.
 * A snapshot covers exactly one interval: deltas are taken between consecutive readings, so no rejection is
 * counted twice and none is lost between two decisions.
 */
import type { Cluster } from '../cluster/client.js';
import { sleep } from '../cluster/retry.js';
import type { ClusterReading, SignalSnapshot } from './throttle-decision.js';

/** One bulk request as the cluster answered it. */
export interface BulkSample {
  /** from the request to its answer (or its failure) */
  ms: number;
  docs: number;
  /** items the target acknowledged (written, deleted, or a version conflict: all settled) */
  settled: number;
  /** items refused for now by a full queue or a 429 (es_rejected_execution_exception and the like) */
  rejected: number;
  /** HTTP status of the whole request (429: the whole bulk was refused) */
  status: number;
}

export type SnapshotListener = (s: SignalSnapshot) => void;

interface NodeStats {
  name?: string;
  thread_pool?: Record<string, { queue?: number; rejected?: number }>;
  jvm?: { mem?: { heap_used_percent?: number } };
  breakers?: Record<string, { limit_size_in_bytes?: number; estimated_size_in_bytes?: number }>;
  indices?: { search?: { query_total?: number; query_time_in_millis?: number } };
}

const STATS_FILTER = [
  'nodes.*.name',
  'nodes.*.thread_pool.write.queue',
  'nodes.*.thread_pool.write.rejected',
  'nodes.*.thread_pool.bulk.queue',
  'nodes.*.thread_pool.bulk.rejected',
  'nodes.*.jvm.mem.heap_used_percent',
  'nodes.*.breakers.*.limit_size_in_bytes',
  'nodes.*.breakers.*.estimated_size_in_bytes',
  'nodes.*.indices.search.query_total',
  'nodes.*.indices.search.query_time_in_millis',
].join(',');

/** The pool bulk writes run on: `write` since Elasticsearch 6.3 and in OpenSearch, `bulk` before. */
function writePool(n: NodeStats): { queue?: number; rejected?: number } | undefined {
  return n.thread_pool?.write ?? n.thread_pool?.bulk;
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

export interface SignalOptions {
  target: Cluster;
  /** the source; its search latency is read, and its pools too when it is another cluster */
  source: Cluster;
  intervalMs: number;
  /** bulks whose median latency is the baseline (default 20) */
  baselineBulks?: number;
  /** intervals with searches whose median is the source's search-latency baseline (default 5) */
  baselineIntervals?: number;
}

export class ThrottleSignals {
  private seq = 0;
  private bulks: BulkSample[] = [];
  /** (time, settled) of the bulks in the throughput window */
  private recent: Array<[number, number]> = [];
  private readonly startedAt = Date.now();
  private readonly firstBulks: number[] = [];
  private readonly firstSearches: number[] = [];
  /** per cluster side: the previous reading's cumulative counters, by node id */
  private readonly prev = new Map<string, Map<string, { rejected: number; qTotal: number; qMs: number }>>();
  /** per side: queue_size of each node's write pool (nodes info; read again when a node appears) */
  private readonly queueSizes = new Map<string, Map<string, number>>();
  private last?: SignalSnapshot;
  private lastAt = Date.now();
  private readonly listeners = new Set<SnapshotListener>();
  private loop?: Promise<void>;
  private readonly stopper = new AbortController();

  constructor(private readonly o: SignalOptions) {}

  /** The writer's observer: pass it as BulkWriter's onBulk. */
  readonly onBulk = (b: BulkSample): void => {
    this.bulks.push(b);
    this.recent.push([Date.now(), b.settled]);
    const n = this.o.baselineBulks ?? 20;
    if (this.firstBulks.length < n && b.status === 200 && b.rejected === 0) this.firstBulks.push(b.ms);
  };

  latest(): SignalSnapshot | undefined {
    return this.last;
  }

  onSnapshot(l: SnapshotListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Collect every intervalMs until stop(); a reading that fails is a snapshot with the error, not a stop. */
  start(): void {
    this.loop ??= (async () => {
      const signal = this.stopper.signal;
      while (!signal.aborted) {
        await sleep(this.o.intervalMs, signal).catch(() => undefined);
        if (signal.aborted) break;
        const s = await this.collect();
        for (const l of this.listeners) l(s);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  /** One reading of every cluster, and the writer's bulks since the previous one. */
  async collect(): Promise<SignalSnapshot> {
    const sameCluster = this.o.source === this.o.target;
    const [target, source] = await Promise.all([
      this.read('target', this.o.target),
      sameCluster ? undefined : this.read('source', this.o.source),
    ]);
    const now = Date.now();
    const bulks = this.bulks;
    this.bulks = [];
    const windowMs = Math.max(5000, 3 * this.o.intervalMs);
    this.recent = this.recent.filter(([t]) => t > now - windowMs);
    const span = Math.min(windowMs, now - this.startedAt) / 1000;
    const windowSettled = this.recent.reduce((a, [, n]) => a + n, 0);
    const searchMs = (sameCluster ? target : source)?.searchMs;
    const nIntervals = this.o.baselineIntervals ?? 5;
    if (searchMs !== undefined && this.firstSearches.length < nIntervals) this.firstSearches.push(searchMs);
    const snap: SignalSnapshot = {
      seq: ++this.seq,
      intervalMs: now - this.lastAt,
      clusters: [target.reading, ...(source ? [source.reading] : [])],
      writer: {
        bulks: bulks.length,
        settled: bulks.reduce((a, b) => a + b.settled, 0),
        rejected: bulks.reduce((a, b) => a + b.rejected, 0),
        throughput: span > 0 ? windowSettled / span : 0,
        active: this.recent.length > 0,
        latencyMs: median(bulks.map((b) => b.ms)),
        // A baseline of a few bulks is no baseline: none until the first ones are in.
        baselineMs:
          this.firstBulks.length >= Math.min(5, this.o.baselineBulks ?? 20)
            ? median(this.firstBulks)
            : undefined,
      },
      sourceSearch: {
        ms: searchMs,
        baselineMs: this.firstSearches.length >= nIntervals ? median(this.firstSearches) : undefined,
      },
    };
    this.lastAt = now;
    this.last = snap;
    return snap;
  }

  private async read(
    side: 'source' | 'target',
    cluster: Cluster,
  ): Promise<{ reading: ClusterReading; searchMs?: number }> {
    let nodes: Record<string, NodeStats>;
    try {
      nodes =
        (
          await cluster.request<{ nodes?: Record<string, NodeStats> }>({
            method: 'GET',
            path: '/_nodes/stats/thread_pool,jvm,breaker,indices/search',
            query: { filter_path: STATS_FILTER },
            idempotent: true,
            signal: this.stopper.signal,
          })
        ).body.nodes ?? {};
      if (Object.keys(nodes).some((id) => !this.queueSizes.get(side)?.has(id)))
        this.queueSizes.set(side, await queueSizesOf(cluster));
    } catch (e) {
      return { reading: { side, rejectedDelta: 0, error: (e as Error).message } };
    }
    const sizes = this.queueSizes.get(side) ?? new Map<string, number>();
    const before = this.prev.get(side);
    const after = new Map<string, { rejected: number; qTotal: number; qMs: number }>();
    const reading: ClusterReading = { side, rejectedDelta: 0 };
    let qTotal = 0;
    let qMs = 0;
    for (const [id, n] of Object.entries(nodes)) {
      const name = n.name ?? id;
      const pool = writePool(n);
      const size = sizes.get(id);
      if (pool?.queue !== undefined && size !== undefined && size > 0) {
        const w = reading.writeQueue;
        if (!w || pool.queue / size > w.queue / w.size)
          reading.writeQueue = { node: name, queue: pool.queue, size };
      }
      const heap = n.jvm?.mem?.heap_used_percent;
      if (heap !== undefined && (!reading.heap || heap > reading.heap.percent))
        reading.heap = { node: name, percent: heap };
      for (const [bname, b] of Object.entries(n.breakers ?? {})) {
        if (!b.limit_size_in_bytes || b.limit_size_in_bytes <= 0) continue;
        const p = ((b.estimated_size_in_bytes ?? 0) / b.limit_size_in_bytes) * 100;
        if (!reading.breaker || p > reading.breaker.percent)
          reading.breaker = { node: name, name: bname, percent: p };
      }
      const now = {
        rejected: pool?.rejected ?? 0,
        qTotal: n.indices?.search?.query_total ?? 0,
        qMs: n.indices?.search?.query_time_in_millis ?? 0,
      };
      after.set(id, now);
      const was = before?.get(id);
      // A node seen for the first time, or restarted (counters went back), gives no delta this time.
      if (was && now.rejected >= was.rejected) reading.rejectedDelta += now.rejected - was.rejected;
      if (was && now.qTotal >= was.qTotal && now.qMs >= was.qMs) {
        qTotal += now.qTotal - was.qTotal;
        qMs += now.qMs - was.qMs;
      }
    }
    this.prev.set(side, after);
    return { reading, searchMs: qTotal > 0 ? qMs / qTotal : undefined };
  }
}

/** queue_size of each node's write pool, from nodes info (fixed per node: it changes only with a restart). */
async function queueSizesOf(cluster: Cluster): Promise<Map<string, number>> {
  const r = await cluster.request<{
    nodes?: Record<string, { thread_pool?: Record<string, { queue_size?: number }> }>;
  }>({
    method: 'GET',
    path: '/_nodes/thread_pool',
    query: { filter_path: 'nodes.*.thread_pool.write.queue_size,nodes.*.thread_pool.bulk.queue_size' },
    idempotent: true,
  });
  const out = new Map<string, number>();
  for (const [id, n] of Object.entries(r.body.nodes ?? {})) {
    const q = n.thread_pool?.write?.queue_size ?? n.thread_pool?.bulk?.queue_size;
    if (typeof q === 'number') out.set(id, q);
  }
  return out;
}
