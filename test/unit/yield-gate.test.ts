/** The backfill gives way to catch-up: when it waits, when it goes on, and that a dead catch-up never hangs it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { YieldGate } from '../../src/capture/yield-gate.js';
import { sleep } from '../../src/cluster/retry.js';

/** ms until `p` settles, or undefined if it is still pending after `within` ms */
async function settlesIn(p: Promise<unknown>, within: number): Promise<number | undefined> {
  const t0 = Date.now();
  const done = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    sleep(within).then(() => false),
  ]);
  return done ? Date.now() - t0 : undefined;
}

describe('yield gate (capture.copyYields)', () => {
  it('never holds without a running catch-up loop or without a threshold', async () => {
    const idle = new YieldGate(10);
    assert.notEqual(await settlesIn(idle.wait(), 50), undefined);
    const off = new YieldGate(undefined);
    off.loopStarted(Date.now() - 10_000);
    assert.notEqual(await settlesIn(off.wait(), 50), undefined);
    assert.equal(off.holds, 0);
  });

  it('lets the copy go on while the rounds are within the threshold', async () => {
    const g = new YieldGate(1000);
    g.loopStarted();
    g.roundFinished(Date.now());
    assert.notEqual(await settlesIn(g.wait(), 50), undefined);
    assert.equal(g.holds, 0);
  });

  it('holds every waiter while the rounds are behind, as one hold, until a round catches up', async () => {
    const g = new YieldGate(100);
    g.loopStarted(Date.now() - 500);
    const a = g.wait();
    const b = g.wait();
    assert.equal(
      await settlesIn(Promise.race([a, b]), 150),
      undefined,
      'nobody may pass while 500 ms behind',
    );
    assert.ok(g.lagNowMs() >= 500);
    g.roundFinished(Date.now());
    assert.notEqual(await settlesIn(Promise.all([a, b]), 200), undefined);
    assert.equal(g.holds, 1);
    assert.ok(g.heldMs >= 150, `held ${g.heldMs} ms`);
  });

  it('never starves the copy when every round is slower than the threshold', async () => {
    const g = new YieldGate(100);
    g.loopStarted();
    const now = Date.now();
    g.roundFinished(now - 300, now); // a 300 ms round: the lag right after it is 300 ms, over the threshold
    assert.notEqual(await settlesIn(g.wait(), 50), undefined, 'a round-sized lag is no backlog');
    assert.equal(g.holds, 0);
    await sleep(250); // the next round runs 550 ms so far, well over one and a half of the last
    const held = g.wait();
    assert.equal(await settlesIn(held, 50), undefined, 'a backlog holds the copy');
    g.roundFinished(Date.now() - 50);
    assert.notEqual(await settlesIn(held, 200), undefined);
  });

  it('releases waiters when the loop ends, and rethrows the error that ended it', async () => {
    const g = new YieldGate(100);
    g.loopStarted(Date.now() - 500);
    const waiting = g.wait();
    waiting.catch(() => undefined);
    assert.equal(await settlesIn(waiting, 100), undefined);
    g.loopEnded(new Error('source unreachable'));
    await assert.rejects(waiting, /source unreachable/);

    const clean = new YieldGate(100);
    clean.loopStarted(Date.now() - 500);
    const w = clean.wait();
    clean.loopEnded();
    await w;
  });

  it('stops waiting when the run is aborted', async () => {
    const g = new YieldGate(100);
    g.loopStarted(Date.now() - 500);
    const ac = new AbortController();
    const w = g.wait(ac.signal);
    w.catch(() => undefined);
    ac.abort();
    await assert.rejects(w);
  });
});
