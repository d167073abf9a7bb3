/** The core promise on real servers: an aliased index moves to a new mapping, every document as the transform says. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { MATRIX } from '../support/clusters.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { aliasTargets, scenario } from '../support/scenario.js';

for (const kind of MATRIX) {
  describe(`migrate on ${kind}`, () => {
    it('copies every document through the transform, switches both aliases, restores target settings', async () => {
      const s = await scenario(kind, 2500);
      const r = await runCli(['--json', 'run', s.specPath]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout.trim().split('\n').pop()!);
      const dropped = s.seeded.size - s.expected.size;
      assert.ok(dropped > 0, 'the fixture drops some documents');
      assert.equal(report.copied, s.expected.size);
      assert.equal(report.droppedByTransform, dropped);
      assert.equal(report.deadLetters, 0);

      const actual = await readAll(s.c, s.target);
      const d = diffDocs(s.expected, actual);
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));

      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
      const writeFlag = (await s.c.getAlias(s.writeAlias))[s.target]?.aliases[s.writeAlias]?.is_write_index;
      assert.equal(writeFlag, true, 'is_write_index travels with the write alias');

      // Temporary copy settings are gone; the spec's own values are back.
      const settings = Object.values(await s.c.getSettings(s.target))[0]!.settings;
      assert.equal(settings['index.refresh_interval'], '2s');
      assert.equal(settings['index.gc_deletes'], undefined);
      assert.equal(settings['index.number_of_replicas'], '0');

      const mapping = Object.values(await s.c.getMapping(s.target))[0]!.mappings as {
        properties: Record<string, { type: string }>;
      };
      assert.equal(mapping.properties.quantity?.type, 'integer');
      assert.equal(mapping.properties.qty, undefined);

      // The audit trail names every step that changed something.
      const audit = readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8');
      for (const e of [
        'target-created',
        'temporary-settings-applied',
        'copied',
        'target-settings-restored',
        'count-gate',
        'aliases-switched',
      ]) {
        assert.match(audit, new RegExp(`"event":"${e}"`));
      }
      // A second run is a no-op: everything is recorded as done.
      const again = await runCli(['--json', 'run', s.specPath]);
      assert.equal(again.code, 0, again.stderr);
      await s.c.close();
    });

    it('plan prints every step and changes nothing', async () => {
      const s = await scenario(kind, 50);
      const r = await runCli(['plan', s.specPath]);
      assert.equal(r.code, 0, r.stderr);
      for (const step of [
        'Inspect',
        'Dry run',
        'Create the target',
        'copy-time settings',
        'Copy every document',
        'Restore',
        'Gate',
        'Switch the aliases',
      ]) {
        assert.match(r.stdout, new RegExp(step));
      }
      assert.match(r.stdout, new RegExp(`remove ${s.readAlias}, ${s.writeAlias} from the source`));
      assert.equal(await s.c.indexExists(s.target), false);
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
      await s.c.close();
    });
  });
}
