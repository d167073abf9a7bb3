/** Preflight on real servers: what `plan` finds before anything changes. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { uniqueName } from '../support/clusters.js';
import { aliasTargets, scenario } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`preflight on ${kind}`, () => {
    it('classifies mapping changes and catches a mapping that rejects a sampled document, naming the field and id', async () => {
      const s = await scenario(kind, 300, {
        target: { mappingOverrides: { properties: { n: { type: 'integer' }, title: { type: 'keyword' } } } },
      });
      const plan = await runCli(['--json', 'plan', s.specPath]);
      assert.equal(plan.code, 0, plan.stderr);
      const { facts } = JSON.parse(plan.stdout);
      const messages = facts.findings.map((f: { message: string }) => f.message);
      assert.ok(
        messages.includes('n: long -> integer: values outside the integer range are rejected [breaking]'),
        messages.join('\n'),
      );
      assert.ok(
        messages.some((m: string) => m.startsWith('title: text -> keyword') && m.endsWith('[lossy]')),
      );
      assert.ok(messages.some((m: string) => m.startsWith('qty: removed (keyword) [lossy]')));
      assert.ok(messages.some((m: string) => /sample of 300 documents indexes cleanly/.test(m)));

      // One document whose n does not fit an integer: plan finds it in the sample and changes nothing.
      await s.c.bulk(
        `${JSON.stringify({ index: { _index: s.source, _id: 'too-big' } })}\n${JSON.stringify({ title: 'x', qty: '1', tags: [], n: 2 ** 40 })}\n`,
        { refresh: true },
      );
      s.writeSpec({
        copy: { sampleSize: 1000 },
        target: { mappingOverrides: { properties: { n: { type: 'integer' } } } },
      });
      const refused = await runCli(['plan', s.specPath]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /rejects 1 of 301 sampled documents/);
      assert.match(refused.stderr, /id "too-big": (mapper|document)_parsing_exception: .*\[n\]/);
      assert.equal(await s.c.indexExists(s.target), false);
      assert.equal(await s.c.indexExists(`${s.target}-cutover-sample`), false);
      await s.c.close();
    });

    it('reports a transform that throws on a sample document, with the id and the error', async () => {
      const s = await scenario(kind, 50);
      writeFileSync(
        join(s.dir, 'throwing.mjs'),
        `export default (doc, meta) => { if (meta.id === 'd7') throw new Error('qty is not a number here'); return doc; };\n`,
      );
      s.writeSpec({ transform: './throwing.mjs', target: { mappingOverrides: null } });
      const r = await runCli(['plan', s.specPath]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /id "d7": transform_error: qty is not a number here/);
      assert.equal(await s.c.indexExists(s.target), false);
      await s.c.close();
    });

    it('refuses a source whose _source is disabled or filtered', async () => {
      const s = await scenario(kind, 10);
      for (const source of [{ enabled: false }, { excludes: ['secret'] }]) {
        const index = uniqueName('nosource');
        await s.c.createIndex(index, { mappings: { _source: source } });
        s.writeSpec({ source: { index }, aliases: null, target: { index: `${index}-v2` } });
        const r = await runCli(['plan', s.specPath, '--force']);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /_source (disabled|\(includes\/excludes\))/);
      }
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
      await s.c.close();
    });
  });
}
