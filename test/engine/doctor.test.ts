/**
 * `cutover doctor` as an operator runs it, against the shared servers: a long-running reindex is listed as stuck
 * (exit 3) with the command that cancels it; `--cancel` refuses without a terminal to confirm on (exit 2) and
 * cancels with `--yes`; a bad task id is refused. (A red cluster and its allocation explain are tested on a
 * dedicated server in throttle-watchdog.test.ts: turning a shared server red would disturb other suites.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { sleep } from '../../src/cluster/retry.js';
import { runCli } from '../support/cli.js';
import { MATRIX, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, diffDocs, readAll, seed, summarize } from '../support/data.js';
import { scenario } from '../support/scenario.js';

function specFor(url: string, source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-doctor-'));
  const spec = join(dir, 'spec.yaml');
  writeFileSync(
    spec,
    YAML.stringify({
      name: uniqueName('doctor'),
      source: { cluster: { url }, index: source },
      target: { index: `${source}-v2` },
      capture: { strategy: 'none' },
      stateDir: './state',
    }),
  );
  return spec;
}

for (const kind of MATRIX.filter((k) => k === 'es8' || k === 'os3')) {
  describe(`cutover doctor on ${kind}`, () => {
    it('reports both clusters and search contexts; its exit code says whether it found a problem', async () => {
      const t = testCluster(kind);
      const spec = specFor(t.url, uniqueName('absent'));
      const r = await runCli(['--json', 'doctor', spec]);
      const rep = JSON.parse(r.stdout);
      // The shared servers are used by other suites at once: whatever they show, the code must match the verdict.
      assert.equal(r.code, rep.healthy ? 0 : 3, r.stderr);
      assert.equal(rep.healthy, rep.problems.length === 0);
      assert.equal(rep.clusters.length, 1, 'one cluster for source and target');
      assert.equal(rep.clusters[0].side, 'source+target');
      assert.ok(['green', 'yellow', 'red'].includes(rep.clusters[0].status));
      assert.equal(typeof rep.searchContexts[0].openContexts, 'number');
      assert.ok(rep.stuckTasks.every((x: { runningSeconds: number }) => x.runningSeconds >= 600));

      const unknown = await runCli(['doctor', spec, '--cancel', 'nOdE_1:987654321', '--yes']);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no task nOdE_1:987654321 on the source or the target cluster/);
      const bad = await runCli(['doctor', spec, '--cancel', 'not-a-task', '--yes']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /NODE_ID:NUMBER/);
      const older = await runCli(['doctor', spec, '--older-than', 'soon']);
      assert.equal(older.code, 2);
    });

    it("tells the point in time a killed run left from other clients', and the next run closes it", async () => {
      const s = await scenario(kind, 3000, { copy: { batchDocs: 100, concurrency: 1, keepAlive: '30m' } });
      const killed = await runCli(['run', s.specPath], { CUTOVER_FAILPOINTS: 'copy.after-bulk:5' });
      assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-1000));
      const pits = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'pits.json'), 'utf8')) as Array<{
        id: string;
        side: string;
        pid: number;
      }>;
      assert.equal(pits.length, 1, JSON.stringify(pits));
      assert.equal(pits[0]!.side, 'source');
      const left = pits[0]!.id;

      const doc = await runCli(['--json', 'doctor', s.specPath]);
      const rep = JSON.parse(doc.stdout);
      assert.deepEqual(
        rep.ownPits.map((p: { id: string }) => p.id),
        [left],
      );
      assert.ok(
        rep.notes.some((n: string) =>
          /1 point\(s\) in time of this migration left by a process that died/.test(n),
        ),
        JSON.stringify(rep.notes),
      );

      const r = await runCli(['run', s.specPath]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.deepEqual(JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'pits.json'), 'utf8')), []);
      // The PIT the killed run left is gone from the cluster (searching it says so), long before its 30 min.
      const gone = await s.c.request<{ error?: { type?: string } }>({
        method: 'POST',
        path: '/_search',
        body: { size: 0, pit: { id: left } },
        okStatuses: 'all',
      });
      assert.equal(gone.status, 404, JSON.stringify(gone.body));
      const d = diffDocs(s.expected, await readAll(s.c, s.target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      await s.c.close();
    });

    it('a run killed inside its proof leaves its points in time on both sides; the next run closes them', async () => {
      const s = await scenario(kind, 3000, {
        copy: { batchDocs: 100, concurrency: 2, keepAlive: '30m' },
        verify: { mode: 'full' },
      });
      const killed = await runCli(['run', s.specPath], { CUTOVER_FAILPOINTS: 'proof.after-page:12' });
      assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-1000));
      const pits = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'pits.json'), 'utf8')) as Array<{
        id: string;
        side: string;
        index: string;
      }>;
      // Pass 1 reads the source, pass 2 the target, side by side: each left its PIT.
      assert.deepEqual(
        pits.map((p) => `${p.side}:${p.index}`).sort(),
        [`source:${s.source}`, `target:${s.target}`],
        JSON.stringify(pits),
      );
      const r = await runCli(['run', s.specPath]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.deepEqual(JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'pits.json'), 'utf8')), []);
      for (const p of pits) {
        const gone = await s.c.request<{ error?: { type?: string } }>({
          method: 'POST',
          path: '/_search',
          body: { size: 0, pit: { id: p.id } },
          okStatuses: 'all',
        });
        assert.equal(gone.status, 404, `${p.side} PIT closed: ${JSON.stringify(gone.body)}`);
      }
      const d = diffDocs(s.expected, await readAll(s.c, s.target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
      await s.c.close();
    });

    // The Elasticsearch integ-test zips ship without the reindex module: a long reindex is made on OpenSearch.
    if (kind !== 'os3') return;
    it('lists a long-running reindex, refuses to cancel without a terminal, cancels with --yes', {
      timeout: 300_000,
    }, async () => {
      const t = testCluster(kind);
      const c = clusterOf(t);
      const source = uniqueName('doc');
      const dest = `${source}-slow`;
      try {
        await seed(c, source, 200, (i) => ({ id: `d${i}`, doc: { n: i } }), {
          settings: { number_of_shards: 1, number_of_replicas: 0 },
        });
        // One document a second: this reindex runs for minutes unless cancelled.
        const started = await c.request<{ task: string }>({
          method: 'POST',
          path: '/_reindex',
          query: { wait_for_completion: false, requests_per_second: 1 },
          body: { source: { index: source, size: 1 }, dest: { index: dest } },
        });
        const task = started.body.task;
        assert.match(task, /^[\w-]+:\d+$/);

        const spec = specFor(t.url, source);

        const listed = await runCli(['--json', 'doctor', spec, '--older-than', '0']);
        assert.equal(listed.code, 3, listed.stderr);
        const r = JSON.parse(listed.stdout);
        assert.equal(r.healthy, false);
        const mine = r.stuckTasks.find((x: { id: string }) => x.id === task);
        assert.ok(mine, `the reindex ${task} is listed: ${listed.stdout}`);
        assert.match(mine.action, /reindex/);
        assert.equal(mine.cancellable, true);
        assert.ok(r.problems.some((p: string) => p.includes(`--cancel ${task}`)));
        assert.ok(['green', 'yellow', 'red'].includes(r.clusters[0].status));
        assert.equal(typeof r.searchContexts[0].openContexts, 'number');

        const text = await runCli(['doctor', spec, '--older-than', '0']);
        assert.equal(text.code, 3);
        assert.match(text.stdout, new RegExp(`tasks running long:\\n(.|\\n)*${task}`));
        assert.match(text.stdout, /problem\(s\):/);

        // The default threshold (10 min) does not call a task of a few seconds stuck.
        const fresh = await runCli(['--json', 'doctor', spec]);
        assert.ok(!JSON.parse(fresh.stdout).stuckTasks.some((x: { id: string }) => x.id === task));

        const noTty = await runCli(['doctor', spec, '--cancel', task]);
        assert.equal(noTty.code, 2, noTty.stderr);
        assert.match(noTty.stderr, /no terminal to confirm on; pass --yes/);
        const still = await c.request<{ completed: boolean }>({ method: 'GET', path: `/_tasks/${task}` });
        assert.equal(still.body.completed, false, 'nothing was cancelled without confirmation');

        const cancel = await runCli(['doctor', spec, '--cancel', task, '--yes']);
        assert.equal(cancel.code, 0, cancel.stderr);
        assert.match(cancel.stdout, new RegExp(`cancel task ${task} \\(.*reindex`));
        for (;;) {
          const after = await c.request<{
            completed: boolean;
            error?: { type?: string };
            response?: { canceled?: string };
          }>({
            method: 'GET',
            path: `/_tasks/${task}`,
          });
          if (after.body.completed) {
            assert.match(JSON.stringify(after.body), /cancel/i);
            break;
          }
          await sleep(200);
        }
      } finally {
        for (const i of [source, dest]) await c.deleteIndex(i).catch(() => undefined);
        await c.close();
      }
    });
  });
}
