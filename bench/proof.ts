/**
 * Proof throughput: `cutover verify` (versions, the default; full; full repeated; a 1% sample) on an index of N ~1 KB documents
 * copied by cutover on a local Elasticsearch 8. Peak RSS of the verifying process through /usr/bin/time.
 *
 *   npx tsc -p . && node --import tsx bench/proof.ts [--docs 1000000]
 *
 * Never part of the test suite. Results: bench/out/proof-<docs>.json and stdout.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Cluster } from '../src/cluster/client.js';
import { startLocalCluster } from '../src/local/servers.js';
import { ensureDataSet, loadFiles, MAPPINGS, measure, writeJson } from './lib.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(BENCH, '..', 'dist', 'src', 'cli', 'main.js');
const docsArg = process.argv.indexOf('--docs');
const DOCS = docsArg > 0 ? Number(process.argv[docsArg + 1]) : 1_000_000;
const log = (m: string) => console.error(`[proof ${new Date().toISOString().slice(11, 19)}] ${m}`);

const set = await ensureDataSet(path.join(BENCH, '.data'), DOCS, 500);
log(`data: ${set.docs} docs, ${(set.sourceBytes / 1048576).toFixed(0)} MB of _source`);
const server = await startLocalCluster({ kind: 'es8', heapMb: 2048 });
const es = new Cluster({ url: server.url });
try {
  await es.createIndex('src', {
    settings: { number_of_shards: 3, number_of_replicas: 0, refresh_interval: '-1' },
    mappings: MAPPINGS,
  });
  const load = await loadFiles(es, 'src', set, { concurrency: 3, filesPerRequest: 1 });
  await es.putSettings('src', { 'index.refresh_interval': null });
  await es.refresh('src');
  log(`loaded in ${load.seconds.toFixed(1)} s`);
  const dir = await mkdtemp(path.join(tmpdir(), 'cutover-proof-bench-'));
  const spec = path.join(dir, 'spec.yaml');
  await writeFile(
    spec,
    YAML.stringify({
      name: 'proof-bench',
      source: { cluster: { url: server.url }, index: 'src' },
      target: { index: 'dst' },
      copy: { sampleSize: 20, batchDocs: 1000, concurrency: 3 },
      verify: { mode: 'off' },
    }),
  );
  const copy = await measure(process.execPath, [CLI, '--json', 'run', spec]);
  if (copy.code !== 0) throw new Error(`copy failed: ${copy.stderrTail}`);
  log(`copied in ${copy.wallSeconds.toFixed(1)} s`);

  const runs: Record<string, unknown> = {};
  for (const [label, args] of [
    ['versions', ['verify', spec, '--mode', 'versions']],
    ['full', ['verify', spec, '--mode', 'full']],
    ['repeat-unchanged', ['verify', spec, '--mode', 'full']],
    ['sample-1pct', ['verify', spec, '--mode', 'sample', '--sample-rate', '0.01']],
  ] as const) {
    const m = await measure(process.execPath, [CLI, '--json', ...args]);
    const r = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}');
    runs[label] = {
      exitCode: m.code,
      passed: r.passed,
      wallSeconds: Number(m.wallSeconds.toFixed(2)),
      sourceChecked: r.sourceChecked,
      targetChecked: r.targetChecked,
      sourceDocsPerSecond: r.sourceChecked ? Math.round(r.sourceChecked / m.wallSeconds) : null,
      peakRssMb: m.peakRssMb === null ? null : Number(m.peakRssMb.toFixed(1)),
      cpuSeconds: m.userSeconds === null ? null : Number((m.userSeconds + (m.systemSeconds ?? 0)).toFixed(1)),
      // a run with this proof against the copy alone
      runOverCopy: Number(((copy.wallSeconds + m.wallSeconds) / copy.wallSeconds).toFixed(2)),
      confidence: r.confidence,
    };
    log(`${label}: ${JSON.stringify(runs[label])}`);
  }
  const result = {
    date: new Date().toISOString(),
    docs: DOCS,
    server: `elasticsearch ${server.version}`,
    copySeconds: copy.wallSeconds,
    runs,
  };
  await writeJson(path.join(BENCH, 'out', `proof-${DOCS}.json`), result);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await es.close();
  await server.stop();
}
