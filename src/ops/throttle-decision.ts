/**
 * The closed-loop throttle's decision, as pure functions of one snapshot of signals (throttle-signals.ts gathers
 * them, on its own clock). The rule is AIMD, as TCP backs off: any signal over its threshold halves the rate;
 * when every signal is clear and the copy is using its rate, the rate grows by a fixed step. The rate never goes
 * below the floor nor above the ceiling, and every decision says in words which signal made it.
 */

/** What one cluster looked like at the last reading. */
export interface ClusterReading {
  side: 'source' | 'target';
  /** the fullest write (bulk) thread-pool queue of any node, against its queue_size */
  writeQueue?: { node: string; queue: number; size: number };
  /** write-pool rejections on all nodes since the previous reading */
  rejectedDelta: number;
  /** the node with the fullest heap */
  heap?: { node: string; percent: number };
  /** the fullest circuit breaker of any node */
  breaker?: { node: string; name: string; percent: number };
  /** the stats could not be read this time (the decision holds the rate on this alone) */
  error?: string;
}

/** Everything the decision reads: one reading per cluster and what the copy's writer saw since the last one. */
export interface SignalSnapshot {
  seq: number;
  /** ms covered by this snapshot (since the previous one) */
  intervalMs: number;
  /** the target, then the source when it is another cluster */
  clusters: ClusterReading[];
  writer: {
    bulks: number;
    /** documents the target settled (written, deleted, or found newer): the copy's real throughput */
    settled: number;
    /** documents refused for now (item 429 / rejected execution, or a whole bulk answered 429) */
    rejected: number;
    /**
     * documents/s settled over the recent window (several intervals: with large pages and a low rate a single
     * interval may hold no bulk at all), and whether any bulk was sent in that window
     */
    throughput: number;
    active: boolean;
    /** median bulk latency in this interval, and the median of the copy's first bulks */
    latencyMs?: number;
    baselineMs?: number;
  };
  /** the source's mean query time in this interval (query_time / query_total deltas), and its first intervals' */
  sourceSearch: { ms?: number; baselineMs?: number };
}

export interface Thresholds {
  /** write queue over this share of queue_size */
  queueShare: number;
  heapPercent: number;
  breakerPercent: number;
  /** bulk latency over this many times its baseline (and over minBulkLatencyMs) */
  bulkLatencyFactor: number;
  minBulkLatencyMs: number;
  /** source search latency over this many times its baseline (and over minSearchLatencyMs) */
  searchLatencyFactor: number;
  minSearchLatencyMs: number;
  /** multiplicative decrease */
  decrease: number;
  /** additive increase: this share of the reference rate (the ceiling, or the best throughput measured) */
  increaseShare: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  queueShare: 0.75,
  heapPercent: 85,
  breakerPercent: 90,
  bulkLatencyFactor: 3,
  // Small absolute floors: on an idle cluster 2 ms -> 7 ms is "3x" and means nothing.
  minBulkLatencyMs: 200,
  searchLatencyFactor: 2,
  minSearchLatencyMs: 20,
  decrease: 0.5,
  increaseShare: 0.1,
};

/** Where the rate stands when the decision is made (from Throttle.view(), plus the loop's reference). */
export interface RateState {
  /** docs/s now; 0 = unlimited */
  rate: number;
  /** 0 = no ceiling */
  ceiling: number;
  floor: number;
  /** the starting point: the ceiling, or (with none) the best throughput measured so far; 0 while unknown */
  reference: number;
}

export interface Decision {
  action: 'decrease' | 'increase' | 'hold';
  /** the rate to set (0 = unlimited); equal to the current one on hold */
  rate: number;
  /** why, in words: "target write queue 180/200 (90 %) over 75 %: rate 4000 -> 2000 docs/s" */
  reason: string;
  /** the signals over their thresholds, one phrase each */
  over: string[];
}

const pct = (n: number) => `${Math.round(n)} %`;
const docs = (n: number) => (n === 0 ? 'unlimited' : `${n} docs/s`);

/** One signal over its threshold: a stable name and side (the /metrics labels) and the phrase for people. */
export interface OverSignal {
  signal:
    | 'write_queue'
    | 'write_rejections'
    | 'heap'
    | 'circuit_breaker'
    | 'bulk_refused'
    | 'bulk_latency'
    | 'search_latency';
  side: 'source' | 'target';
  phrase: string;
}

/** The signals over their thresholds, each named, with a phrase naming the cluster, the figure and the threshold. */
export function signalsOver(s: SignalSnapshot, t: Thresholds = DEFAULT_THRESHOLDS): OverSignal[] {
  const over: OverSignal[] = [];
  for (const c of s.clusters) {
    const side = c.side;
    const q = c.writeQueue;
    if (q && q.size > 0 && q.queue > q.size * t.queueShare)
      over.push({
        signal: 'write_queue',
        side,
        phrase: `${side} write queue ${q.queue}/${q.size} (${pct((q.queue / q.size) * 100)}) over ${pct(t.queueShare * 100)}`,
      });
    if (c.rejectedDelta > 0)
      over.push({
        signal: 'write_rejections',
        side,
        phrase: `${side} write thread pool rejected ${c.rejectedDelta} request(s)`,
      });
    if (c.heap && c.heap.percent > t.heapPercent)
      over.push({
        signal: 'heap',
        side,
        phrase: `${side} heap ${pct(c.heap.percent)} on ${c.heap.node} over ${pct(t.heapPercent)}`,
      });
    if (c.breaker && c.breaker.percent > t.breakerPercent)
      over.push({
        signal: 'circuit_breaker',
        side,
        phrase: `${side} ${c.breaker.name} circuit breaker ${pct(c.breaker.percent)} on ${c.breaker.node} over ${pct(t.breakerPercent)}`,
      });
  }
  const w = s.writer;
  if (w.rejected > 0)
    over.push({
      signal: 'bulk_refused',
      side: 'target',
      phrase: `target refused ${w.rejected} document(s) with 429 / rejected execution`,
    });
  if (
    w.latencyMs !== undefined &&
    w.baselineMs !== undefined &&
    w.latencyMs > Math.max(t.minBulkLatencyMs, w.baselineMs * t.bulkLatencyFactor)
  )
    over.push({
      signal: 'bulk_latency',
      side: 'target',
      phrase: `bulk latency ${Math.round(w.latencyMs)} ms over ${t.bulkLatencyFactor}x its baseline ${Math.round(w.baselineMs)} ms`,
    });
  const q = s.sourceSearch;
  if (
    q.ms !== undefined &&
    q.baselineMs !== undefined &&
    q.ms > Math.max(t.minSearchLatencyMs, q.baselineMs * t.searchLatencyFactor)
  )
    over.push({
      signal: 'search_latency',
      side: 'source',
      phrase: `source search latency ${Math.round(q.ms)} ms over ${t.searchLatencyFactor}x its baseline ${Math.round(q.baselineMs)} ms`,
    });
  return over;
}

/** The signals over their thresholds, as phrases (what a decision's reason says). */
export function overSignals(s: SignalSnapshot, t: Thresholds = DEFAULT_THRESHOLDS): string[] {
  return signalsOver(s, t).map((o) => o.phrase);
}

/** Documents per second the copy really wrote lately. */
export function throughputOf(s: SignalSnapshot): number {
  return Math.round(s.writer.throughput);
}

/** The rate to set after this snapshot, and why. */
export function decide(s: SignalSnapshot, r: RateState, t: Thresholds = DEFAULT_THRESHOLDS): Decision {
  const over = overSignals(s, t);
  const measured = throughputOf(s);
  const clamp = (n: number) => {
    let v = Math.max(r.floor, Math.round(n));
    if (r.ceiling > 0) v = Math.min(v, r.ceiling);
    return v;
  };
  if (over.length > 0) {
    // Unlimited so far: halve what the copy really does, which is what hurts.
    const base = r.rate > 0 ? r.rate : measured > 0 ? measured : r.reference;
    const next = base > 0 ? clamp(base * t.decrease) : r.floor;
    if (next === r.rate)
      return {
        action: 'hold',
        rate: r.rate,
        over,
        reason: `${over.join('; ')}: rate stays ${docs(r.rate)} (the floor, copy.throttle.floorDocsPerSecond)`,
      };
    return {
      action: 'decrease',
      rate: next,
      over,
      reason: `${over.join('; ')}: rate ${docs(r.rate)} -> ${docs(next)}`,
    };
  }
  const unreadable = s.clusters.filter((c) => c.error);
  if (unreadable.length > 0)
    return {
      action: 'hold',
      rate: r.rate,
      over,
      reason: `signals unreadable (${unreadable.map((c) => `${c.side}: ${c.error}`).join('; ')}): rate kept at ${docs(r.rate)}`,
    };
  if (r.rate === 0) return { action: 'hold', rate: 0, over, reason: 'all signals clear: unthrottled' };
  // A rate the copy does not use (paused, waiting for catch-up, slower elsewhere) is not raised: a rate far above
  // the real throughput would make the next halving do nothing.
  if (!s.writer.active || measured < r.rate * 0.5)
    return {
      action: 'hold',
      rate: r.rate,
      over,
      reason: `all signals clear; the copy writes ${measured} of its ${docs(r.rate)}: rate kept`,
    };
  const reference = r.reference > 0 ? r.reference : r.rate;
  const step = Math.max(r.floor, Math.round(reference * t.increaseShare));
  let next = clamp(r.rate + step);
  // No ceiling: once well above anything measured, the limit is lifted altogether.
  if (r.ceiling === 0 && r.reference > 0 && next >= r.reference * 1.5) next = 0;
  if (next === r.rate)
    return {
      action: 'hold',
      rate: r.rate,
      over,
      reason: `all signals clear: at the ceiling ${docs(r.rate)}`,
    };
  return {
    action: 'increase',
    rate: next,
    over,
    reason: `all signals clear: rate ${docs(r.rate)} -> ${docs(next)}`,
  };
}

/**
 * Bulks in flight after this decision, the same AIMD on the other lever: halved while any signal is over (also
 * when the rate already sits at its floor, where concurrency is all that is left to give), one more when all are
 * clear and the rate grew or is unlimited, never below 1 nor above `max` (copy.concurrency).
 */
export function nextConcurrency(
  d: Decision,
  current: number,
  max: number,
  t: Thresholds = DEFAULT_THRESHOLDS,
): number {
  if (d.over.length > 0) return Math.max(1, Math.floor(current * t.decrease));
  if (d.action === 'increase' || (d.action === 'hold' && d.rate === 0)) return Math.min(max, current + 1);
  return Math.min(max, Math.max(1, current));
}
