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
import { type CopyRange, isWholeShards, planOf, planRanges, wholeShards } from '../../src/copy/ranges.js';
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
        /checkpoint 0 .* shard 0 from _seq_no 0 below 20000, but the copy's plan says shard 0 from 0 below 10000/.test(
          e.message,
        ),
    );
  });
});
