/**
 * Why the throttle slows the copy, in /metrics: each signal over its threshold at the closed loop's last reading
 * is a `cutover_throttle_signal_over{signal,side}` series (stable names, never the free-text reason), with the
 * bulks in flight beside the rate; a reading with all clear leaves none.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatusFigures } from '../../src/ops/status-figures.js';
import { StatusMetrics } from '../../src/ops/status-metrics.js';
import { Throttle } from '../../src/ops/throttle.js';
import { type SignalSnapshot, signalsOver } from '../../src/ops/throttle-decision.js';

const figures: StatusFigures = {
  migration: 'm1',
  phase: 'running',
  capture: 'none',
  source: 'http://127.0.0.1:9200',
  target: 'http://127.0.0.1:9200',
  targetIndex: 't',
  stepsDone: [],
  pausesOfWrites: [],
};

function snapshot(over: Partial<SignalSnapshot> = {}): SignalSnapshot {
  return {
    seq: 1,
    intervalMs: 1000,
    clusters: [
      { side: 'target', writeQueue: { node: 'n1', queue: 190, size: 200 }, rejectedDelta: 3 },
      { side: 'source', rejectedDelta: 0, heap: { node: 'n2', percent: 91 } },
    ],
    writer: { bulks: 4, settled: 100, rejected: 20, throughput: 100, active: true },
    sourceSearch: { ms: 50, baselineMs: 5 },
    ...over,
  };
}

async function scrape(t: Throttle): Promise<string> {
  const m = new StatusMetrics('m1');
  m.update(figures, {
    command: 'run',
    docsPerSecond: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    throttle: t.view(),
  });
  return m.registry.metrics();
}

describe('throttle signals in /metrics', () => {
  it('names each signal over its threshold with its side', () => {
    assert.deepEqual(
      signalsOver(snapshot()).map((o) => `${o.side}:${o.signal}`),
      [
        'target:write_queue',
        'target:write_rejections',
        'source:heap',
        'target:bulk_refused',
        'source:search_latency',
      ],
    );
  });

  it('one series per signal over, none when all are clear; the bulks in flight beside', async () => {
    const t = new Throttle({ ceiling: 0, concurrency: 4 });
    t.setSignalsOver(signalsOver(snapshot()));
    t.setConcurrency(2, 'test');
    const text = await scrape(t);
    for (const [signal, side] of [
      ['write_queue', 'target'],
      ['heap', 'source'],
      ['search_latency', 'source'],
    ])
      assert.match(
        text,
        new RegExp(`cutover_throttle_signal_over\\{migration="m1",signal="${signal}",side="${side}"\\} 1`),
      );
    assert.match(text, /cutover_throttle_concurrency\{migration="m1"\} 2/);
    t.setSignalsOver([]);
    assert.doesNotMatch(await scrape(t), /cutover_throttle_signal_over\{/);
  });
});
