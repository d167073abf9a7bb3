/**
 * The runner's control reaches its workers: what the runner publishes (its own pauses, never a `runner` one; its
 * ceiling; the processes copying) and takes as its own share, and a worker holding a pause exactly while the
 * published list is not empty, taking its share of the ceiling, and keeping its state when the bucket fails.
 * The bucket here is a map; test/engine/workers-pause.test.ts runs the same through NATS with real processes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { controlOf, followControl, shareControl } from '../../src/copy/shared-control.js';
import type { ControlDecision, SharedControl, SliceBoard } from '../../src/copy/slice-board.js';
import { Throttle } from '../../src/ops/throttle.js';

function board() {
  const me = { id: 'r1', host: 'h', pid: 7 };
  const b = {
    copyingNow: 1,
    published: [] as ControlDecision[],
    current: undefined as SharedControl | undefined,
    failing: false,
    async publishControl(c: ControlDecision) {
      if (b.failing) throw new Error('no answer');
      b.published.push(c);
      b.current = { ...c, by: me, at: new Date().toISOString() };
    },
    async control() {
      if (b.failing) throw new Error('no answer');
      return b.current;
    },
  };
  return b;
}

describe('shared control', () => {
  it('the runner publishes each change of its pauses and ceiling, and takes its share of the ceiling', async () => {
    const b = board();
    const t = new Throttle({ ceiling: 900 });
    t.pause('runner', 'never published');
    const s = shareControl(t, b as unknown as SliceBoard, () => {});
    t.pause('operator', 'ctl pause');
    t.resume('operator');
    b.copyingNow = 3;
    await sleep(1100);
    assert.equal(t.view().rate, 300, 'a third of 900 with three processes copying');
    t.setCeiling(600, 'ctl rate 600');
    assert.equal(t.view().rate, 200);
    await s.stop();
    assert.deepEqual(
      b.published.map((p) => [p.pausedBy.map((x) => x.by).join(','), p.ceiling, p.processes]),
      [
        ['operator', 900, 1],
        ['', 900, 1],
        ['', 900, 3],
        ['', 600, 3],
      ],
    );
    assert.equal(t.view().rate, 600, 'its whole ceiling once the shared copy is over');
    assert.deepEqual(controlOf(t, 0).processes, 1);
  });

  it('a worker holds a runner pause while the runner has any, takes its share, and keeps its state while the bucket fails', async () => {
    const b = board();
    const w = new Throttle({ ceiling: 5000 });
    await b.publishControl({ pausedBy: [{ by: 'flag-file', why: 'x exists' }], ceiling: 800, processes: 2 });
    const changes: boolean[] = [];
    const shares: number[] = [];
    let errors = 0;
    const f = await followControl(w, b as unknown as SliceBoard, {
      intervalMs: 10,
      onChange: (p) => changes.push(p),
      onShare: (r) => shares.push(r),
      onError: () => errors++,
    });
    // Paused and at its share before followControl resolved: no page is taken first.
    assert.deepEqual(
      w.view().pausedBy.map((p) => p.by),
      ['runner'],
    );
    assert.match(w.view().pausedBy[0]!.why, /the runner \(h pid 7\) is paused: flag-file: x exists/);
    assert.equal(w.view().ceiling, 800);
    assert.equal(w.view().rate, 400);
    b.failing = true;
    await sleep(50);
    assert.equal(w.view().paused, true, 'an unanswered look changes nothing');
    assert.equal(errors, 1, 'an outage is said once, not at every look');
    b.failing = false;
    await b.publishControl({ pausedBy: [], ceiling: 800, processes: 4 });
    await sleep(50);
    assert.equal(w.view().paused, false);
    assert.equal(w.view().rate, 200);
    w.pause('operator', 'its own');
    await b.publishControl({ pausedBy: [{ by: 'operator', why: 'ctl pause' }], ceiling: 0, processes: 4 });
    await sleep(50);
    assert.equal(w.view().rate, 0, 'no ceiling: unlimited');
    await b.publishControl({ pausedBy: [], ceiling: 0, processes: 4 });
    await sleep(50);
    f.stop();
    assert.deepEqual(
      w.view().pausedBy.map((p) => p.by),
      ['operator'],
      "lifting the runner's pause leaves the worker's own",
    );
    assert.deepEqual(changes, [true, false, true, false]);
    assert.deepEqual(shares, [400, 200]);
  });
});
