/**
 * The copy without a transform sends each document's `_source` from the search page to the bulk body as the text
 * the source sent (src/cluster/search-page.ts): every document arrives id by id, with its routing, and a number
 * JSON.parse would round (a 64-bit id) arrives exactly as it was written.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../../src/cluster/client.js';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED } from '../support/clusters.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { startProxy } from '../support/proxy.js';
import { aliasTargets, scenario } from '../support/scenario.js';

// Written as text: JSON.stringify of a JS number could not hold them.
const EXACT: Array<[string, string]> = [
  ['big-long', '{"title":"big","qty":"1","tags":["a"],"n":9007199254740993,"code":"x"}'],
  [
    'escapes',
    '{"title":"a \\"quoted\\" \\\\ }{ ][ é 😀 \\u2028","qty":"2","tags":[],"n":-1,"deep":{"a":["1","x }"],"b":{"c":"]"}}}',
  ],
  ['empty-ish', '{"title":"","qty":"3","tags":[],"n":0,"nothing":null}'],
];

/** A document's `_source` as text, read without a JSON parser in between. */
async function rawSource(c: Cluster, index: string, id: string): Promise<string> {
  // filter_path makes the server re-render the source (escapes normalized): compare with the old index read the same way.
  return (
    await c.request<Buffer>({
      method: 'GET',
      path: `/${index}/_doc/${id}`,
      query: { filter_path: '_source' },
      raw: true,
    })
  ).body.toString('utf8');
}

for (const kind of (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k))) {
  describe(`copy without a transform on ${kind}`, () => {
    it('copies every document id by id, each _source byte for byte (numbers JSON.parse would round included)', async () => {
      const s = await scenario(kind, 1500, {
        transform: null,
        target: { mappingOverrides: null },
        copy: { batchDocs: 200, concurrency: 2 },
      });
      let nd = '';
      for (const [id, text] of EXACT)
        nd += `${JSON.stringify({ index: { _index: s.source, _id: id } })}\n${text}\n`;
      const b = await s.c.bulk(nd, { refresh: true });
      assert.equal(b.errors, false, JSON.stringify(b.items));
      const r = await runCli(['--json', 'run', s.specPath]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);

      // Every document, id by id, with its routing: the source as seeded (no transform) plus the exact ones.
      const expected = await readAll(s.c, s.source);
      assert.equal(expected.size, 1500 + EXACT.length);
      const d = diffDocs(expected, await readAll(s.c, s.target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      for (const [id] of EXACT)
        assert.equal(await rawSource(s.c, s.target, id), await rawSource(s.c, s.source, id), id);
      assert.match(await rawSource(s.c, s.target, 'big-long'), /"n":9007199254740993[,}]/);
      await s.c.close();
    });

    for (const strategy of ['seqno', 'proxy'] as const)
      it(`copies the changes ${strategy === 'seqno' ? 'the _seq_no rounds' : "the proxy's journal sync"} find as their text too`, async () => {
        const s = await scenario(kind, 600, {
          transform: null,
          target: { mappingOverrides: null },
          capture: { strategy, tailIntervalMs: 200 },
          cutover: { postponeFlagFile: 'hold-switch', holdBudgetMs: 5000 },
        });
        writeFileSync(join(s.dir, 'hold-switch'), '');
        const proxy = strategy === 'proxy' ? await startProxy(s.specPath) : undefined;
        const run = startCli(['--json', 'run', s.specPath]);
        let out = '';
        run.child.stderr!.on('data', (d) => {
          out += d;
        });
        try {
          // The copy is done and the switch waits: what is written now reaches the target only through capture.
          while (!/cutover postponed/.test(out)) {
            assert.equal(run.child.exitCode, null, out.slice(-1500));
            await sleep(100);
          }
          const via = proxy ? proxy.url : s.url;
          for (const [id, text] of EXACT) {
            const r = await fetch(`${via}/${s.writeAlias}/_doc/${id}`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json' },
              body: text,
            });
            assert.ok(r.status < 300, `${id}: ${r.status} ${await r.text()}`);
          }
          rmSync(join(s.dir, 'hold-switch'));
          const r = await run.done;
          assert.equal(r.code, 0, out.slice(-2000));
          assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
          const d = diffDocs(await readAll(s.c, s.source), await readAll(s.c, s.target));
          assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
          for (const [id] of EXACT)
            assert.equal(await rawSource(s.c, s.target, id), await rawSource(s.c, s.source, id), id);
          assert.match(await rawSource(s.c, s.target, 'big-long'), /"n":9007199254740993[,}]/);
        } finally {
          run.child.kill('SIGKILL');
          await proxy?.stop();
          await s.c.close();
        }
      });
  });
}
