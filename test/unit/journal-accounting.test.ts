/**
 * The journal accounts for a range of source operations only when it holds every `_seq_no` of it, shard by shard;
 * whatever it cannot know (numbers forgotten to stay bounded, shards it has no cursor for) reads as a gap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JournalAccounting } from '../../src/capture/journal-accounting.js';

describe('journal accounting', () => {
  it('accounts for a range only when every number of it was journaled', () => {
    const a = new JournalAccounting();
    for (const n of [5, 3, 4, 6]) a.note(0, n);
    for (const n of [10, 11]) a.note(1, n);
    assert.deepEqual(a.check([2, 9], [6, 11]), { accounted: true, gaps: 0, firstGap: undefined });
    // Shard 1 numbered 12 and nobody journaled it: a write that went around the proxies.
    const r = a.check([2, 9], [6, 13]);
    assert.equal(r.accounted, false);
    assert.equal(r.gaps, 2);
    assert.deepEqual(r.firstGap, { shard: 1, seqNo: 12 });
    // Below the cursor is the rounds' business.
    assert.equal(a.check([2, 8], [6, 11]).accounted, false);
    assert.equal(a.check([1, 9], [6, 11]).accounted, false);
  });

  it('a shard with nothing new needs nothing; a shard without a cursor is never accounted', () => {
    const a = new JournalAccounting();
    assert.equal(a.check([7, 7], [7, 3]).accounted, true);
    assert.equal(a.check([7], [7, 8]).accounted, false);
    assert.equal(a.check([], [0]).accounted, false);
  });

  it('numbers the rounds settled are forgotten and not needed any more', () => {
    const a = new JournalAccounting();
    for (let n = 0; n <= 20; n++) a.note(0, n);
    a.settled([10]);
    assert.equal(a.check([10], [20]).accounted, true);
    assert.equal(a.check([5], [20]).accounted, false, 'forgotten numbers are not accounted any more');
  });

  it('stays bounded: the oldest numbers are forgotten, and a range reaching them is not accounted', () => {
    const a = new JournalAccounting(100);
    for (let n = 0; n < 1000; n++) a.note(0, n);
    assert.equal(a.check([989], [999]).accounted, true);
    assert.equal(a.check([500], [999]).accounted, false);
    // A number noted again after it was forgotten does not bring the range back.
    a.note(0, 10);
    assert.equal(a.check([9], [10]).accounted, false);
  });

  it('counts gaps up to a limit', () => {
    const a = new JournalAccounting();
    assert.equal(a.check([-1], [1_000_000], 50).gaps, 50);
  });
});
