/**
 * The application hot-swapped to another cluster of another version by the write proxy (`proxy.moveApplication`):
 * writers talk only to `cutover proxy` (index, partial update, delete, re-create, auto-id creates) for the whole
 * migration and after it, the runner is killed with SIGKILL at a random moment and resumed with
 * `--take-over-lock`, and at the switch the proxy holds the writes, the aliases are created on the target cluster,
 * and every later request (reads and writes) goes there. Then:
 *   - the target index on the target cluster equals the writers' log of acknowledged writes, id by id (nothing
 *     lost, stale, resurrected or extra), no write was left unanswered or refused for any reason but its own
 *     (an update of a document another writer deleted);
 *   - the writers' acknowledged writes landed on the old index before the switch and on the new one after it;
 *   - the source cluster takes no write while the writers go on (the application really moved), and the
 *     aliases exist on the target cluster only.
 *
 * Pairs (each runs when both servers are in the matrix): Elasticsearch 7.17 -> 8.19, Elasticsearch 8.19 ->
 * OpenSearch 3, OpenSearch 3 -> Elasticsearch 9.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { Cluster } from '../../src/cluster/client.js';
import { type CliResult, runCli, startCli } from '../support/cli.js';
import { EXPECTED, type PlainKind, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, readAll, seed } from '../support/data.js';
import { startProxy } from '../support/proxy.js';
import {
  compare,
  defaultDoc,
  describeComparison,
  expectedState,
  type OpKind,
  sourcesOf,
  startWriters,
} from '../support/writers.js';

const PAIRS: ReadonlyArray<readonly [PlainKind, PlainKind]> = [
  ['es7', 'es8'],
  ['es8', 'os3'],
  ['os3', 'es9'],
];
const DOCS = 2000;
const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

function specFile(spec: Record<string, unknown>): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-hotswap-'));
  const path = join(dir, 'spec.yaml');
  writeFileSync(path, YAML.stringify({ stateDir: './state', ...spec }));
  return { path, dir };
}

async function aliasIndices(c: Cluster, name: string): Promise<string[]> {
  return Object.keys(await c.getAlias(name)).sort();
}

for (const [from, to] of PAIRS.filter(([a, b]) => EXPECTED.includes(a) && EXPECTED.includes(b))) {
  describe(`hot swap through the write proxy: ${from} -> ${to} on another cluster`, () => {
    it('the application moves to the target cluster with no refused write; the target equals the writers’ log id by id', {
      timeout: 420_000,
    }, async (t) => {
      const srcServer = testCluster(from);
      const dstServer = testCluster(to);
      const src = clusterOf(srcServer);
      const dst = clusterOf(dstServer);
      const source = uniqueName('hs-src');
      const target = `${source}-v2`;
      const read = `${source}-read`;
      const write = `${source}-write`;
      t.after(async () => {
        await src.deleteIndex(source).catch(() => undefined);
        await dst.deleteIndex(target).catch(() => undefined);
        await Promise.all([src.close(), dst.close()]);
      });
      const seeded = await seed(src, source, DOCS, (i) => ({ id: `d${i}`, doc: defaultDoc(`d${i}`, i) }), {
        settings: { number_of_shards: 3, number_of_replicas: 0 },
        mappings: {
          properties: { title: { type: 'text' }, qty: { type: 'keyword' }, n: { type: 'long' } },
        },
        aliases: { [read]: {}, [write]: { is_write_index: true } },
      });
      const { path: spec, dir } = specFile({
        name: `hs-${from}-${to}`,
        source: { cluster: { url: srcServer.url }, index: source },
        target: { cluster: { url: dstServer.url }, index: target },
        aliases: { read: [read], write },
        // Slow enough that the writers and the kill meet the copy, not only the catch-up.
        copy: { batchDocs: 200, concurrency: 2, maxDocsPerSecond: 400, sampleSize: 200 },
        capture: { strategy: 'proxy', tailIntervalMs: 200 },
        cutover: { holdBudgetMs: 5000 },
      });

      // The plan names the move and checks the proxy can reach the target cluster before anything moves.
      const proxy = await startProxy(spec);
      t.after(async () => {
        if (proxy.child.exitCode === null && proxy.child.signalCode === null) await proxy.stop();
      });
      const plan = await runCli(['plan', spec]);
      assert.equal(plan.code, 0, plan.stderr);

      const app = new Cluster({ url: proxy.url, requestTimeoutMs: 120_000, connections: 16 });
      t.after(() => app.close());
      const writers = startWriters({
        cluster: app,
        alias: write,
        writers: 4,
        ratePerWriter: 6,
        ids: 120,
        seedIds: [...seeded.keys()].filter((_, i) => i % 10 === 3),
        mix: { autoid: 1 },
      });

      // Run 1 killed at a random moment (copy or catch-up), run 2 takes the lock over and must finish.
      const runs: Array<{ ms: number; r: CliResult; killedAt?: number }> = [];
      const first = startCli(['--json', 'run', spec]);
      const killAt = rand(1500, 5000);
      const timer = setTimeout(() => first.child.kill('SIGKILL'), killAt);
      let began = Date.now();
      const r1 = await first.done;
      clearTimeout(timer);
      runs.push({ ms: Date.now() - began, r: r1, killedAt: r1.signal === 'SIGKILL' ? killAt : undefined });
      writeFileSync(join(dir, 'run-1.log'), r1.stderr);
      let final = r1;
      if (r1.signal === 'SIGKILL') {
        began = Date.now();
        const second = startCli(['--json', 'run', spec, '--take-over-lock']);
        const guard = setTimeout(() => second.child.kill('SIGKILL'), 240_000);
        final = await second.done;
        clearTimeout(guard);
        runs.push({ ms: Date.now() - began, r: final });
        writeFileSync(join(dir, 'run-2.log'), final.stderr);
      }
      // After the switch the writers go on: now through the proxy to the target cluster. The source must see none
      // of it (its indexing count, watched while they write).
      let quiet: CliResult | undefined;
      if (final.code === 0) quiet = await runCli(['--json', 'source-writes', spec, '--seconds', '2']);
      await sleep(500);
      const report = await writers.stop();
      const summary =
        `${from} -> ${to}: runs ${runs.map((x) => `${(x.ms / 1000).toFixed(1)}s${x.killedAt ? ` (killed at ${x.killedAt} ms)` : ` exit ${x.r.code}`}`).join(', ')} | ` +
        `writers acked ${report.acked} ${JSON.stringify(report.ackedByKind)} by index ${JSON.stringify(report.ackedByIndex)}, ` +
        `refused ${JSON.stringify(report.refusedByReason)}, ambiguous ${report.ambiguous} | state ${dir}`;
      t.diagnostic(summary);
      assert.equal(final.code, 0, `the migration did not finish: ${final.stderr.slice(-3000)}\n${summary}`);

      // Nothing refused but what the application's own writes ask for (an update of a document another writer
      // deleted, a create of one that exists), nothing unanswered: the switch was latency, never an error.
      assert.deepEqual(
        report.refusals
          .filter((r) => r.reason !== 'document_missing' && r.reason !== 'version_conflict')
          .slice(0, 5)
          .map((r) => `${r.kind} ${r.id}: ${r.status} ${r.type}: ${r.message}`),
        [],
        summary,
      );
      assert.equal(report.ambiguous, 0, summary);
      assert.equal(report.inFlight, 0);
      // The writes really raced the migration, on both sides of the switch, with every kind of write.
      assert.ok((report.ackedByIndex[source] ?? 0) > 0, `writes acknowledged on the old index: ${summary}`);
      assert.ok((report.ackedByIndex[target] ?? 0) > 0, `writes acknowledged on the new index: ${summary}`);
      for (const k of ['index', 'update', 'delete', 'recreate', 'autoid'] as OpKind[])
        assert.ok(report.ackedByKind[k] > 0, `${k}: none acknowledged: ${summary}`);

      // Id by id against the writers' log.
      const cmp = compare(expectedState(report, [source, target]), sourcesOf(await readAll(dst, target)), {
        seeded: sourcesOf(seeded),
      });
      assert.deepEqual(
        { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
        { lost: [], stale: [], resurrected: [], extra: [] },
        `${describeComparison(cmp)}\n${summary}`,
      );

      // The switch was a hold in the proxy (writes queued, then sent to the target cluster), not a freeze.
      const sync = JSON.parse(
        readFileSync(join(dir, 'state', `hs-${from}-${to}`, 'journal-sync.json'), 'utf8'),
      ) as {
        holds: Array<{ switched: boolean; proxies: number }>;
      };
      assert.equal(
        sync.holds.filter((h) => h.switched && h.proxies === 1).length,
        1,
        JSON.stringify(sync.holds),
      );

      // The application moved: the source took no write while the writers went on, the aliases live on the
      // target cluster only.
      assert.ok(quiet, summary);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(JSON.parse(quiet.stdout).operations, 0, `the source still takes writes: ${quiet.stdout}`);
      assert.deepEqual(await aliasIndices(dst, write), [target]);
      assert.deepEqual(await aliasIndices(dst, read), [target]);
      assert.deepEqual(await aliasIndices(src, write), []);
      assert.deepEqual(await aliasIndices(src, read), []);
      assert.equal(await src.indexExists(write), false, 'no index named like the alias on the source');
    });
  });
}
