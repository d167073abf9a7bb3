/**
 * The copy's plan of streams: spare slices go to the largest shards, ranges are never narrower than the minimum,
 * they touch and cover every `_seq_no` from 0 with the last one open, and one per shard when nothing is spare.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadCheckpoints } from '../../src/copy/backfill.js';
import {
  type CopyRange,
  type DateWindow,
  isWholeShards,
  planOf,
  planRanges,
  planWindows,
  reachedBack,
  wholeShards,
  windowedPlan,
} from '../../src/copy/ranges.js';
import { emptyCheckpoint } from '../../src/copy/slice-copier.js';
import { PreflightError } from '../../src/store/errors.js';
import { StateStore } from '../../src/store/state.js';

describe('copy plan: _seq_no ranges', () => {
  it('one stream per shard when the slices are no more than the shards', () => {
    assert.deepEqual(planRanges([100_000, 100_000, 100_000], 3), wholeShards(3));
    assert.deepEqual(planRanges([100_000, 100_000, 100_000], 2), wholeShards(3));
    assert.ok(isWholeShards(planRanges([5, 5], 8, 10)), 'shards below the minimum are not split');
  });

  it('splits one large shard into equal widths that touch, the last open', () => {
    const p = planRanges([39_999], 4, 10_000);
    assert.deepEqual(p, [
      { shard: 0, from: 0, to: 10_000 },
      { shard: 0, from: 10_000, to: 20_000 },
      { shard: 0, from: 20_000, to: 30_000 },
      { shard: 0, from: 30_000, to: null },
    ]);
  });

  it('gives the spare streams to the largest shards, never a range under the minimum', () => {
    const p = planRanges([99_999, 9_999, 29_999], 6, 10_000);
    const per = [0, 1, 2].map((s) => p.filter((r) => r.shard === s).length);
    assert.deepEqual(per, [4, 1, 1]);
    const q = planRanges([19_999, 5_000], 10, 10_000);
    assert.deepEqual(
      q.map((r) => r.shard),
      [0, 0, 1],
      'a shard of 20,000 operations makes at most two ranges',
    );
    for (const r of p) if (r.to !== null) assert.ok(r.to - r.from >= 10_000);
  });

  it('a state without a plan (a copy begun before ranges) reads one stream per shard', () => {
    assert.deepEqual(planOf({ sourceShards: 2 }), wholeShards(2));
    const ranges = planRanges([39_999], 4, 10_000);
    assert.deepEqual(planOf({ sourceShards: 1, copyRanges: ranges }), ranges);
  });
});

describe('copy plan: checkpoints of the plan', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'cutover-ranges-'));
  const saved = (slice: number, range?: CopyRange) => ({
    ...emptyCheckpoint(slice),
    after: 41,
    ...(range ? { range } : {}),
  });

  it('a slice with no checkpoint yet starts empty, with its range', () => {
    const store = new StateStore(dir());
    const plan = planRanges([39_999], 4, 10_000);
    const cps = loadCheckpoints(store, plan);
    assert.deepEqual(
      cps.map((cp) => [cp.after, cp.range]),
      plan.map((r) => [null, r]),
    );
  });

  it('a checkpoint from before ranges is shard i, whole', async () => {
    const store = new StateStore(dir());
    await store.saveCheckpoint(saved(1));
    const cps = loadCheckpoints(store, wholeShards(2));
    assert.equal(cps[1]!.after, 41);
  });

  it('a checkpoint made for another range is refused, naming both', async () => {
    const store = new StateStore(dir());
    await store.saveCheckpoint(saved(0, { shard: 0, from: 0, to: 20_000 }));
    assert.throws(
      () => loadCheckpoints(store, planRanges([39_999], 4, 10_000)),
      (e: Error) =>
        e instanceof PreflightError &&
        /checkpoint 0 .* shard 0 from _seq_no 0 below 20000, but the copy's plan says shard 0 from _seq_no 0 below 10000/.test(
          e.message,
        ),
    );
  });
});

describe('copy plan: newest-first windows', () => {
  const inWindow = (w: DateWindow, t: number | undefined) =>
    'missing' in w
      ? t === undefined
      : t !== undefined && (w.gte === null || t >= w.gte) && (w.lt === null || t < w.lt);

  it('cuts the span into equal windows, newest first, open at both ends, then the documents without the field', () => {
    const w = planWindows('ts', 1000, 1999, 4);
    assert.deepEqual(w, [
      { field: 'ts', gte: 1750, lt: null },
      { field: 'ts', gte: 1500, lt: 1750 },
      { field: 'ts', gte: 1250, lt: 1500 },
      { field: 'ts', gte: null, lt: 1250 },
      { field: 'ts', missing: true },
    ]);
  });

  it('every date (and no date) falls in exactly one window, also outside the planned span', () => {
    const w = planWindows('ts', 1_600_000_000_000, 1_700_000_000_123, 7);
    for (const t of [
      undefined,
      0,
      1_599_999_999_999,
      1_600_000_000_000,
      1_650_000_000_001,
      1_700_000_000_123,
      2e12,
    ])
      assert.equal(w.filter((x) => inWindow(x, t)).length, 1, `date ${t}`);
    // A span shorter than the windows asked for: never an empty window.
    const tiny = planWindows('ts', 5, 6, 16);
    assert.equal(tiny.length, 3);
    for (const t of [4, 5, 6, 7]) assert.equal(tiny.filter((x) => inWindow(x, t)).length, 1);
  });

  it('the plan visits every shard once per window, the newest window first', () => {
    const plan = windowedPlan(planWindows('ts', 0, 99, 2), wholeShards(3));
    assert.equal(plan.length, 9);
    assert.deepEqual(
      plan.slice(0, 3).map((r) => [r.shard, r.window]),
      [0, 1, 2].map((s) => [s, { field: 'ts', gte: 50, lt: null }]),
    );
  });

  it('how far back: only windows done with every newer one count', () => {
    const plan = windowedPlan(planWindows('ts', 0, 99, 4), wholeShards(2));
    const cps = (done: number[]) => plan.map((range, i) => ({ range, done: done.includes(i) }));
    assert.equal(reachedBack(cps([])), null);
    assert.equal(reachedBack(cps([0])), null, 'one shard of the newest window is not the window');
    assert.equal(reachedBack(cps([0, 1])), 75);
    assert.equal(reachedBack(cps([0, 1, 4, 5])), 75, 'an older window done out of order does not count');
    assert.equal(reachedBack(cps([0, 1, 2, 3, 4, 5])), 25);
    assert.equal(reachedBack(cps([0, 1, 2, 3, 4, 5, 6, 7])), 'all');
    assert.equal(reachedBack(wholeShards(2).map((range) => ({ range, done: true }))), null, 'no windows');
  });

  it('a checkpoint made for another window is refused, naming both', async () => {
    const store = new StateStore(mkdtempSync(join(tmpdir(), 'cutover-nf-')));
    const old = windowedPlan(planWindows('ts', 0, 99, 2), wholeShards(1));
    await store.saveCheckpoint({ ...emptyCheckpoint(0), after: 3, range: old[0]! });
    const other = windowedPlan(planWindows('ts', 0, 199, 2), wholeShards(1));
    assert.equal(loadCheckpoints(store, old)[0]!.after, 3);
    assert.throws(
      () => loadCheckpoints(store, other),
      (e: Error) =>
        e instanceof PreflightError &&
        /ts from 1970-01-01T00:00:00\.050Z.*plan says .*ts from 1970-01-01T00:00:00\.100Z/.test(e.message),
    );
  });
});
