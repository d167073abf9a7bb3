/**
 * The copy's bulks in flight follow the capture's lag: one at the start, one more after a run of calm batches,
 * halved on a batch over half the target; the throttle keeps to the smaller of its own limit and this cap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LagPacer, nextPace } from '../../src/ops/lag-pacer.js';
import { Throttle } from '../../src/ops/throttle.js';

describe('lag pacer', () => {
  it('grows by one after three calm batches, halves over half the target, holds in between', () => {
    let s = { cap: 1, calm: 0 };
    for (let i = 0; i < 2; i++) s = nextPace(s, 100, 1000, 4);
    assert.deepEqual(s, { cap: 1, calm: 2 });
    s = nextPace(s, 100, 1000, 4);
    assert.deepEqual(s, { cap: 2, calm: 0 });
    for (let i = 0; i < 9; i++) s = nextPace(s, 100, 1000, 4);
    assert.equal(s.cap, 4);
    // Never above the copy's own concurrency.
    for (let i = 0; i < 9; i++) s = nextPace(s, 100, 1000, 4);
    assert.equal(s.cap, 4);
    // Between a quarter and a half of the target: hold, and the calm run starts over.
    s = nextPace({ cap: 3, calm: 2 }, 400, 1000, 4);
    assert.deepEqual(s, { cap: 3, calm: 0 });
    s = nextPace(s, 600, 1000, 4);
    assert.deepEqual(s, { cap: 1, calm: 0 });
    assert.deepEqual(nextPace(s, 5000, 1000, 4), { cap: 1, calm: 0 });
  });

  it('the throttle lets no more bulks through than the cap, and frees them when the cap goes', async () => {
    const t = new Throttle({ ceiling: 0, concurrency: 4 });
    const p = new LagPacer(t, 1000, 4);
    assert.equal(t.view().captureCap?.concurrency, 1);
    const first = await t.slot();
    let second = false;
    const waiting = t.slot().then((r) => {
      second = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(second, false, 'a second bulk waits under a cap of 1');
    for (let i = 0; i < 3; i++) p.batch(50);
    assert.equal(t.view().captureCap?.concurrency, 2);
    (await waiting)();
    first();
    p.batch(900);
    assert.equal(p.halvings, 1);
    assert.equal(p.high, 2);
    p.stop();
    assert.equal(t.view().captureCap, undefined);
    const all = await Promise.all([t.slot(), t.slot(), t.slot(), t.slot()]);
    for (const r of all) r();
  });
});
