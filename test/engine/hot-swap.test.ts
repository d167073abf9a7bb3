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
 * Pairs (each runs when both servers are in the matrix): Elasticsearch 7.17 -> 8.19, 7.17 -> 9 (two majors at
 * once), Elasticsearch 8.19 -> OpenSearch 3, OpenSearch 3 -> Elasticsearch 9; the revert window on 7.17 -> 8.19.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { Cluster } from '../../src/cluster/client.js';
import { type CliResult, runCli, startCli } from '../support/cli.js';
import {
  EXPECTED,
  type PlainKind,
  type TestClusterId,
  testCluster,
  uniqueName,
} from '../support/clusters.js';
import { clusterOf, type Docs, readAll, seed } from '../support/data.js';
import { type ProxyProcess, startProxy } from '../support/proxy.js';
import {
  type AckedOp,
  compare,
  defaultDoc,
  describeComparison,
  expectedState,
  type OpKind,
  sourcesOf,
  startWriters,
  type WritersHandle,
} from '../support/writers.js';

const PAIRS: ReadonlyArray<readonly [PlainKind, PlainKind]> = [
  ['es7', 'es8'],
  ['es7', 'es9'],
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

/**
 * The writers' log of a switch and a rollback, with the old index's ops after the rollback renamed to a third
 * generation (`<old>#after`), so that the oracle orders them after the new index's. A source op acknowledged
 * while the application was on the target cluster (between the first and last acknowledgement there) would be
 * neither: that is an error, as no hold may let one through.
 */
function splitEras(
  log: readonly AckedOp[],
  source: string,
  target: string,
): { log: AckedOp[]; after: string } {
  const onTarget = log.filter((o) => o.index === target).map((o) => o.ackedAt);
  const first = Math.min(...onTarget);
  const last = Math.max(...onTarget);
  const after = `${source}#after`;
  const between = log.filter((o) => o.index === source && o.ackedAt >= first && o.ackedAt <= last);
  assert.deepEqual(
    between.slice(0, 3).map((o) => `${o.kind} ${o.id} at ${o.ackedAt}`),
    [],
    `writes acknowledged by the old index while the application was on the new one (${first}..${last})`,
  );
  return {
    log: log.map((o) => (o.index === source && o.ackedAt > last ? { ...o, index: after } : o)),
    after,
  };
}

interface Setup {
  src: Cluster;
  dst: Cluster;
  source: string;
  target: string;
  read: string;
  write: string;
  seeded: Docs;
  spec: string;
  dir: string;
  stateDir: string;
  proxy: ProxyProcess;
  writers: WritersHandle;
  /** what every cutover process of the test gets in its environment (the passwords the spec names) */
  env: Record<string, string>;
}

/**
 * A source index with read and write aliases on one cluster, a target on the other, a proxy in front of the
 * source (the plan checked), and writers talking only to the proxy.
 */
async function hotSwapSetup(
  t: TestContext,
  from: TestClusterId,
  to: TestClusterId,
  name: string,
  extra: { cutover?: Record<string, unknown>; auth?: TargetAuth } = {},
): Promise<Setup> {
  const srcServer = testCluster(from);
  const dstServer = testCluster(to);
  const src = clusterOf(srcServer);
  const dst = clusterOf(dstServer);
  const source = uniqueName(extra.auth?.prefix ?? 'hs-src');
  const target = `${source}-v2`;
  const read = `${source}-read`;
  const write = `${source}-write`;
  t.after(async () => {
    if (process.env.CUTOVER_HOTSWAP_KEEP) return; // for a post-mortem: indices and state stay
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
    name,
    source: { cluster: { url: srcServer.url }, index: source },
    target: {
      cluster: { url: dstServer.url, ...(extra.auth ? { auth: extra.auth.runner } : {}) },
      index: target,
    },
    aliases: { read: [read], write },
    // Slow enough that the writers and the kill meet the copy, not only the catch-up.
    copy: { batchDocs: 200, concurrency: 2, maxDocsPerSecond: 400, sampleSize: 200 },
    capture: { strategy: 'proxy', tailIntervalMs: 200 },
    cutover: { holdBudgetMs: 5000, ...extra.cutover },
    ...(extra.auth ? { proxy: { targetAuth: extra.auth.application } } : {}),
  });
  const env = extra.auth?.env ?? {};

  if (extra.auth) {
    // Credentials the target refuses: the proxy's check says so, and plan stops before anything moves.
    const wrong = await startProxy(spec, '127.0.0.1:0', { ...env, ...extra.auth.wrongEnv });
    const refused = await runCli(['plan', spec], env);
    await wrong.stop();
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /does not answer as needed \(HTTP 401\)[\s\S]*check proxy\.targetAuth/);
    assert.equal(await dst.indexExists(target), false);
    for (const secret of [...Object.values(env), ...Object.values(extra.auth.wrongEnv)])
      assert.ok(
        !`${refused.stdout}${refused.stderr}${wrong.output()}`.includes(secret),
        'a password in the output',
      );
  }
  // The plan names the move and checks the proxy can reach the target cluster before anything moves.
  const proxy = await startProxy(spec, '127.0.0.1:0', env);
  t.after(async () => {
    if (proxy.child.exitCode === null && proxy.child.signalCode === null) await proxy.stop();
  });
  const plan = await runCli(['plan', spec], env);
  assert.equal(plan.code, 0, plan.stderr);
  if (extra.auth) assert.match(plan.stdout, /credentials from proxy\.targetAuth, answered/);

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

  return {
    src,
    dst,
    source,
    target,
    read,
    write,
    seeded,
    spec,
    dir,
    stateDir: join(dir, 'state', name),
    proxy,
    writers,
    env,
  };
}

/** The target cluster wants credentials the application does not have: the proxy maps to its own there. */
interface TargetAuth {
  /** names the limited user may touch */
  prefix: string;
  /** the runner's credentials on the target cluster (target.cluster.auth) */
  runner: Record<string, unknown>;
  /** what the proxy sends there for the application (proxy.targetAuth) */
  application: Record<string, unknown>;
  /** the passwords, by the environment variables the spec names */
  env: Record<string, string>;
  /** the same variables with a wrong password */
  wrongEnv: Record<string, string>;
}

/**
 * One hot swap: run 1 killed at a random moment, run 2 finishes and switches while the writers go on; then every
 * check of the file's header.
 */
async function hotSwap(
  t: TestContext,
  from: TestClusterId,
  to: TestClusterId,
  auth?: TargetAuth,
): Promise<void> {
  const { src, dst, source, target, read, write, seeded, spec, dir, stateDir, writers, env } =
    await hotSwapSetup(t, from, to, `hs-${from}-${to}`, { auth });
  // Run 1 killed at a random moment (copy or catch-up), run 2 takes the lock over and must finish.
  const runs: Array<{ ms: number; r: CliResult; killedAt?: number }> = [];
  const first = startCli(['--json', 'run', spec], env);
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
    const second = startCli(['--json', 'run', spec, '--take-over-lock'], env);
    const guard = setTimeout(() => second.child.kill('SIGKILL'), 240_000);
    final = await second.done;
    clearTimeout(guard);
    runs.push({ ms: Date.now() - began, r: final });
    writeFileSync(join(dir, 'run-2.log'), final.stderr);
  }
  // After the switch the writers go on: now through the proxy to the target cluster. The source must see none
  // of it (its indexing count, watched while they write).
  let quiet: CliResult | undefined;
  if (final.code === 0) quiet = await runCli(['--json', 'source-writes', spec, '--seconds', '2'], env);
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
  const sync = JSON.parse(readFileSync(join(stateDir, 'journal-sync.json'), 'utf8')) as {
    holds: Array<{ switched: boolean; proxies: number }>;
  };
  assert.equal(sync.holds.filter((h) => h.switched && h.proxies === 1).length, 1, JSON.stringify(sync.holds));

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
  if (auth) {
    // Secrets never reach the state, the logs or the report.
    const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) =>
      statSync(join(dir, f)).isFile(),
    );
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const secret of Object.values(auth.env)) assert.ok(!text.includes(secret), `a password in ${f}`);
    }
    assert.ok(files.some((f) => f.endsWith('audit.jsonl')));
  }
}

for (const [from, to] of PAIRS.filter(([a, b]) => EXPECTED.includes(a) && EXPECTED.includes(b))) {
  describe(`hot swap through the write proxy: ${from} -> ${to} on another cluster`, () => {
    it(
      'the application moves to the target cluster with no refused write; the target equals the writers’ log id by id',
      {
        timeout: 420_000,
      },
      (t) => hotSwap(t, from, to),
    );

    // One pair is enough for the way back: the reverse sync and the rollback hold are the same code for every pair.
    if (from === 'es7' && to === 'es8')
      it('rolls back across clusters inside the revert window: the application returns to the source cluster with every write it made on the target', {
        timeout: 420_000,
      }, async (t) => {
        const { src, dst, source, target, read, write, seeded, spec, dir, stateDir, writers } =
          await hotSwapSetup(t, from, to, `hsr-${from}-${to}`, { cutover: { revertWindowMinutes: 30 } });
        const run = startCli(['--json', 'run', spec]);
        t.after(() => run.child.exitCode === null && run.child.kill('SIGKILL'));
        let out = '';
        run.child.stderr!.on('data', (d) => {
          out += d;
        });
        while (!/revert window open until/.test(out)) {
          assert.equal(run.child.exitCode, null, `run ended early: ${out.slice(-2000)}`);
          await sleep(100);
        }
        // The application writes on the target cluster for a while; the window copies it back to the source.
        const onTarget = () => writers.stats().ackedByIndex[target] ?? 0;
        while (onTarget() < 80) await sleep(100);

        const rb = await runCli(['rollback', spec]);
        writeFileSync(join(dir, 'rollback.log'), `${rb.stderr}\n--- stdout\n${rb.stdout}`);
        assert.equal(rb.code, 0, rb.stderr.slice(-2000));
        const r = await run.done;
        writeFileSync(join(dir, 'run.log'), r.stderr);
        assert.equal(r.code, 0, `run hands over and ends cleanly: ${r.stderr.slice(-2000)}`);

        // The application is back on the source cluster: its writes land on the old index again, the new one
        // takes none.
        const onSource = () => writers.stats().ackedByIndex[source] ?? 0;
        const back = onSource();
        const targetAfter = onTarget();
        while (onSource() < back + 40) await sleep(100);
        const report = await writers.stop();
        writeFileSync(join(dir, 'writers.json'), JSON.stringify(report));
        const summary = `${from} -> ${to} and back: writers acked ${report.acked} by index ${JSON.stringify(report.ackedByIndex)}, refused ${JSON.stringify(report.refusedByReason)}, ambiguous ${report.ambiguous} | state ${dir}`;
        t.diagnostic(summary);
        assert.equal(
          report.ackedByIndex[target] ?? 0,
          targetAfter,
          `writes reached the new index after the rollback: ${summary}`,
        );
        assert.deepEqual(
          report.refusals
            .filter((x) => x.reason !== 'document_missing' && x.reason !== 'version_conflict')
            .slice(0, 5)
            .map((x) => `${x.kind} ${x.id}: ${x.status} ${x.type}: ${x.message}`),
          [],
          summary,
        );
        assert.equal(report.ambiguous, 0, summary);

        // The old index holds every write, those made on the target cluster included, id by id. The old index has
        // two eras (before the switch, after the rollback) with the new index's between them; the holds make them
        // disjoint in time, which the split checks.
        const eras = splitEras(report.log, source, target);
        const cmp = compare(
          expectedState(eras.log, [source, target, eras.after]),
          sourcesOf(await readAll(src, source)),
          {
            seeded: sourcesOf(seeded),
          },
        );
        assert.deepEqual(
          { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
          { lost: [], stale: [], resurrected: [], extra: [] },
          `${describeComparison(cmp)}\n${summary}`,
        );
        const rev = JSON.parse(readFileSync(join(stateDir, 'revert.json'), 'utf8')) as { applied: number };
        assert.ok(rev.applied > 0, 'the reverse sync copied writes back');
        assert.deepEqual(await aliasIndices(src, write), [source]);
        assert.deepEqual(await aliasIndices(src, read), [source]);
        assert.deepEqual(await aliasIndices(dst, write), []);
        assert.deepEqual(await aliasIndices(dst, read), []);
        for (const [c, index] of [
          [src, source],
          [dst, target],
        ] as const) {
          const st = Object.values(await c.getSettings(index))[0]!.settings;
          assert.notEqual(st['index.blocks.write'], 'true', `${index} is writable`);
        }
      });
  });
}

// The target cluster has security on and the application's user does not exist there: the proxy maps every request
// to credentials of its own (proxy.targetAuth, a user allowed only `limited-*` indices), checked by plan first.
if (EXPECTED.includes('es8') && EXPECTED.includes('es8sec'))
  describe('hot swap to a secured cluster with proxy.targetAuth: es8 -> es8sec', () => {
    it('plan refuses credentials the target refuses; with the right ones the application moves, no password anywhere', {
      timeout: 420_000,
    }, async (t) => {
      const sec = testCluster('es8sec');
      assert.ok(sec.limitedUser && sec.limitedPassword && sec.limitedIndexPattern === 'limited-*');
      await hotSwap(t, 'es8', 'es8sec', {
        prefix: 'limited-hs',
        runner: { username: sec.username, passwordEnv: 'HS_RUNNER_PASSWORD' },
        application: { username: sec.limitedUser, passwordEnv: 'HS_APP_PASSWORD' },
        env: { HS_RUNNER_PASSWORD: sec.password!, HS_APP_PASSWORD: sec.limitedPassword },
        wrongEnv: { HS_APP_PASSWORD: `${sec.limitedPassword}-not` },
      });
    });
  });
