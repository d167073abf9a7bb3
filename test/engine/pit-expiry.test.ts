/**
 * A long pause outlives the PIT's keep_alive (here: the cutover process is SIGSTOPped): the expired context is
 * detected and the slice resumes from its checkpoint with a new PIT, losing nothing. The test servers run with
 * search.keep_alive_interval=1s so that an expired context is reaped within a second. OpenSearch 3 keeps a PIT
 * at least 30 s whatever keep_alive asks (observed: `GET _search/point_in_time/_all` shows keep_alive 30000), so
 * there the contexts are removed during the pause with `DELETE _search/point_in_time/_all`: the same 404
 * search_context_missing_exception reaches cutover.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCli } from '../support/cli.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { scenario } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`expired point in time on ${kind}`, () => {
    it('reopens the PIT at the checkpoint after a pause longer than keep_alive', async () => {
      const s = await scenario(kind, 5000, {
        copy: { keepAlive: '1s', batchDocs: 100, concurrency: 3, maxDocsPerSecond: 1000 },
      });
      const { child, done } = startCli(['--json', 'run', s.specPath]);
      // Pause only once the copy is under way (a checkpoint exists), so a PIT is open.
      const checkpoints = join(s.dir, 'state', 'm1', 'checkpoints');
      for (let i = 0; i < 300 && !existsSync(checkpoints); i++) await sleep(50);
      assert.ok(existsSync(checkpoints), 'copy started');
      child.kill('SIGSTOP');
      await sleep(4000);
      if (kind === 'os3') await s.c.request({ method: 'DELETE', path: '/_search/point_in_time/_all' });
      child.kill('SIGCONT');
      const r = await done;
      assert.equal(r.code, 0, r.stderr.slice(-1000));
      assert.match(
        r.stderr,
        /search context expired \(keep_alive 1s outlived\); reopening at the checkpoint/,
      );
      const d = diffDocs(s.expected, await readAll(s.c, s.target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      await s.c.close();
    });
  });
}
