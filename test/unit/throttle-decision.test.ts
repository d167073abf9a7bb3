/**
 * The closed-loop throttle's decision (pure): which signal is over its threshold, how much the rate falls and
 * rises, the floor and the ceiling, the start without a ceiling, and the words of every reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClusterReading,
  DEFAULT_THRESHOLDS,
  decide,
  nextConcurrency,
  overSignals,
  type RateState,
  type SignalSnapshot,
  throughputOf,
} from '../../src/ops/throttle-decision.js';

const calmTarget = (): ClusterReading => ({
  side: 'target',
  writeQueue: { node: 'n1', queue: 0, size: 200 },
  rejectedDelta: 0,
  heap: { node: 'n1', percent: 40 },
  breaker: { node: 'n1', name: 'parent', percent: 30 },
});

/** One second, the copy writing `settled` documents in 10 bulks of 100 ms against a 100 ms baseline. */
function snap(over: Partial<SignalSnapshot> = {}, settled = 4000): SignalSnapshot {
  const s: SignalSnapshot = {
    seq: 1,
    intervalMs: 1000,
    clusters: [calmTarget()],
    writer: { ...w(10, settled, 0, 100, 100) },
    sourceSearch: { ms: 5, baselineMs: 5 },
    ...over,
  };
  return s;
}

/** What the writer saw: a steady second, so the window's throughput is what this interval settled. */
function w(bulks: number, settled: number, rejected: number, latencyMs?: number, baselineMs?: number) {
  return { bulks, settled, rejected, latencyMs, baselineMs, throughput: settled, active: bulks > 0 };
}

const at = (rate: number, ceiling = 4000, floor = 50, reference = ceiling): RateState => ({
  rate,
  ceiling,
  floor,
  reference,
});

describe('throttle decision: signals over their thresholds', () => {
  it('all clear: no signal named', () => {
    assert.deepEqual(overSignals(snap()), []);
  });

  it('write queue above 75 % of queue_size, named with its figures', () => {
    const s = snap({ clusters: [{ ...calmTarget(), writeQueue: { node: 'n1', queue: 180, size: 200 } }] });
    assert.deepEqual(overSignals(s), ['target write queue 180/200 (90 %) over 75 %']);
    const at75 = snap({ clusters: [{ ...calmTarget(), writeQueue: { node: 'n1', queue: 150, size: 200 } }] });
    assert.deepEqual(overSignals(at75), [], 'exactly 75 % is not over');
  });

  it('the example of the issue: queue 180/200 halves 4000 to 2000, in those words', () => {
    const s = snap({ clusters: [{ ...calmTarget(), writeQueue: { node: 'n1', queue: 180, size: 200 } }] });
    const d = decide(s, at(4000));
    assert.equal(d.action, 'decrease');
    assert.equal(d.rate, 2000);
    assert.equal(d.reason, 'target write queue 180/200 (90 %) over 75 %: rate 4000 docs/s -> 2000 docs/s');
  });

  it('rejections, 429s, heap, breaker, bulk latency and source search latency each count', () => {
    const cases: Array<[Partial<SignalSnapshot>, RegExp]> = [
      [{ clusters: [{ ...calmTarget(), rejectedDelta: 3 }] }, /^target write thread pool rejected 3 request/],
      [{ writer: w(4, 100, 7, 100, 100) }, /^target refused 7 document\(s\) with 429/],
      [
        { clusters: [{ ...calmTarget(), heap: { node: 'n2', percent: 91 } }] },
        /^target heap 91 % on n2 over 85 %/,
      ],
      [
        { clusters: [{ ...calmTarget(), breaker: { node: 'n1', name: 'parent', percent: 95.4 } }] },
        /^target parent circuit breaker 95 % on n1 over 90 %/,
      ],
      [{ writer: w(4, 1000, 0, 400, 100) }, /^bulk latency 400 ms over 3x its baseline 100 ms/],
      [
        { sourceSearch: { ms: 60, baselineMs: 25 } },
        /^source search latency 60 ms over 2x its baseline 25 ms/,
      ],
    ];
    for (const [over, re] of cases) {
      const d = decide(snap(over), at(4000));
      assert.equal(d.action, 'decrease', String(re));
      assert.equal(d.rate, 2000);
      assert.match(d.reason, re);
      assert.match(d.reason, /: rate 4000 docs\/s -> 2000 docs\/s$/);
    }
  });

  it('thresholds are not crossed by their boundary values', () => {
    const edge = snap({
      clusters: [
        {
          ...calmTarget(),
          heap: { node: 'n1', percent: 85 },
          breaker: { node: 'n1', name: 'parent', percent: 90 },
        },
      ],
      writer: w(4, 1000, 0, 300, 100),
      sourceSearch: { ms: 50, baselineMs: 25 },
    });
    assert.deepEqual(overSignals(edge), []);
  });

  it('latency has no meaning without a baseline, and tiny latencies never count', () => {
    assert.deepEqual(overSignals(snap({ writer: w(3, 10, 0, 9000) })), []);
    assert.deepEqual(overSignals(snap({ sourceSearch: { ms: 900 } })), []);
    // 3 ms -> 15 ms is "5x" on an idle cluster: under the absolute minimums, not pain.
    assert.deepEqual(overSignals(snap({ writer: w(3, 10, 0, 15, 3) })), []);
    assert.deepEqual(overSignals(snap({ sourceSearch: { ms: 12, baselineMs: 1 } })), []);
  });

  it('a source that is another cluster is read and named as the source', () => {
    const s = snap({
      clusters: [calmTarget(), { side: 'source', rejectedDelta: 0, heap: { node: 's1', percent: 97 } }],
    });
    assert.deepEqual(overSignals(s), ['source heap 97 % on s1 over 85 %']);
  });

  it('several signals over: all named in one reason, one halving', () => {
    const s = snap({
      clusters: [{ ...calmTarget(), rejectedDelta: 2, writeQueue: { node: 'n1', queue: 2, size: 2 } }],
    });
    const d = decide(s, at(1000));
    assert.equal(d.over.length, 2);
    assert.equal(d.rate, 500);
    assert.match(
      d.reason,
      /target write queue 2\/2 \(100 %\) over 75 %; target write thread pool rejected 2/,
    );
  });
});

describe('throttle decision: AIMD within floor and ceiling', () => {
  const pain = snap({ clusters: [{ ...calmTarget(), rejectedDelta: 1 }] });

  it('never below the floor; at the floor it holds and says so', () => {
    assert.equal(decide(pain, at(80, 4000, 50)).rate, 50);
    const d = decide(pain, at(50, 4000, 50));
    assert.equal(d.action, 'hold');
    assert.equal(d.rate, 50);
    assert.match(d.reason, /rate stays 50 docs\/s \(the floor, copy.throttle.floorDocsPerSecond\)/);
  });

  it('additive increase by a tenth of the reference when clear and the rate is used', () => {
    const d = decide(snap({}, 2000), at(2000));
    assert.equal(d.action, 'increase');
    assert.equal(d.rate, 2400);
    assert.equal(d.reason, 'all signals clear: rate 2000 docs/s -> 2400 docs/s');
  });

  it('the increase step is at least the floor', () => {
    assert.equal(decide(snap({}, 100), at(100, 300, 50)).rate, 150);
  });

  it('never above the ceiling; at the ceiling it holds', () => {
    assert.equal(decide(snap({}, 3900), at(3900)).rate, 4000);
    const d = decide(snap({}, 4000), at(4000));
    assert.equal(d.action, 'hold');
    assert.equal(d.rate, 4000);
  });

  it('a decrease never lands above the ceiling the operator lowered', () => {
    assert.equal(decide(pain, { rate: 4000, ceiling: 1000, floor: 50, reference: 1000 }).rate, 1000);
  });

  it('a rate the copy does not use (paused, waiting) is not raised', () => {
    const idle = decide(snap({ writer: w(0, 0, 0) }, 0), at(1000));
    assert.equal(idle.action, 'hold');
    assert.equal(idle.rate, 1000);
    const slow = decide(snap({}, 300), at(1000));
    assert.equal(slow.action, 'hold');
    assert.match(slow.reason, /the copy writes 300 of its 1000 docs\/s: rate kept/);
  });

  it('halving then recovering: the sawtooth stays within [floor, ceiling]', () => {
    let r = at(4000, 4000, 100);
    const seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      const d = decide(i % 10 < 3 ? pain : snap({}, r.rate), r);
      r = { ...r, rate: d.rate };
      seen.push(d.rate);
    }
    assert.ok(seen.every((x) => x >= 100 && x <= 4000));
    assert.deepEqual(seen.slice(0, 3), [2000, 1000, 500], 'three halvings from 4000');
    assert.equal(seen[9], 3300, 'then seven steps of 400 (a tenth of the ceiling)');
    assert.deepEqual(seen.slice(10, 13), [1650, 825, 413]);
  });
});

describe('throttle decision: no ceiling (copy.maxDocsPerSecond 0)', () => {
  const pain = snap({ clusters: [{ ...calmTarget(), rejectedDelta: 1 }] }, 3000);

  it('unlimited and clear: stays unlimited', () => {
    const d = decide(snap(), at(0, 0, 50, 0));
    assert.equal(d.action, 'hold');
    assert.equal(d.rate, 0);
  });

  it('unlimited and in pain: halves the throughput it measures', () => {
    assert.equal(throughputOf(pain), 3000);
    const d = decide(pain, at(0, 0, 50, 3000));
    assert.equal(d.rate, 1500);
    assert.match(d.reason, /: rate unlimited -> 1500 docs\/s$/);
  });

  it('nothing measured yet: falls back to the reference, then to the floor', () => {
    const none = snap({ clusters: [{ ...calmTarget(), rejectedDelta: 1 }], writer: w(2, 0, 9) }, 0);
    assert.equal(decide(none, at(0, 0, 50, 800)).rate, 400);
    assert.equal(decide(none, at(0, 0, 50, 0)).rate, 50);
  });

  it('climbing back: the limit is lifted once well above the starting throughput', () => {
    const d = decide(snap({}, 4200), at(4200, 0, 50, 3000));
    assert.equal(d.action, 'increase');
    assert.equal(d.rate, 0);
    assert.match(d.reason, /-> unlimited$/);
    assert.equal(decide(snap({}, 3000), at(3000, 0, 50, 3000)).rate, 3300);
  });
});

describe('throttle decision: unreadable signals', () => {
  it('holds the rate and says which cluster could not be read', () => {
    const s = snap({ clusters: [{ side: 'target', rejectedDelta: 0, error: 'connect ECONNREFUSED' }] });
    const d = decide(s, at(2000));
    assert.equal(d.action, 'hold');
    assert.equal(d.rate, 2000);
    assert.match(d.reason, /signals unreadable \(target: connect ECONNREFUSED\): rate kept at 2000 docs\/s/);
  });

  it('but a signal that was read and is over still decreases', () => {
    const s = snap({
      clusters: [{ side: 'target', rejectedDelta: 0, error: 'timeout' }],
      writer: w(3, 10, 5, 100, 100),
    });
    assert.equal(decide(s, at(2000)).action, 'decrease');
  });

  it('the defaults are the documented thresholds', () => {
    assert.equal(DEFAULT_THRESHOLDS.queueShare, 0.75);
    assert.equal(DEFAULT_THRESHOLDS.heapPercent, 85);
    assert.equal(DEFAULT_THRESHOLDS.breakerPercent, 90);
    assert.equal(DEFAULT_THRESHOLDS.bulkLatencyFactor, 3);
    assert.equal(DEFAULT_THRESHOLDS.searchLatencyFactor, 2);
    assert.equal(DEFAULT_THRESHOLDS.decrease, 0.5);
  });
});

describe('throttle decision: bulks in flight', () => {
  const decision = (over: string[], action: 'decrease' | 'increase' | 'hold', rate = 1000) => ({
    action,
    rate,
    over,
    reason: '',
  });

  it('halves while a signal is over, down to 1, also when the rate sits at its floor', () => {
    assert.equal(nextConcurrency(decision(['q'], 'decrease'), 8, 8), 4);
    assert.equal(
      nextConcurrency(decision(['q'], 'hold', 50), 4, 8),
      2,
      'rate at the floor: concurrency goes on',
    );
    assert.equal(nextConcurrency(decision(['q'], 'decrease'), 1, 8), 1);
  });

  it('one more when all are clear and the rate rose or is unlimited, never above the most', () => {
    assert.equal(nextConcurrency(decision([], 'increase'), 2, 8), 3);
    assert.equal(nextConcurrency(decision([], 'hold', 0), 7, 8), 8);
    assert.equal(nextConcurrency(decision([], 'increase'), 8, 8), 8);
  });

  it('kept when all are clear but the copy does not use its rate', () => {
    assert.equal(nextConcurrency(decision([], 'hold', 1000), 3, 8), 3);
  });
});
