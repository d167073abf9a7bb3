/** A document the new mapping rejects is never dropped silently: it is a dead letter with its reason, and cutover waits. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { aliasTargets, scenario } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`dead letters on ${kind}`, () => {
    it('writes the rejected document and its reason to the dead-letter file and refuses cutover', async () => {
      // `code` becomes an integer in the target: the one document whose code is "abc" cannot be indexed.
      const s = await scenario(kind, 400, { copy: { sampleSize: 0 } });
      await s.c.bulk(
        `${JSON.stringify({ index: { _index: s.source, _id: 'bad' } })}\n${JSON.stringify({ title: 'bad', qty: '1', tags: [], n: 1, code: 'abc' })}\n`,
        { refresh: true },
      );
      s.writeSpec({
        copy: { sampleSize: 0 },
        target: { mappingOverrides: { properties: { code: { type: 'integer' } } } },
      });
      const r = await runCli(['--json', 'run', s.specPath]);
      assert.equal(r.code, 3, `exit 3 (gate refused) expected; stderr: ${r.stderr.slice(-400)}`);
      assert.match(r.stderr, /cutover refused: 1 document\(s\) were rejected/);
      const letters = readFileSync(join(s.dir, 'state', 'm1', 'dead-letters.ndjson'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(letters.length, 1);
      assert.equal(letters[0].id, 'bad');
      assert.match(letters[0].type, /(mapper|document)_parsing_exception/);
      assert.match(letters[0].reason, /code/);
      assert.equal(letters[0].doc.quantity, 1, 'the transformed document is kept for replay');
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source], 'aliases untouched');
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
      // Every other document made it, document by document.
      const d = diffDocs(s.expected, await readAll(s.c, s.target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));

      // Running again does not wave it through; accepting the loss explicitly does.
      assert.equal((await runCli(['run', s.specPath])).code, 3);
      const ok = await runCli(['run', s.specPath, '--max-dead-letters', '1']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
      await s.c.close();
    });

    it('finds a rejecting mapping in the sample before anything is created', async () => {
      const s = await scenario(kind, 120);
      await s.c.bulk(
        `${JSON.stringify({ index: { _index: s.source, _id: 'bad' } })}\n${JSON.stringify({ title: 'bad', qty: '1', tags: [], n: 1, code: 'abc' })}\n`,
        { refresh: true },
      );
      s.writeSpec({ target: { mappingOverrides: { properties: { code: { type: 'integer' } } } } });
      const r = await runCli(['run', s.specPath]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /rejects 1 of 121 sampled documents/);
      assert.match(r.stderr, /id "bad"/);
      assert.match(r.stderr, /\[code\]/);
      assert.equal(await s.c.indexExists(s.target), false, 'no target created');
      assert.equal(await s.c.indexExists(`${s.target}-cutover-sample`), false, 'scratch index removed');
      await s.c.close();
    });
  });
}
