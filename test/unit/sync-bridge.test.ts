import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { syncUntilCopy } from '../../src/capture/strategies/proxy.js';
import { emptyResult } from '../../src/copy/writer.js';

describe('journal sync before the copy (syncUntilCopy)', () => {
  it('passes one after another until stopped, never two at once, none after stop', async () => {
    let passes = 0;
    let running = 0;
    let most = 0;
    const bridge = syncUntilCopy({
      sync: async () => {
        running++;
        most = Math.max(most, running);
        await sleep(5);
        running--;
        passes++;
        return emptyResult();
      },
    });
    await sleep(300);
    await bridge.stop();
    const at = passes;
    assert.ok(at >= 2, `passes: ${at}`);
    assert.equal(bridge.done.passes, at);
    assert.equal(most, 1);
    await sleep(120);
    assert.equal(passes, at, 'no pass after stop');
  });

  it('keeps the error that ended it for stop(), without an unhandled rejection meanwhile', async () => {
    let n = 0;
    const bridge = syncUntilCopy({
      sync: async () => {
        if (++n === 2) throw new Error('source unreachable');
        return emptyResult();
      },
    });
    await sleep(200);
    assert.equal(n, 2, 'no pass after the error');
    await assert.rejects(bridge.stop(), /source unreachable/);
  });

  it('ends when the run is aborted', async () => {
    const ac = new AbortController();
    const bridge = syncUntilCopy({ sync: async () => emptyResult() }, ac.signal);
    await sleep(20);
    ac.abort();
    await assert.rejects(bridge.stop());
  });
});
