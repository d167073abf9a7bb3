/** Versions decide who wins: an older copy never overwrites a newer state already on the target. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { scenario } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`versions on ${kind}`, () => {
    it('keeps documents written to the target with a newer version than the copy brings', async () => {
      const s = await scenario(kind, 600);
      // Create the target first (same mappings the migration would) and put newer states of 20 documents in
      // it, as a capture or a writer would: external versions above anything the source's _seq_no gives.
      // The proof would rightly flag these 20 documents (the target differs from the source on purpose here),
      // so it is off for this test of the writer's versioning.
      s.writeSpec({ target: { reuse: true }, verify: { mode: 'off' } });
      const plan = await runCli(['--json', 'plan', s.specPath]);
      assert.equal(plan.code, 0, plan.stderr);
      await s.c.createIndex(s.target, {
        settings: { number_of_shards: 2, number_of_replicas: 0 },
        mappings: {
          properties: {
            title: { type: 'text' },
            tags: { type: 'keyword' },
            n: { type: 'long' },
            drop: { type: 'boolean' },
            quantity: { type: 'integer' },
            slot: { type: 'integer' },
          },
        },
      });
      let nd = '';
      const newer = [...s.expected.keys()].slice(0, 20);
      for (const id of newer) {
        const doc = { title: 'newer state', tags: ['z'], n: -1, quantity: 0, slot: 0 };
        const routing = s.expected.get(id)!.routing;
        nd += `${JSON.stringify({ index: { _index: s.target, _id: id, routing, version: 1_000_000, version_type: 'external' } })}\n${JSON.stringify(doc)}\n`;
        s.expected.set(id, { source: doc, routing });
      }
      const w = await s.c.bulk(nd, { refresh: true });
      assert.equal(w.errors, false);

      const r = await runCli(['--json', 'run', s.specPath]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.equal(report.versionConflicts, 20, 'each stale copy is counted as a conflict, not an error');
      const d = diffDocs(s.expected, await readAll(s.c, s.target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      await s.c.close();
    });
  });
}
