/** The order a process takes a shared copy's open slices in: spread over the shards, never one shard first. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRanges } from '../../src/copy/ranges.js';
import { interleaved } from '../../src/copy/slice-board.js';
import { emptyCheckpoint } from '../../src/copy/slice-copier.js';

describe('interleaved', () => {
  it('takes the first range of every shard, then the second of every shard, and so on', () => {
    const plan = planRanges([59_999, 39_999, 19_999], 6);
    const cps = plan.map((range, i) => ({ ...emptyCheckpoint(i), range }));
    const order = interleaved(cps).map((cp) => cp.range!.shard);
    // 3 + 2 + 1 ranges: every shard once before any shard twice.
    assert.deepEqual(order, [0, 1, 2, 0, 1, 0]);
  });

  it('keeps every slice exactly once, and slices without a range count as their shard', () => {
    const cps = [3, 1, 2].map((i) => emptyCheckpoint(i));
    assert.deepEqual(
      interleaved(cps).map((cp) => cp.slice),
      [1, 2, 3],
    );
    assert.deepEqual(interleaved([]), []);
  });
});
