/**
 * The runner's pauses reach its workers: what the runner publishes (its own pauses, never a `runner` one), and a
 * worker holding a pause exactly while the published list is not empty, keeping its state when the bucket fails.
 * The bucket here is a map; test/engine/workers-pause.test.ts runs the same through NATS with real processes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { followPauses, pausesOf, sharePauses } from '../../src/copy/shared-pauses.js';
import type { SharedPauses, SliceBoard } from '../../src/copy/slice-board.js';
import { Throttle } from '../../src/ops/throttle.js';

function board() {
  const me = { id: 'r1', host: 'h', pid: 7 };
  const b = {
    published: [] as SharedPauses['pausedBy'][],
    current: undefined as SharedPauses | undefined,
    failing: false,
    async publishPauses(pausedBy: SharedPauses['pausedBy']) {
      if (b.failing) throw new Error('no answer');
      b.published.push(pausedBy);
      b.current = { pausedBy, by: me, at: new Date().toISOString() };
    },
    async pauses() {
      if (b.failing) throw new Error('no answer');
      return b.current;
    },
  };
  return b;
}

describe('shared pauses', () => {
  it('the runner publishes each change of its pauses, without a runner pause of its own', async () => {
    const b = board();
    const t = new Throttle({ ceiling: 0 });
    t.pause('runner', 'never published');
    const s = sharePauses(t, b as unknown as SliceBoard, () => {});
    t.pause('operator', 'ctl pause');
    t.pause('watchdog', 'red');
    t.resume('operator');
    t.resume('watchdog');
    await s.stop();
    assert.deepEqual(
      b.published.map((p) => p.map((x) => x.by)),
      [['operator'], ['operator', 'watchdog'], ['watchdog'], []],
    );
    assert.deepEqual(pausesOf(t), []);
  });

  it('a worker holds a runner pause while the runner has any, and keeps its state while the bucket fails', async () => {
    const b = board();
    const w = new Throttle({ ceiling: 0 });
    await b.publishPauses([{ by: 'flag-file', why: 'x exists' }]);
    const changes: boolean[] = [];
    let errors = 0;
    const f = await followPauses(w, b as unknown as SliceBoard, {
      intervalMs: 10,
      onChange: (p) => changes.push(p),
      onError: () => errors++,
    });
    // Paused before followPauses resolved: no page is taken first.
    assert.deepEqual(
      w.view().pausedBy.map((p) => p.by),
      ['runner'],
    );
    assert.match(w.view().pausedBy[0]!.why, /the runner \(h pid 7\) is paused: flag-file: x exists/);
    b.failing = true;
    await sleep(50);
    assert.equal(w.view().paused, true, 'an unanswered look changes nothing');
    assert.equal(errors, 1, 'an outage is said once, not at every look');
    b.failing = false;
    await b.publishPauses([]);
    await sleep(50);
    assert.equal(w.view().paused, false);
    w.pause('operator', 'its own');
    await b.publishPauses([{ by: 'operator', why: 'ctl pause' }]);
    await sleep(50);
    await b.publishPauses([]);
    await sleep(50);
    f.stop();
    assert.deepEqual(
      w.view().pausedBy.map((p) => p.by),
      ['operator'],
      "lifting the runner's pause leaves the worker's own",
    );
    assert.deepEqual(changes, [true, false, true, false]);
  });
});
