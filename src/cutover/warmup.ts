/**
 * Warm-up before readers move: each of the operator's queries runs against the new index (and, for comparison, the
 * old one) a few times, bypassing the request cache, so caches, file-system pages and global ordinals are loaded
 * before the read alias sends the application there. It only reads; a query the new index refuses is reported, and
 * refuses the switch: the application's own queries would fail the same way after it.
 */
import type { Cluster } from '../cluster/client.js';
import { ClusterError } from '../cluster/errors.js';
import { GateError } from '../store/errors.js';
import type { WarmupQueryRecord } from '../store/state.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? 0;
}

async function timed(
  c: Cluster,
  index: string,
  body: Record<string, unknown>,
  runs: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await c.search(index, body, { request_cache: 'false' });
    out.push(Number((process.hrtime.bigint() - t) / 1_000_000n));
  }
  return out;
}

export async function warmUp(
  o: { source: Cluster; sourceIndex: string; target: Cluster; targetIndex: string },
  queries: Array<Record<string, unknown>>,
  runs: number,
): Promise<WarmupQueryRecord[]> {
  const out: WarmupQueryRecord[] = [];
  for (const [i, q] of queries.entries()) {
    let target: number[];
    try {
      target = await timed(o.target, o.targetIndex, q, runs);
    } catch (e) {
      const why = e instanceof ClusterError ? `${e.status} ${e.type}: ${e.reason}` : (e as Error).message;
      throw new GateError(
        `warm-up query ${i + 1} fails on the new index ${o.targetIndex} (${why}); the application's queries would fail the same way after the switch. Fix the mapping or the query (cutover.warmup.queries), then run again`,
      );
    }
    const source = await timed(o.source, o.sourceIndex, q, runs).catch(() => undefined);
    out.push({
      query: i + 1,
      targetFirstMs: target[0]!,
      targetMedianMs: median(target),
      ...(source ? { sourceMedianMs: median(source) } : {}),
    });
  }
  return out;
}
