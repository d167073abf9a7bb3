/**
 * Revert window: after a live switch the new index's changes are copied back to the old one, and a rollback
 * inside the window (from another process, while `run` keeps the window open) drains them under a short freeze
 * and moves the aliases back. The application writes through the write alias the whole time: before the switch
 * (old index), after it (new index) and after the rollback (old index again). The old index must then hold
 * exactly the last acknowledged state of every document.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { application, differencesAsWritten, wroteAndDeletedOn } from '../support/app-writer.js';
import { runCli, startCli } from '../support/cli.js';
import { readAll } from '../support/data.js';
import { aliasTargets, scenario } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`revert window on ${kind}`, () => {
    it('rolls back inside the window without losing a write made after the switch', async () => {
      const s = await scenario(kind, 1000, {
        capture: { strategy: 'seqno', tailIntervalMs: 200 },
        cutover: { revertWindowMinutes: 30, freezeBudgetMs: 5000 },
      });
      let stop = false;
      const app = application(s, () => stop);
      const run = startCli(['--json', 'run', s.specPath]);
      let out = '';
      run.child.stderr!.on('data', (d) => {
        out += d;
      });
      while (!/revert window open until/.test(out)) {
        assert.equal(run.child.exitCode, null, `run ended early: ${out.slice(-1500)}`);
        await sleep(100);
      }
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
      // The application writes to the new index for a while; the window copies it back meanwhile.
      const before = app.log.acked;
      while (app.log.acked < before + 150) await sleep(100);

      const rb = await runCli(['rollback', s.specPath]);
      assert.equal(rb.code, 0, rb.stderr.slice(-1500));
      assert.match(rb.stdout, /aliases point at .* again/);
      const r = await run.done;
      assert.equal(r.code, 0, `run hands over and ends cleanly: ${r.stderr.slice(-1500)}`);
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);

      // And the application keeps writing, now to the old index again.
      const after = app.log.acked;
      while (app.log.acked < after + 50) await sleep(100);
      stop = true;
      await app.done;
      assert.deepEqual(app.log.otherFailures.slice(0, 5), []);
      assert.deepEqual(
        wroteAndDeletedOn(app.log, s.target),
        { writes: true, deletes: true },
        'the new index got both',
      );
      const old = await readAll(s.c, s.source);
      const diff = differencesAsWritten(app.log, old, { all: true });
      // The known gap of seqno capture (docs/live-writes.md, "Known gap"): a document the transform left on the old
      // index, written and then deleted on the new index between two reverse rounds, leaves no trace there (a
      // tombstone is not searchable) and comes back on the rollback. Only that document may come back: still
      // the left-behind copy (drop: true), its last acknowledged write a delete on the new index.
      const gap = diff.resurrected.filter(
        (id) => old.get(id)?.source.drop === true && app.log.state.get(id)?.index === s.target,
      );
      if (gap.length > 0)
        console.log(`known gap (seqno capture): ${gap.join(', ')} came back on the rollback`);
      assert.deepEqual(
        { ...diff, resurrected: diff.resurrected.filter((id) => !gap.includes(id)) },
        { lost: [], stale: [], resurrected: [], extra: [] },
      );
      const rev = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'revert.json'), 'utf8'));
      assert.ok(rev.applied > 0, 'the reverse sync copied writes back');
      assert.equal(rev.freezes.filter((f: { switched: boolean }) => f.switched).length, 1);
      for (const index of [s.source, s.target]) {
        const st = Object.values(await s.c.getSettings(index))[0]!.settings;
        assert.notEqual(st['index.blocks.write'], 'true', `${index} is writable`);
      }
      await s.c.close();
    });
  });
}
