/**
 * The throttle's concurrency limit: no more slots held at once than the limit, waiters let in as slots free or
 * the limit rises, a lowered limit applied to the next takers, a waiter that gives up (abort) leaves the queue.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Throttle } from '../../src/ops/throttle.js';

/** A slot asked for now, and whether it was granted yet. */
function asked(t: Throttle, signal?: AbortSignal) {
  const w = { granted: false, release: t.slot(signal) };
  void w.release.then(
    () => {
      w.granted = true;
    },
    () => undefined,
  );
  return w;
}

describe('throttle: bulks in flight', () => {
  it('holds no more slots at once than the limit; a freed slot lets the next in', async () => {
    const t = new Throttle({ ceiling: 0, concurrency: 2 });
    const a = await t.slot();
    const b = await t.slot();
    const third = asked(t);
    await sleep(20);
    assert.equal(third.granted, false, 'the third waits');
    a();
    a(); // a second release of the same slot changes nothing
    const rc = await third.release;
    const fourth = asked(t);
    await sleep(20);
    assert.equal(fourth.granted, false, 'a double release did not free a second slot');
    b();
    rc();
  });

  it('a raised limit lets waiters in at once; a lowered one applies to the next takers', async () => {
    const t = new Throttle({ ceiling: 0, concurrency: 4 });
    t.setConcurrency(1, 'test');
    assert.equal(t.view().concurrency, 1);
    const a = await t.slot();
    const second = asked(t);
    await sleep(20);
    assert.equal(second.granted, false);
    t.setConcurrency(2, 'test');
    (await second.release)();
    a();
  });

  it('kept within 1 and copy.concurrency', () => {
    const t = new Throttle({ ceiling: 0, concurrency: 3 });
    t.setConcurrency(0, 'test');
    assert.equal(t.view().concurrency, 1);
    t.setConcurrency(10, 'test');
    assert.equal(t.view().concurrency, 3);
    assert.equal(t.view().maxConcurrency, 3);
  });

  it('a waiter that aborts leaves the queue without taking a slot', async () => {
    const t = new Throttle({ ceiling: 0, concurrency: 1 });
    const a = await t.slot();
    const ac = new AbortController();
    const w = t.slot(ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(w, /stop/);
    a();
    const b = await t.slot();
    b();
  });
});
