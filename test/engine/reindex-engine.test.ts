/**
 * copy.engine reindex: the cluster's own `_reindex` copies, cutover paces, follows, resumes and proves it.
 *   - Under live writes (index, partial and scripted updates, deletes, re-creates, auto-id creates) with seqno
 *     capture, the runner killed with kill -9 while the task runs, then the server stopped (SIGSTOP) for 8 s under
 *     the next run: that run finds the task by the id it kept and follows it to the end; after the switch the
 *     target equals the writers' log id by id (nothing lost, stale, resurrected or extra).
 *   - Documents the target refuses become dead letters (named, with the reason) and the reindex goes on without
 *     them; Ctrl-C cancels the running task.
 *   - Where it cannot keep its guarantees, plan refuses it, naming the setting: no reindex module (the
 *     Elasticsearch test servers), a transform.
 * On OpenSearch 3 and on Elasticsearch 7.17 with the reindex module from Maven; the 8.x test server has none.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED, type PlainKind, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, diffDocs, readAll, seed, summarize } from '../support/data.js';
import { auditOf, specFile, waitFor } from '../support/spec-dir.js';
import {
  compare,
  defaultDoc,
  describeComparison,
  expectedState,
  sourcesOf,
  startWriters,
  writerClusterOf,
} from '../support/writers.js';

// OpenSearch 3 carries the reindex module; the Elasticsearch 7.17 test server gets it from Maven
// (src/local/reindex-module.ts). The 8.x and 9.x test servers have none.
for (const kind of (['os3', 'es7'] as PlainKind[]).filter((k) => EXPECTED.includes(k)))
  describe(`copy.engine reindex on ${kind}`, () => {
    const server = testCluster(kind);

    it('under live writes, kill -9 while the task runs and the server stopped for 8 s: the next run follows the same task; the target equals the writers’ log', {
      timeout: 300_000,
    }, async (t) => {
      const c = clusterOf(server);
      const wc = writerClusterOf(server);
      const source = uniqueName('rx');
      const target = `${source}-v2`;
      const write = `${source}-write`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await Promise.all([c.close(), wc.close()]);
      });
      const seeded = await seed(c, source, 8000, (i) => ({ id: `d${i}`, doc: defaultDoc(`d${i}`, i) }), {
        settings: { number_of_shards: 3, number_of_replicas: 0 },
        aliases: { [`${source}-read`]: {}, [write]: { is_write_index: true } },
      });
      const {
        path: spec,
        dir,
        state,
      } = specFile('reindex', {
        name: 'rx1',
        source: { cluster: { url: server.url }, index: source },
        target: { index: target },
        aliases: { read: [`${source}-read`], write },
        capture: { strategy: 'seqno', tailIntervalMs: 200 },
        // Slow enough for the kill to land while the task runs.
        copy: { engine: 'reindex', batchDocs: 200, maxDocsPerSecond: 1000, sampleSize: 100 },
        cutover: { freezeBudgetMs: 5000 },
      });
      const plan = await runCli(['plan', spec]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /the cluster's own _reindex copies .* op_type=create with conflicts=proceed/);

      const w = startWriters({
        cluster: wc,
        alias: write,
        writers: 4,
        ratePerWriter: 8,
        ids: 150,
        seedIds: [...seeded.keys()].filter((_, i) => i % 25 === 3),
        scripted: kind === 'os3',
        mix: { autoid: 1 },
        seed: 5,
      });
      const first = startCli(['--json', 'run', spec]);
      await waitFor('the reindex task', () => existsSync(join(state, 'reindex.json')));
      const { task } = JSON.parse(readFileSync(join(state, 'reindex.json'), 'utf8')) as { task: string };
      await sleep(1500);
      first.child.kill('SIGKILL');
      const r1 = await first.done;
      assert.equal(r1.signal, 'SIGKILL');
      const running = await c.task<{ created: number }>(task);
      assert.equal(running?.completed, false, 'the task goes on without the runner');

      // The resumed run meets a server that stops answering for a while (SIGSTOP), as in the chaos suite.
      const second = startCli(['--json', 'run', spec, '--take-over-lock']);
      const pid = server.pid!;
      let stopped = false;
      const resume = () => {
        if (stopped) process.kill(pid, 'SIGCONT');
        stopped = false;
      };
      process.on('exit', resume);
      await sleep(800);
      process.kill(pid, 'SIGSTOP');
      stopped = true;
      await sleep(8000);
      resume();
      process.off('exit', resume);
      const r2 = await second.done;
      await sleep(500);
      const report = await w.stop();
      writeFileSync(join(dir, 'run-2.log'), r2.stderr);
      assert.equal(r2.code, 0, r2.stderr.slice(-2500));
      const trail = auditOf(state);
      assert.ok(
        trail.some((e) => e.event === 'reindex-found' && e.task === task),
        'the second run found the first run’s task',
      );
      assert.equal(
        trail.filter((e) => e.event === 'reindex-started').length,
        1,
        'one task for the whole copy',
      );
      assert.ok(report.acked > 100, `writers acknowledged ${report.acked}`);
      assert.ok(report.ackedByKind.delete > 0 && (kind !== 'os3' || report.ackedByKind.script > 0));
      const cmp = compare(expectedState(report, [source, target]), sourcesOf(await readAll(c, target)), {
        seeded: sourcesOf(seeded),
      });
      assert.deepEqual(
        { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
        { lost: [], stale: [], resurrected: [], extra: [] },
        describeComparison(cmp),
      );
    });

    it('documents the target refuses become dead letters and the copy goes on; Ctrl-C cancels the task', {
      timeout: 180_000,
    }, async (t) => {
      const c = clusterOf(server);
      const source = uniqueName('rxd');
      const target = `${source}-v2`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await c.close();
      });
      // Written last, so the cancelled first task has not met them: the resumed run must start a new task.
      const bad: Record<number, string> = { 3990: 'n/a', 3995: 'twelve', 3999: 'x1' };
      await seed(c, source, 4000, (i) => ({ id: `k${i}`, doc: { code: bad[i] ?? String(i), n: i } }), {
        settings: { number_of_shards: 2, number_of_replicas: 0 },
        mappings: { properties: { code: { type: 'keyword' } } },
      });
      const { path: spec, state } = specFile('reindex', {
        name: 'rx2',
        source: { cluster: { url: server.url }, index: source },
        target: { index: target, mappingOverrides: { properties: { code: { type: 'long' } } } },
        capture: { strategy: 'none' },
        copy: { engine: 'reindex', batchDocs: 100, maxDocsPerSecond: 300, maxDeadLetters: 5, sampleSize: 0 },
      });
      // Ctrl-C while the task runs: it is cancelled, not left writing.
      const first = startCli(['--json', 'run', spec]);
      await waitFor('the reindex task', () => existsSync(join(state, 'reindex.json')));
      const { task } = JSON.parse(readFileSync(join(state, 'reindex.json'), 'utf8')) as { task: string };
      await sleep(1000);
      first.child.kill('SIGINT');
      const r1 = await first.done;
      assert.notEqual(r1.code, 0);
      // A cancel takes effect when each slice next looks (a throttled slice may be sleeping): wait for the end.
      let after = await c.task<{ canceled?: string }>(task);
      for (let i = 0; i < 100 && after && !after.completed; i++) {
        await sleep(100);
        after = await c.task<{ canceled?: string }>(task);
      }
      assert.ok(after?.completed, `the task ended: ${JSON.stringify(after).slice(0, 300)}`);
      assert.match(String(after.task?.status?.canceled), /by user request/);
      await c.refresh(target);
      const n1 = await c.count(target);
      await sleep(1500);
      await c.refresh(target);
      assert.equal(await c.count(target), n1, 'nothing written after the cancel');

      const r = await runCli(['--json', 'run', spec]);
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      const letters = readFileSync(join(state, 'dead-letters.ndjson'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; type: string; reason: string });
      assert.deepEqual(letters.map((l) => l.id).sort(), ['k3990', 'k3995', 'k3999']);
      assert.ok(
        letters.every((l) => /parse/.test(l.type + l.reason)),
        JSON.stringify(letters[0]),
      );
      const copied = await readAll(c, target);
      assert.equal(copied.size, 4000 - 3);
      for (const id of ['k3990', 'k3995', 'k3999']) assert.equal(copied.has(id), false);
      // The cancelled task was found by the next run and started again, not taken for a finished copy.
      const trail = auditOf(state);
      assert.ok(
        trail.some((e) => e.event === 'reindex-cancelled' && e.task === task),
        JSON.stringify(trail.filter((e) => e.event.startsWith('reindex-'))),
      );
      assert.ok(trail.filter((e) => e.event === 'reindex-started').length >= 2);
      assert.deepEqual(copied.get('k77')?.source, { code: '77', n: 77 });
    });
  });

for (const kind of (['es8'] as PlainKind[]).filter((k) => EXPECTED.includes(k)))
  describe(`copy.engine reindex refused where it cannot keep its guarantees (${kind})`, () => {
    it('no reindex module on the cluster: plan names it and the way out, exit 2, nothing created', async (t) => {
      const server = testCluster(kind);
      const c = clusterOf(server);
      const source = uniqueName('rxn');
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.close();
      });
      await seed(c, source, 10, (i) => ({ id: `d${i}`, doc: { n: i } }));
      const { path: spec } = specFile('reindex', {
        name: 'rx3',
        source: { cluster: { url: server.url }, index: source },
        target: { index: `${source}-v2` },
        copy: { engine: 'reindex' },
      });
      const plan = await runCli(['plan', spec]);
      assert.equal(plan.code, 2, plan.stderr);
      assert.match(
        plan.stderr,
        /copy\.engine reindex: elasticsearch \S+ on .* has no reindex module.*use copy\.engine client/,
      );
      assert.equal(await c.indexExists(`${source}-v2`), false);
    });
  });

// Across clusters the target cluster runs the task and reads the source through reindex from remote (the test
// servers allow loopback sources: src/local/servers.ts). Reindex from remote first asks the source `GET /`, which
// the Elasticsearch integ-test servers do not serve, so the source is OpenSearch too: the same server reached as
// `localhost` is another cluster to cutover, and its task reads 127.0.0.1 as a remote.
if (EXPECTED.includes('os3'))
  describe('copy.engine reindex from remote: os3 -> os3 reached as another cluster', () => {
    it('the target cluster pulls every document through reindex from remote; the target equals the source id by id', {
      timeout: 240_000,
    }, async (t) => {
      const srcServer = testCluster('os3');
      const dstServer = { ...srcServer, url: srcServer.url.replace('127.0.0.1', 'localhost') };
      const src = clusterOf(srcServer);
      const source = uniqueName('rxr');
      const target = `${source}-v2`;
      t.after(async () => {
        await src.deleteIndex(source).catch(() => undefined);
        await src.deleteIndex(target).catch(() => undefined);
        await src.close();
      });
      await seed(
        src,
        source,
        5000,
        (i) => ({ id: `d${i}`, doc: defaultDoc(`d${i}`, i), routing: i % 7 === 0 ? `r${i % 3}` : undefined }),
        {
          settings: { number_of_shards: 2, number_of_replicas: 0 },
        },
      );
      // One shard more on the target: a routed document lands where its routing says, not where it was.
      const { path: spec, state } = specFile('reindex', {
        name: 'rx4',
        source: { cluster: { url: srcServer.url }, index: source },
        target: {
          cluster: { url: dstServer.url },
          index: target,
          settingOverrides: { index: { number_of_shards: 3 } },
        },
        capture: { strategy: 'none' },
        copy: { engine: 'reindex', batchDocs: 200, maxDocsPerSecond: 2500, sampleSize: 100 },
      });
      const plan = await runCli(['plan', spec]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /from remote \(the target cluster reads the source cluster/);
      const r = await runCli(['--json', 'run', spec]);
      assert.equal(r.code, 0, r.stderr.slice(-2500));
      const trail = auditOf(state);
      assert.equal(trail.filter((e) => e.event === 'reindex-started').length, 1);
      const d = diffDocs(await readAll(src, source), await readAll(src, target));
      assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
    });
  });
