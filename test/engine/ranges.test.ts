/**
 * More streams than shards: with copy.concurrency above the shard count, a large shard is read in `_seq_no` ranges
 * side by side, each with its own checkpoint. A run killed with kill -9 in the middle resumes every range from its
 * own checkpoint; the target then holds every document id by id, and documents written between the plan and the
 * point in time (above every range but the last, open one) are copied too.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { runCli } from '../support/cli.js';
import { EXPECTED, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, diffDocs, readAll, seed, summarize } from '../support/data.js';

const DOCS = 42_000;

for (const kind of (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k))) {
  describe(`copy in _seq_no ranges on ${kind}`, () => {
    it('reads one shard as four ranges, resumes each after kill -9, and copies every document', async () => {
      const t = testCluster(kind);
      const c = clusterOf(t);
      const source = uniqueName('rng');
      await seed(c, source, DOCS, (i) => ({ id: `d${i}`, doc: { n: i, title: `document ${i}` } }), {
        settings: { number_of_shards: 1, number_of_replicas: 0 },
      });
      const dir = mkdtempSync(join(tmpdir(), 'cutover-ranges-'));
      const specPath = join(dir, 'spec.yaml');
      writeFileSync(
        specPath,
        YAML.stringify({
          name: 'm1',
          source: { cluster: { url: t.url }, index: source },
          target: { index: `${source}-v2` },
          capture: { strategy: 'none' },
          copy: { batchDocs: 500, concurrency: 4 },
          stateDir: './state',
        }),
      );
      const state = join(dir, 'state', 'm1');
      // Killed after 30 bulks (15,000 documents) of the four ranges together.
      const killed = await runCli(['run', specPath], { CUTOVER_FAILPOINTS: 'copy.after-bulk:30' });
      assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-1500));
      const plan = JSON.parse(readFileSync(join(state, 'state.json'), 'utf8')).copyRanges as Array<{
        shard: number;
        from: number;
        to: number | null;
      }>;
      assert.equal(plan.length, 4, JSON.stringify(plan));
      assert.ok(plan.every((r) => r.shard === 0));
      assert.equal(plan[0]!.from, 0);
      assert.equal(plan.at(-1)!.to, null, 'the last range is open above');
      for (let i = 1; i < plan.length; i++) assert.equal(plan[i]!.from, plan[i - 1]!.to, 'ranges touch');
      const before = plan.map((_, i) => {
        const p = join(state, 'checkpoints', `slice-${i}.json`);
        return existsSync(p)
          ? (JSON.parse(readFileSync(p, 'utf8')) as { after: number | null; done: boolean })
          : undefined;
      });
      assert.ok(
        before.filter((cp) => cp && cp.after !== null).length >= 2,
        `several ranges had started when killed: ${JSON.stringify(before)}`,
      );
      assert.ok(
        before.some((cp) => !cp?.done),
        'killed before every range was done',
      );

      // Written after the plan: above the plan's widths, in the last (open) range only.
      let nd = '';
      for (let i = DOCS; i < DOCS + 300; i++)
        nd += `${JSON.stringify({ index: { _index: source, _id: `d${i}` } })}\n${JSON.stringify({ n: i, title: `late ${i}` })}\n`;
      const b = await c.bulk(nd, { refresh: true });
      assert.equal(b.errors, false);

      const r = await runCli(['--json', 'run', specPath]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      for (let i = 0; i < plan.length; i++) {
        const cp = JSON.parse(readFileSync(join(state, 'checkpoints', `slice-${i}.json`), 'utf8'));
        assert.equal(cp.done, true);
        assert.deepEqual(cp.range, plan[i]);
        // A range's checkpoint never passes its end.
        if (plan[i]!.to !== null && cp.after !== null) assert.ok(cp.after < plan[i]!.to!, JSON.stringify(cp));
      }
      const expected = await readAll(c, source);
      assert.equal(expected.size, DOCS + 300);
      const d = diffDocs(expected, await readAll(c, `${source}-v2`));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      await c.deleteIndex(source).catch(() => undefined);
      await c.deleteIndex(`${source}-v2`).catch(() => undefined);
      await c.close();
    });
  });
}
