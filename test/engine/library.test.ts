/**
 * The library API does everything the CLI does: a migration driven through src/index.ts alone (no child process),
 * with the same outcome messages, report, status, the ready-to-switch rule, typed errors with exit codes, and an
 * abort signal that stops a run as Ctrl-C does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec, Migration } from '../../src/index.js';
import { EXIT, exitCodeOf, Interrupted, PreflightError } from '../../src/store/errors.js';
import { MATRIX } from '../support/clusters.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { aliasTargets, scenario } from '../support/scenario.js';

for (const kind of MATRIX.filter((k) => k === 'es8')) {
  describe(`library API on ${kind}`, () => {
    it('plans, runs in manual mode, proves, reports, cuts over and rolls back without the CLI', async () => {
      const s = await scenario(kind, 1200, { cutover: { mode: 'manual', retentionHours: 0 } });
      const m = new Migration(loadSpec(s.specPath));
      try {
        const plan = await m.plan();
        assert.ok(plan.facts, 'a fresh plan inspects the source');
        assert.equal(plan.facts.docs, 1200);
        assert.deepEqual(
          plan.steps.map((st) => st.name),
          [
            'inspect',
            'sample',
            'create-target',
            'tune-target',
            'copy',
            'restore-target',
            'gate',
            'verify',
            'switch-aliases',
          ],
          'capture none adds no step of its own',
        );
        assert.match(m.notReadyToSwitch() ?? '', /finish `cutover run` first/);
        await assert.rejects(
          m.cutover(),
          (e: unknown) => e instanceof PreflightError && exitCodeOf(e) === EXIT.badInput,
        );

        const run = await m.run();
        assert.equal(run.outcome, 'awaiting-cutover');
        assert.match(run.message, /copied and proven document by document; run `cutover cutover <spec>`/);
        assert.equal(m.notReadyToSwitch(), undefined);
        const status = await m.status();
        assert.equal(status.report.phase, 'awaiting-cutover');
        assert.equal(status.report.copied, s.expected.size);
        assert.equal(status.lastError, undefined);
        assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);

        const proof = await m.verify();
        assert.equal(proof.passed, true);
        assert.match(
          proof.confidence,
          /nothing changed since the proof of .*versions of all 1200 source documents compared/,
        );

        const cut = await m.cutover();
        assert.equal(cut.outcome, 'cut-over');
        assert.match(cut.message, new RegExp(`point at ${s.target}`));
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
        const d = diffDocs(s.expected, await readAll(s.c, s.target));
        assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));

        const back = await m.rollback();
        assert.equal(back.result, 'aliases-restored');
        assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
        assert.equal(m.report().phase, 'rolled-back');
      } finally {
        await m.close();
        await s.c.close();
      }
    });

    it('an abort signal stops a run with Interrupted (exit 130) and the next run resumes', async () => {
      const s = await scenario(kind, 3000, { copy: { batchDocs: 100, maxDocsPerSecond: 1500 } });
      const m = new Migration(loadSpec(s.specPath));
      try {
        const ac = new AbortController();
        const running = m.run({ signal: ac.signal });
        // Abort once the copy has acknowledged something: the checkpoints then hold a partial copy.
        for (let i = 0; i < 200 && m.report().copied === 0; i++) await new Promise((r) => setTimeout(r, 100));
        ac.abort(new Error('interrupted by test'));
        await assert.rejects(
          running,
          (e: unknown) => e instanceof Interrupted && exitCodeOf(e) === EXIT.interrupted,
        );
        const partial = m.report();
        assert.ok(partial.copied > 0 && partial.copied < 3000, `partial copy, got ${partial.copied}`);
        const again = await m.run();
        assert.equal(again.outcome, 'cut-over');
        const d = diffDocs(s.expected, await readAll(s.c, s.target));
        assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      } finally {
        await m.close();
        await s.c.close();
      }
    });
  });
}
