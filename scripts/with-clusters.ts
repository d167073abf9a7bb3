/**
 * Starts real local Elasticsearch/OpenSearch servers, runs a command against them, stops them.
 *
 *   node --import tsx scripts/with-clusters.ts [--kinds es8,es8sec,es8tls,es9,os3,es7] -- <command...>
 *
 * Exports CUTOVER_TEST_<ID>_URL (and _USER, _PASSWORD, _CA_FILE, _CA_FINGERPRINT for secure ones,
 * _PID for the server JVM) plus CUTOVER_TEST_KINDS; see test/support/clusters.ts for the contract.
 * Exits non-zero without running the command if any requested cluster fails to start.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { type LocalCluster, type StartOptions, startLocalCluster } from '../src/local/servers.js';

interface ClusterSpec {
  id: string;
  options: StartOptions;
}

const SPECS: Record<string, ClusterSpec> = {
  es8: { id: 'es8', options: { kind: 'es8' } },
  es8sec: { id: 'es8sec', options: { kind: 'es8', security: true } },
  es8tls: { id: 'es8tls', options: { kind: 'es8', security: true, tls: true } },
  es9: { id: 'es9', options: { kind: 'es9' } },
  os3: { id: 'os3', options: { kind: 'os3' } },
  es7: { id: 'es7', options: { kind: 'es7' } },
};

const DEFAULT_KINDS = ['es8', 'es8sec', 'es8tls', 'es9', 'os3', 'es7'];
// Each boot keeps a core busy for tens of seconds; more than two at once on a 2-core box only
// makes every boot slower and risks the readiness timeout.
const MAX_BOOTING = Math.max(1, Math.min(2, os.availableParallelism()));

function parseArgs(argv: string[]): { ids: string[]; command: string[]; verbose: boolean } {
  let ids = DEFAULT_KINDS;
  let verbose = false;
  const sep = argv.indexOf('--');
  const own = sep === -1 ? argv : argv.slice(0, sep);
  const command = sep === -1 ? [] : argv.slice(sep + 1);
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    if (a === '--kinds') ids = (own[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--kinds=')) ids = a.slice('--kinds='.length).split(',').filter(Boolean);
    else if (a === '--verbose' || a === '-v') verbose = true;
    else usage(`unknown argument ${a}`);
  }
  if (command.length === 0) usage('no command given');
  if (ids.length === 0) usage('--kinds is empty');
  for (const id of ids) if (!SPECS[id]) usage(`unknown kind ${id} (known: ${Object.keys(SPECS).join(', ')})`);
  return { ids: [...new Set(ids)], command, verbose };
}

function usage(problem: string): never {
  console.error(`with-clusters: ${problem}`);
  console.error(
    `usage: node --import tsx scripts/with-clusters.ts [--kinds ${Object.keys(SPECS).join(',')}] [--verbose] -- <command...>`,
  );
  process.exit(2);
}

/** Runs tasks with at most `limit` in flight; every task runs to completion even if another fails. */
async function limited<T>(tasks: (() => Promise<T>)[], limit: number): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await tasks[i]!() };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

function envFor(id: string, c: LocalCluster): Record<string, string> {
  const p = `CUTOVER_TEST_${id.toUpperCase()}_`;
  const env: Record<string, string> = { [`${p}URL`]: c.url, [`${p}PID`]: String(c.pid) };
  if (c.username !== undefined) env[`${p}USER`] = c.username;
  if (c.password !== undefined) env[`${p}PASSWORD`] = c.password;
  if (c.caFile !== undefined) env[`${p}CA_FILE`] = c.caFile;
  if (c.caFingerprint !== undefined) env[`${p}CA_FINGERPRINT`] = c.caFingerprint;
  if (c.bearer !== undefined) env[`${p}BEARER`] = c.bearer;
  if (c.limitedUser !== undefined) {
    env[`${p}LIMITED_USER`] = c.limitedUser.username;
    env[`${p}LIMITED_PASSWORD`] = c.limitedUser.password;
    env[`${p}LIMITED_INDEX_PATTERN`] = c.limitedUser.indexPattern;
  }
  return env;
}

async function main(): Promise<number> {
  const { ids, command, verbose } = parseArgs(process.argv.slice(2));
  const started: LocalCluster[] = [];
  const stopAll = () => Promise.allSettled(started.map((c) => c.stop()));

  const results = await limited(
    ids.map((id) => async () => {
      const spec = SPECS[id]!;
      const t0 = performance.now();
      const cluster = await startLocalCluster({
        ...spec.options,
        name: `cutover-test-${id}`,
        // Expired PIT/scroll contexts are reaped every second instead of every minute, so the tests of
        // "a pause outlived keep_alive" need seconds, not minutes.
        settings: { 'search.keep_alive_interval': '1s' },
        log: verbose ? (line) => console.error(`[${id}] ${line}`) : undefined,
      });
      started.push(cluster);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      const auth = cluster.username ? ` user=${cluster.username}` : '';
      console.error(
        `with-clusters: ${id.padEnd(6)} ${cluster.distribution} ${cluster.version} ${cluster.url}${auth} ready in ${secs}s`,
      );
      return { id, cluster };
    }),
    MAX_BOOTING,
  );

  const failures = results.flatMap((r, i) =>
    r.status === 'rejected' ? [{ id: ids[i]!, reason: r.reason }] : [],
  );
  if (failures.length > 0) {
    for (const f of failures) {
      console.error(
        `with-clusters: ${f.id} failed to start: ${f.reason instanceof Error ? f.reason.message : String(f.reason)}`,
      );
    }
    console.error('with-clusters: not running the command without every requested cluster');
    await stopAll();
    return 1;
  }

  const env: NodeJS.ProcessEnv = { ...process.env, CUTOVER_TEST_KINDS: ids.join(',') };
  for (const r of results) {
    if (r.status === 'fulfilled') Object.assign(env, envFor(r.value.id, r.value.cluster));
  }

  const [cmd, ...args] = command;
  const child = spawn(cmd!, args, { stdio: 'inherit', env });
  // The clusters are about to go (src/local/servers stops them on these signals), so the command
  // must not outlive them. On Ctrl-C it also got SIGINT from the terminal; SIGTERM makes sure.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    });
  }
  const code = await new Promise<number>((resolve) => {
    child.on('error', (err) => {
      console.error(`with-clusters: could not run ${cmd}: ${err.message}`);
      resolve(127);
    });
    child.on('exit', (c, signal) => resolve(c ?? 128 + (signal ? (os.constants.signals[signal] ?? 1) : 1)));
  });
  const t0 = performance.now();
  await stopAll();
  console.error(
    `with-clusters: stopped ${started.length} cluster(s) in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`with-clusters: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
