/**
 * A safety-net round passes over the `_seq_no`s the journal accounts for, leaves a young gap to later rounds, reads
 * an old one, and never claims a shard is more current than the last round whose marks its cursor reached.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccountedSkips } from '../../src/capture/accounted-skips.js';
import { JournalAccounting } from '../../src/capture/journal-accounting.js';

function setup(grace = 1000) {
  const a = new JournalAccounting();
  const s = new AccountedSkips((shard, from, upTo) => a.accountedUpTo(shard, from, upTo), grace);
  return { a, s };
}

describe('accounted skips', () => {
  it('the accounted prefix of a range stops at the first number missing or forgotten', () => {
    const a = new JournalAccounting(10);
    for (const n of [3, 4, 5, 7]) a.note(0, n);
    assert.equal(a.accountedUpTo(0, 2, 9), 5);
    assert.equal(a.accountedUpTo(0, 2, 4), 4);
    assert.equal(a.accountedUpTo(0, 5, 9), 5);
    assert.equal(a.accountedUpTo(1, 2, 9), 2);
    // Forgetting the oldest numbers: a range reaching them is not accounted.
    for (let n = 8; n < 20; n++) a.note(0, n);
    assert.equal(a.accountedUpTo(0, 2, 19), 2);
  });

  it('a shard nothing is known of is read when it has a gap; a fully accounted one is passed over', () => {
    const { a, s } = setup();
    for (const n of [1, 2, 3]) a.note(0, n);
    assert.deepEqual(s.decide(0, 0, 3, 100), { to: 3, read: false });
    a.note(1, 1);
    // Shard 1 has a gap at 2 and this process never saw it caught up: read, from the accounted prefix.
    assert.deepEqual(s.decide(1, 0, 4, 100), { to: 1, read: true });
    assert.equal(s.skipped, 1);
    assert.equal(s.deferred, 0);
  });

  it('a young gap waits for later rounds, an old one is read', () => {
    const { a, s } = setup(1000);
    s.caughtUp(0, 0);
    for (const n of [1, 2]) a.note(0, n);
    // 3 is missing: numbered, its answer not yet journaled.
    assert.deepEqual(s.decide(0, 0, 5, 100), { to: 2, read: false });
    a.note(0, 3);
    // 3 arrived, 5 is still missing (4 came): the new first gap is young again.
    a.note(0, 4);
    assert.deepEqual(s.decide(0, 2, 6, 600), { to: 4, read: false });
    // 5 never comes (a writer that bypassed the proxy): read once it is older than the grace.
    assert.deepEqual(s.decide(0, 4, 7, 1500), { to: 4, read: false });
    assert.deepEqual(s.decide(0, 4, 7, 1600), { to: 4, read: true });
    assert.equal(s.deferred, 3);
  });

  it("a round asked to cover everything before it (the proof's re-checks) reads a young gap at once", () => {
    const { a, s } = setup(1000);
    s.caughtUp(0, 0);
    for (const n of [1, 2]) a.note(0, n);
    // 3 is missing and young: an ordinary round leaves it, a round that must not leave it reads from it now.
    assert.deepEqual(s.decide(0, 0, 5, 100, false), { to: 2, read: true });
    assert.equal(s.deferred, 0);
    // The accounted prefix is still passed over, and the next ordinary round defers as before.
    assert.deepEqual(s.decide(0, 2, 5, 200), { to: 2, read: false });
    assert.equal(s.deferred, 1);
  });

  it('covered until the latest round whose marks the cursor reached', () => {
    const { a, s } = setup(10_000);
    s.caughtUp(0, 50);
    s.caughtUp(1, 50);
    // Round at 100: shard 0 stops at 2 (3 missing), shard 1 has nothing new.
    for (const n of [1, 2]) a.note(0, n);
    s.decide(0, 0, 5, 100);
    s.decide(1, 9, 9, 100);
    assert.equal(s.coveredUntil(100), 50);
    // Round at 200: shard 0 reaches 6, past the marks (5) of the round at 100, short of its own (8).
    for (const n of [3, 4, 5, 6]) a.note(0, n);
    s.decide(0, 2, 8, 200);
    s.decide(1, 9, 9, 200);
    assert.equal(s.coveredUntil(200), 100);
    // Round at 300: every number up to its marks accounted.
    for (const n of [7, 8, 9]) a.note(0, n);
    s.decide(0, 6, 9, 300);
    s.decide(1, 9, 9, 300);
    assert.equal(s.coveredUntil(300), 300);
  });

  it('a gap that moves up every round (writes always in flight) never makes a read; covered one round behind', () => {
    const { a, s } = setup(1000);
    s.caughtUp(0, 0);
    for (let k = 1; k <= 200; k++) {
      // Every round the newest number is still on its way into the journal; the one before it has arrived.
      a.note(0, k);
      const d = s.decide(0, k - 1, k + 1, k * 10);
      assert.deepEqual(d, { to: k, read: false });
      if (k > 1) assert.equal(s.coveredUntil(k * 10), (k - 1) * 10);
    }
  });

  it('a gap that stays put is read once its pending marks fill up, whatever the grace', () => {
    const { a, s } = setup(Number.MAX_SAFE_INTEGER);
    s.caughtUp(0, 0);
    a.note(0, 1);
    let rounds = 0;
    while (!s.decide(0, 1, 3 + rounds, 10 * (rounds + 1)).read) rounds++;
    assert.equal(rounds, 64);
    assert.equal(s.coveredUntil(10_000), 0);
  });
});
