/**
 * A pause of the throttle pauses a live migration cleanly: the copy's checkpoints and the catch-up rounds both stop
 * moving while it holds, and after the resume the run finishes with every document in place.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import { sleep } from '../../src/cluster/retry.js';
import { loadSpec, Migration } from '../../src/index.js';
import { MATRIX } from '../support/clusters.js';
import { diffDocs, readAll } from '../support/data.js';
import { trackedScenarios } from '../support/scenario.js';

const t = trackedScenarios();

/** Poll `cond`; the limit only keeps a broken run from hanging the suite. */
async function until(what: string, cond: () => boolean, limitMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > limitMs) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

for (const kind of MATRIX.filter((k) => k === 'es8' || k === 'os3')) {
  describe(`pause on ${kind}`, () => {
    afterEach(t.drop);

    it('holds the copy and the catch-up rounds of a seqno capture, and the run finishes after the resume', async () => {
      const s = await t.scenario(kind, 3000, {
        // Slow on purpose: the copy is still going when the pause comes.
        copy: { batchDocs: 50, concurrency: 1, maxDocsPerSecond: 300, throttle: { enabled: false } },
        capture: { strategy: 'seqno', tailIntervalMs: 100 },
      });
      const m = new Migration(loadSpec(s.specPath));
      const rounds = () => {
        try {
          return JSON.parse(readFileSync(m.store.capturePath, 'utf8')).rounds as number;
        } catch {
          return 0;
        }
      };
      try {
        const run = m.run();
        run.catch(() => undefined);
        await until('the copy and the rounds to start', () => m.report().copied > 0 && rounds() > 0);
        m.throttle.pause('operator', 'test pause');
        // The page and the round in flight finish; then nothing moves.
        await sleep(1500);
        const copied = m.report().copied;
        const r = rounds();
        await sleep(1500);
        assert.equal(m.report().copied, copied, 'no page copied while paused');
        assert.equal(rounds(), r, 'no catch-up round while paused');
        assert.ok(copied < s.expected.size, 'paused in the middle of the copy');

        m.throttle.resume('operator');
        const done = await run;
        assert.equal(done.outcome, 'cut-over');
        assert.ok(rounds() > r, 'the rounds went on after the resume');
        const d = diffDocs(s.expected, await readAll(s.c, s.target));
        assert.deepEqual(d, { missing: [], extra: [], changed: [] });
      } finally {
        await m.close();
      }
    });
  });
}
