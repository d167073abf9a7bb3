/**
 * Copy benchmark (never part of the test suite, never run in CI):
 *
 *   node --import tsx bench/copy.ts [--docs 1000000] [--kind es8] [--parts reads,cutover,raw,elasticdump,os,es9]
 *     [--variants default,default+noverify,b500+noverify] [--elasticdump-variants 5000x4,2000x3] [--repeat 3]
 *     [--quiet-wait 60]
 *     [--read-rounds 2] [--shards 3] [--raw-concurrency N] [--heap 2048] [--cli dist/src/cli/main.js]
 *     [--keep-data] [--out bench/out/copy-<docs>.json]
 *
 * On one local Elasticsearch (startLocalCluster) it generates a source index of N ~1 KB documents (3 shards,
 * 0 replicas) and measures, on the same server and data:
 *   reads        a pure PIT read pass per sort (_seq_no, the engine's; _shard_doc; _doc), checked for
 *                completeness (every id exactly once)
 *   cutover      the CLI (`node <cli> --json run spec.yaml`) end to end, default and tuned batch variants:
 *                wall time, docs/s, MB/s, peak RSS, client and server CPU
 *   raw          the raw ingest ceiling: the pre-built NDJSON files bulk-loaded with the bulk size and
 *                concurrency of cutover's best variant into an index with the target's copy-time settings
 *   elasticdump  elasticdump index -> index (bench/.tools, installed by `npm install --no-save --prefix
 *                bench/.tools elasticdump`)
 * then, with `os`, on a local OpenSearch 3: server-side `_reindex?slices=auto` vs cutover on the same data,
 * and with `es9` the read-sort comparison on Elasticsearch 9.
 *
 * Every run records server, client and other processes' CPU (the machine may be shared); --quiet-wait waits for
 * an idle machine before each measurement. Variants and their modifiers: see parseVariant.
 *
 * Results: bench/out/copy-<docs>.json (rewritten after every measurement); tables: bench/report.ts. Human
 * page: docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Cluster } from '../src/cluster/client.js';
import { type LocalCluster, type ServerKind, startLocalCluster } from '../src/local/servers.js';
import { specSchema } from '../src/spec/schema.js';
import {
  cpuSecondsOf,
  type DataSet,
  docId,
  ensureDataSet,
  idNumber,
  loadFiles,
  MAPPINGS,
  type Measured,
  machineBusySeconds,
  measure,
  writeJson,
} from './lib.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
/** primary shards of every index the benchmark creates (--shards); cutover copies one slice per shard */
let SHARDS = 3;
const CHUNK = 500;
const SOURCE = 'src';

// ---- arguments -----------------------------------------------------------------------------------------

interface Args {
  docs: number;
  kind: ServerKind;
  heapMb: number;
  cli: string;
  parts: Set<string>;
  variants: string[];
  edVariants: string[];
  readRounds: number;
  repeat: number;
  shards: number;
  quietWait: number;
  rawConcurrency: number | undefined;
  keepData: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    docs: 1_000_000,
    kind: 'es8',
    heapMb: 2048,
    cli: path.join(ROOT, 'dist/src/cli/main.js'),
    parts: new Set(['reads', 'cutover', 'raw', 'elasticdump', 'os', 'es9']),
    variants: ['default', 'default+noverify', 'b500+noverify'],
    edVariants: ['5000x4', '2000x3'],
    readRounds: 2,
    repeat: 3,
    shards: 3,
    quietWait: 0,
    rawConcurrency: undefined,
    keepData: false,
    out: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--docs') a.docs = Number(v());
    else if (k === '--kind') a.kind = v() as ServerKind;
    else if (k === '--heap') a.heapMb = Number(v());
    else if (k === '--cli') a.cli = path.resolve(v());
    else if (k === '--parts') a.parts = new Set(v().split(',').filter(Boolean));
    else if (k === '--variants') a.variants = v().split(',').filter(Boolean);
    else if (k === '--elasticdump-variants') a.edVariants = v().split(',').filter(Boolean);
    else if (k === '--read-rounds') a.readRounds = Number(v());
    else if (k === '--repeat') a.repeat = Number(v());
    else if (k === '--shards') a.shards = Number(v());
    else if (k === '--quiet-wait') a.quietWait = Number(v());
    else if (k === '--raw-concurrency') a.rawConcurrency = Number(v());
    else if (k === '--keep-data') a.keepData = true;
    else if (k === '--out') a.out = path.resolve(v());
    else throw new Error(`unknown argument ${k}`);
  }
  if (!Number.isInteger(a.docs) || a.docs < CHUNK) throw new Error(`--docs must be an integer >= ${CHUNK}`);
  a.out ||= path.join(BENCH, 'out', `copy-${a.docs}${a.shards === 3 ? '' : `-${a.shards}shards`}.json`);
  return a;
}

// ---- results -------------------------------------------------------------------------------------------

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

// biome-ignore lint/suspicious/noExplicitAny: a free-form results document, written as JSON
type Json = any;
let results: Json = {};
let outFile = '';
const save = () => writeJson(outFile, results);

function machine(): Json {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  return {
    nproc: os.availableParallelism(),
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    cpuModel: model,
    kernel: os.release(),
    node: process.version,
    gitHead: git(['rev-parse', '--short', 'HEAD']),
    srcUncommitted: git(['status', '--short', '--', 'src']).split('\n').filter(Boolean),
    loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

// ---- cluster helpers -----------------------------------------------------------------------------------

async function startServer(kind: ServerKind, heapMb: number): Promise<{ server: LocalCluster; es: Cluster }> {
  log(`starting ${kind} (heap ${heapMb} MB)...`);
  const server = await startLocalCluster({ kind, heapMb });
  log(`${server.distribution} ${server.version} at ${server.url} (pid ${server.pid})`);
  // _reindex with wait_for_completion and a 1M-document bulk can outlast the default 120 s.
  const es = new Cluster({ url: server.url, requestTimeoutMs: 3_600_000 });
  return { server, es };
}

const copyTimeSettings = {
  number_of_shards: SHARDS,
  number_of_replicas: 0,
  refresh_interval: '-1',
};

async function freshIndex(es: Cluster, index: string): Promise<void> {
  if (await es.indexExists(index)) await es.deleteIndex(index);
  await es.createIndex(index, { settings: { index: copyTimeSettings }, mappings: MAPPINGS });
}

async function expectCount(es: Cluster, index: string, docs: number): Promise<void> {
  await es.refresh(index);
  const n = await es.count(index);
  if (n !== docs) throw new Error(`${index} holds ${n} documents, expected ${docs}`);
}

let quietWaitMaxSeconds = 0;
const QUIET_CORES = 0.3;

/**
 * Before a measurement, wait (at most --quiet-wait seconds) until the whole machine has been below
 * QUIET_CORES busy cores for 3 s: other sessions' test servers come and go on this shared box, and our own
 * server may still be merging after the previous load. Returns the seconds waited.
 */
async function waitQuiet(): Promise<number> {
  if (quietWaitMaxSeconds <= 0) return 0;
  const started = Date.now();
  while (Date.now() - started < quietWaitMaxSeconds * 1000) {
    const b0 = machineBusySeconds();
    await sleep(3000);
    if ((machineBusySeconds() - b0) / 3 < QUIET_CORES) break;
  }
  return round((Date.now() - started) / 1000, 1);
}

/**
 * CPU spent during a measurement: by the server JVM, by the measured client, and by everything else on the
 * machine (other sessions' servers and tests share these 2 cores).
 */
async function cpuWindow(server: LocalCluster): Promise<(clientCpuSeconds: number | null) => Json> {
  const waited = await waitQuiet();
  const s0 = cpuSecondsOf(server.pid);
  const m0 = machineBusySeconds();
  const l0 = os.loadavg()[0]!;
  const t0 = Date.now();
  return (client) => {
    const s1 = cpuSecondsOf(server.pid);
    const serverCpu = s0 !== null && s1 !== null ? s1 - s0 : null;
    const busy = machineBusySeconds() - m0;
    const other = serverCpu === null ? null : Math.max(0, busy - serverCpu - (client ?? 0));
    const otherCores = other === null ? null : other / Math.max(0.001, (Date.now() - t0) / 1000);
    return {
      serverCpuSeconds: serverCpu === null ? null : round(serverCpu, 1),
      clientCpuSeconds: client === null ? null : round(client, 1),
      machineBusyCpuSeconds: round(busy, 1),
      otherCpuSeconds: other === null ? null : round(other, 1),
      /** average cores used by other processes meanwhile; `clean`: under QUIET_CORES */
      otherCores: otherCores === null ? null : round(otherCores, 2),
      clean: otherCores === null ? null : otherCores < QUIET_CORES,
      loadAverage1m: [round(l0, 2), round(os.loadavg()[0]!, 2)],
      quietWaitSeconds: waited,
    };
  };
}

async function generateSource(es: Cluster, server: LocalCluster, set: DataSet): Promise<Json> {
  log(`loading ${set.docs} documents into ${SOURCE} (${SHARDS} shards, 0 replicas)...`);
  await freshIndex(es, SOURCE);
  const cpu = await cpuWindow(server);
  const load = await loadFiles(es, SOURCE, set, { concurrency: 4, filesPerRequest: 1 });
  // A normal source index afterwards: default refresh, everything searchable and flushed.
  await es.putSettings(SOURCE, { 'index.refresh_interval': null });
  await expectCount(es, SOURCE, set.docs);
  await es.request({ method: 'POST', path: `/${SOURCE}/_flush`, idempotent: true });
  const cpuUsed = cpu(null);
  const stats = await es.request<Json>({
    method: 'GET',
    path: `/${SOURCE}/_stats/store,segments`,
    idempotent: true,
  });
  const r = {
    docs: set.docs,
    loadSeconds: round(load.seconds, 2),
    docsPerSecond: Math.round(set.docs / load.seconds),
    bulkConcurrency: 4,
    docsPerBulk: CHUNK,
    ...cpuUsed,
    storeMb: round(stats.body._all.primaries.store.size_in_bytes / 2 ** 20, 1),
    segments: stats.body._all.primaries.segments.count,
  };
  log(`source loaded: ${JSON.stringify(r)}`);
  return r;
}

// ---- reads ---------------------------------------------------------------------------------------------

async function readPass(es: Cluster, docs: number, sort: string, batch: number): Promise<Json> {
  const pit = await es.openPit(SOURCE, '5m');
  const seen = new Uint8Array(docs);
  let hits = 0;
  let duplicates = 0;
  let pages = 0;
  let tookMs = 0;
  let pitId = pit;
  const started = process.hrtime.bigint();
  const slice = async (id: number) => {
    let after: unknown[] | undefined;
    for (;;) {
      const body: Json = {
        size: batch,
        pit: { id: pitId, keep_alive: '5m' },
        sort: [{ [sort]: 'asc' }],
        seq_no_primary_term: true,
        track_total_hits: false,
        slice: { id, max: SHARDS },
      };
      if (after) body.search_after = after;
      const res = await es.search(undefined, body);
      if (res._shards.failed > 0) throw new Error(`${sort}: ${res._shards.failed} shards failed`);
      if (res.pit_id) pitId = res.pit_id;
      pages++;
      tookMs += res.took;
      const page = res.hits.hits;
      if (page.length === 0) return;
      for (const h of page) {
        const n = idNumber(h._id);
        if (seen[n]) duplicates++;
        else seen[n] = 1;
      }
      hits += page.length;
      after = page[page.length - 1]!.sort;
      if (!after) throw new Error(`${sort}: hits carry no sort values`);
    }
  };
  try {
    await Promise.all(Array.from({ length: SHARDS }, (_, i) => slice(i)));
  } finally {
    await es.closePit(pitId).catch(() => undefined);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let unique = 0;
  for (const b of seen) unique += b;
  return {
    sort,
    seconds: round(seconds, 2),
    docsPerSecond: Math.round(hits / seconds),
    hits,
    unique,
    duplicates,
    missing: docs - unique,
    complete: unique === docs && duplicates === 0,
    pages,
    serverTookMs: tookMs,
  };
}

/**
 * The read passes, each with the server's CPU: the first reads as the engine does (`_seq_no`, pages of 500, the
 * default batch), which is the part of a copy's server CPU that raw ingest does not pay.
 */
async function reads(es: Cluster, server: LocalCluster, docs: number, rounds: number): Promise<Json[]> {
  const passes: Array<[string, number]> = [
    ['_seq_no', 500],
    ['_seq_no', 1000],
    ['_shard_doc', 1000],
    ['_doc', 1000],
  ];
  const out: Json[] = [];
  for (let r = 1; r <= rounds; r++) {
    for (const [sort, batch] of passes) {
      try {
        const cpu = await cpuWindow(server);
        const c0 = process.cpuUsage();
        const pass = await readPass(es, docs, sort, batch);
        const c1 = process.cpuUsage(c0);
        const p = { round: r, batch, ...pass, ...cpu((c1.user + c1.system) / 1e6) };
        log(`read pass: ${JSON.stringify(p)}`);
        out.push(p);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        log(`read pass ${sort} failed: ${msg}`);
        out.push({ round: r, sort, error: msg.slice(0, 500) });
      }
    }
  }
  return out;
}

// ---- cutover -------------------------------------------------------------------------------------------

interface Variant {
  name: string;
  copy: { batchDocs?: number; concurrency?: number; gzip?: boolean; engine?: 'reindex' };
  /** +w<N>: copy.workers on the NATS server at CUTOVER_BENCH_NATS, the runner plus N-1 `cutover worker` processes */
  processes?: number;
  /** node flags for the cutover process (heap and profiling experiments) */
  nodeFlags?: string[];
  /** state directory on tmpfs (/dev/shm): checkpoint fsyncs cost next to nothing there */
  shm?: boolean;
  /** verify.mode = off: no document-by-document proof after the copy (the count gate still runs) */
  noVerify?: boolean;
  /** verify.mode = full: every document's content compared (the default is the versions proof) */
  fullProof?: boolean;
}

/**
 * `default`, or b<batchDocs>[c<concurrency>][z] (z: gzip; concurrency defaults to the shard count), then
 * optional `+old<MB>` (--max-old-space-size), `+semi<MB>` (--max-semi-space-size), `+prof` (--cpu-prof into
 * bench/out/profiles) and `+mem` (bench/memsample.mjs: the memory breakdown at the peak RSS, in stderr.log) for the
 * CLI's node, `+shm` (state directory on tmpfs, to measure what the checkpoint
 * fsyncs cost), `+noverify` (verify.mode off: copy and count gate, no document-by-document proof) and
 * `+fullproof` (verify.mode full: every document's content instead of the default versions proof).
 */
function parseVariant(name: string): Variant {
  const [base, ...mods] = name.split('+');
  const m = /^b(\d+)(?:c(\d+))?(z)?$/.exec(base ?? '');
  if (base !== 'default' && !m)
    throw new Error(
      `bad variant ${name}: use default or b<batchDocs>[c<concurrency>][z], then +old<MB>/+semi<MB>`,
    );
  const copy = m
    ? { batchDocs: Number(m[1]), concurrency: m[2] ? Number(m[2]) : SHARDS, ...(m[3] ? { gzip: true } : {}) }
    : {};
  if (mods.includes('rx')) Object.assign(copy, { engine: 'reindex' as const });
  const w = mods.map((mod) => /^w(\d+)$/.exec(mod)).find(Boolean);
  const flags = mods
    .filter(
      (mod) =>
        mod !== 'shm' && mod !== 'noverify' && mod !== 'fullproof' && mod !== 'rx' && !/^w\d+$/.test(mod),
    )
    .map((mod) => {
      if (mod === 'prof') return `--cpu-prof-dir=${path.join(BENCH, 'out', 'profiles')}`;
      if (mod === 'mem') return `--import=${path.join(BENCH, 'memsample.mjs')}`;
      const f = /^(old|semi)(\d+)$/.exec(mod);
      if (!f) throw new Error(`bad variant modifier +${mod}: use +old<MB>, +semi<MB> or +prof`);
      return f[1] === 'old' ? `--max-old-space-size=${f[2]}` : `--max-semi-space-size=${f[2]}`;
    });
  if (mods.includes('prof')) flags.unshift('--cpu-prof');
  return {
    name,
    copy,
    ...(flags.length ? { nodeFlags: flags } : {}),
    ...(mods.includes('shm') ? { shm: true } : {}),
    ...(mods.includes('noverify') ? { noVerify: true } : {}),
    ...(mods.includes('fullproof') ? { fullProof: true } : {}),
    ...(w ? { processes: Number(w[1]) } : {}),
  };
}

/** The spec's own defaults: what `default` means is whatever a user without these fields gets. */
const COPY_DEFAULTS = specSchema.shape.copy.parse(undefined) as { batchDocs: number; concurrency: number };

function effective(v: Variant): { batchDocs: number; concurrency: number; streams: number } {
  const batchDocs = v.copy.batchDocs ?? COPY_DEFAULTS.batchDocs;
  const concurrency = v.copy.concurrency ?? COPY_DEFAULTS.concurrency;
  // Above the shard count the spare streams are _seq_no ranges of the largest shards (src/copy/ranges.ts).
  return { batchDocs, concurrency, streams: concurrency };
}

function summarize(m: Measured): Json {
  return {
    exitCode: m.code,
    wallSeconds: round(m.wallSeconds, 2),
    userCpuSeconds: m.userSeconds,
    systemCpuSeconds: m.systemSeconds,
    peakRssMb: m.peakRssMb === null ? null : round(m.peakRssMb, 1),
    rssSource: m.rssSource,
  };
}

async function runCutover(
  es: Cluster,
  server: LocalCluster,
  set: DataSet,
  cli: string,
  variant: Variant,
  label: string,
  rep = 1,
): Promise<Json> {
  const work = path.join(BENCH, '.work', `${label}-${variant.name}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const target = `cutover-${variant.name.replace(/[^a-z0-9]/g, '-')}`;
  if (await es.indexExists(target)) await es.deleteIndex(target);
  const spec = {
    name: `bench-${variant.name.replace(/[^a-z0-9]/g, '-')}`,
    source: { cluster: { url: server.url }, index: SOURCE },
    target: { index: target },
    copy: {
      sampleSize: 20,
      ...variant.copy,
      ...(variant.processes
        ? {
            workers: {
              kind: 'nats',
              servers: process.env.CUTOVER_BENCH_NATS ?? 'nats://127.0.0.1:4222',
              bucket: `cutover-bench-${process.pid}-${rep}-${variant.name.replace(/[^a-z0-9]/g, '-')}`,
            },
          }
        : {}),
    },
    ...(variant.shm ? { stateDir: `/dev/shm/cutover-bench-${process.pid}` } : {}),
    ...(variant.noVerify ? { verify: { mode: 'off' } } : {}),
    ...(variant.fullProof ? { verify: { mode: 'full' } } : {}),
  };
  const specFile = path.join(work, 'spec.yaml');
  await writeFile(specFile, stringify(spec));
  log(`cutover ${variant.name}: ${JSON.stringify(spec.copy)}...`);
  const cpu = await cpuWindow(server);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const stderrFile = path.join(work, 'stderr.log');
  const argv = [...(variant.nodeFlags ?? []), cli, '--json', 'run', specFile];
  // Workers first: they wait for the runner to share the copy.
  const workers = Array.from({ length: Math.max(0, (variant.processes ?? 1) - 1) }, (_, i) =>
    measure(process.execPath, [...(variant.nodeFlags ?? []), cli, '--json', 'worker', specFile], {
      cwd: work,
      env,
      stderrFile: path.join(work, `worker-${i}.log`),
    }),
  );
  const m = await measure(process.execPath, argv, { cwd: work, env, stderrFile });
  const wm = await Promise.all(workers);
  const workerCpu = wm.reduce((t, x) => t + (x.userSeconds ?? 0) + (x.systemSeconds ?? 0), 0);
  const cpuUsed = cpu(m.userSeconds === null ? null : m.userSeconds + (m.systemSeconds ?? 0) + workerCpu);
  const steps = await stepSeconds(stderrFile);
  const memLine = (await readFile(stderrFile, 'utf8').catch(() => ''))
    .split('\n')
    .find((l) => l.startsWith('memsample '));
  const memory = memLine ? JSON.parse(memLine.slice('memsample '.length)) : null;
  if (memory) log(`cutover ${variant.name}: memory (MB) ${JSON.stringify(memory)}`);
  let report: Json = null;
  try {
    report = JSON.parse(m.stdout.trim().split('\n').pop() ?? 'null');
  } catch {
    report = null;
  }
  const ok =
    m.code === 0 &&
    wm.every((x) => x.code === 0) &&
    report?.phase === 'cut-over' &&
    report?.countGate?.target === set.docs;
  const r = {
    variant: variant.name,
    label,
    rep,
    ...effective(variant),
    gzip: !!variant.copy.gzip,
    nodeFlags: variant.nodeFlags ?? null,
    stateOnTmpfs: !!variant.shm,
    proof: !variant.noVerify,
    processes: variant.processes ?? 1,
    ...(memory ? { memory } : {}),
    ok,
    ...summarize(m),
    ...(wm.length
      ? {
          workers: wm.map((x) => ({ ...summarize(x), stdoutTail: x.stdout.trim().split('\n').pop() })),
        }
      : {}),
    docsPerSecond: Math.round(set.docs / m.wallSeconds),
    mbPerSecond: round(set.sourceBytes / 2 ** 20 / m.wallSeconds, 2),
    copyPhaseSeconds: report?.durationSeconds ?? null,
    copyPhaseDocsPerSecond: report?.docsPerSecond ?? null,
    copyPhaseBulkMbPerSecond: report?.mbPerSecond ?? null,
    ...cpuUsed,
    steps,
    report,
    stderrTail: ok ? undefined : m.stderrTail,
  };
  log(`cutover ${variant.name}: ${JSON.stringify({ ...r, report: undefined, stderrTail: undefined })}`);
  if (await es.indexExists(target)) await es.deleteIndex(target);
  await rm(work, { recursive: true, force: true });
  if (variant.shm) await rm(`/dev/shm/cutover-bench-${process.pid}`, { recursive: true, force: true });
  return r;
}

/** Seconds per runbook step, from the CLI's JSON log lines (`event: step` with an ISO time). */
async function stepSeconds(stderrFile: string): Promise<Record<string, number>> {
  const marks: Array<{ step: string; at: number }> = [];
  let last = 0;
  for (const line of (await readFile(stderrFile, 'utf8').catch(() => '')).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { event?: string; step?: string; time?: string };
      const at = j.time ? Date.parse(j.time) : Number.NaN;
      if (Number.isNaN(at)) continue;
      last = Math.max(last, at);
      if (j.event === 'step' && j.step) marks.push({ step: j.step, at });
    } catch {
      // not a log line
    }
  }
  const out: Record<string, number> = {};
  marks.forEach((mk, i) => {
    out[mk.step] = round(((marks[i + 1]?.at ?? last) - mk.at) / 1000, 2);
  });
  return out;
}

/**
 * The fastest successful run of a configuration an operator could choose: plain batch variants, with or
 * without the proof (+noverify); +shm/+old/+semi/+prof are experiments, not configurations.
 */
function best(runs: Json[]): Json | undefined {
  const plain = (v: string) => v.split('+').every((m, i) => i === 0 || m === 'noverify');
  return runs.filter((r) => r.ok && plain(r.variant)).sort((a, b) => a.wallSeconds - b.wallSeconds)[0];
}

// ---- raw ceiling, elasticdump, _reindex ----------------------------------------------------------------

async function rawCeiling(
  es: Cluster,
  server: LocalCluster,
  set: DataSet,
  like: Json,
  rep: number,
  concurrencyOverride?: number,
): Promise<Json> {
  const filesPerRequest = Math.max(1, Math.round(like.batchDocs / CHUNK));
  const concurrency = concurrencyOverride ?? like.streams ?? like.slicesInFlight;
  log(`raw ingest: ${filesPerRequest * CHUNK} docs per bulk, ${concurrency} in flight...`);
  await freshIndex(es, 'raw');
  const cpu = await cpuWindow(server);
  const self0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const load = await loadFiles(es, 'raw', set, { concurrency, filesPerRequest });
  await expectCount(es, 'raw', set.docs);
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  const self = process.cpuUsage(self0);
  const cpuUsed = cpu((self.user + self.system) / 1e6);
  await es.deleteIndex('raw');
  const r = {
    rep,
    docsPerBulk: filesPerRequest * CHUNK,
    concurrency,
    loadSeconds: round(load.seconds, 2),
    loadAndRefreshSeconds: round(total, 2),
    docsPerSecond: Math.round(set.docs / total),
    loadOnlyDocsPerSecond: Math.round(set.docs / load.seconds),
    mbPerSecond: round(set.sourceBytes / 2 ** 20 / total, 2),
    bulkMbPerSecond: round(load.bytes / 2 ** 20 / load.seconds, 2),
    serverTookMsSum: load.tookMs,
    ...cpuUsed,
  };
  log(`raw: ${JSON.stringify(r)}`);
  return r;
}

async function elasticdump(es: Cluster, server: LocalCluster, set: DataSet, variant: string): Promise<Json> {
  const bin = path.join(BENCH, '.tools/node_modules/elasticdump/bin/elasticdump');
  if (!existsSync(bin))
    return { variant, error: 'not installed: npm install --no-save --prefix bench/.tools elasticdump' };
  const m = /^(\d+)x(\d+)$/.exec(variant);
  if (!m) throw new Error(`bad elasticdump variant ${variant}: use <limit>x<concurrency>`);
  const [limit, concurrency] = [Number(m[1]), Number(m[2])];
  await freshIndex(es, 'dumped');
  const flags = [
    `--input=${server.url}/${SOURCE}`,
    `--output=${server.url}/dumped`,
    '--type=data',
    `--limit=${limit}`,
    `--concurrency=${concurrency}`,
    '--quiet',
  ];
  log(`elasticdump ${flags.slice(2).join(' ')}...`);
  const cpu = await cpuWindow(server);
  const shim = path.join(BENCH, 'elasticdump-shim.cjs');
  const run = await measure(process.execPath, ['-r', shim, bin, ...flags], {
    cwd: BENCH,
    env: {
      ...process.env,
      BENCH_ES_VERSION: server.version,
      BENCH_ELASTICDUMP_DIR: path.join(BENCH, '.tools/node_modules/elasticdump'),
    },
  });
  const cpuUsed = cpu(run.userSeconds === null ? null : run.userSeconds + (run.systemSeconds ?? 0));
  let count = -1;
  try {
    await es.refresh('dumped');
    count = await es.count('dumped');
  } catch {
    // reported below
  }
  await es.deleteIndex('dumped').catch(() => undefined);
  const r = {
    variant,
    flags: flags.slice(2),
    versionProbe: 'answered by bench/elasticdump-shim.cjs (integ-test zips have no GET /)',
    ok: run.code === 0 && count === set.docs,
    targetCount: count,
    ...summarize(run),
    docsPerSecond: Math.round(set.docs / run.wallSeconds),
    mbPerSecond: round(set.sourceBytes / 2 ** 20 / run.wallSeconds, 2),
    ...cpuUsed,
    stderrTail: run.code === 0 ? undefined : run.stderrTail,
  };
  log(`elasticdump: ${JSON.stringify(r)}`);
  return r;
}

/** A failed _reindex is a result too; the benchmark goes on. */
async function reindex(
  es: Cluster,
  server: LocalCluster,
  set: DataSet,
  external: boolean,
  rep = 1,
): Promise<Json> {
  try {
    return await reindexOnce(es, server, set, external, rep);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log(`_reindex failed: ${msg}`);
    await es.deleteIndex(external ? 'reindexed-ext' : 'reindexed').catch(() => undefined);
    return { rep, variant: external ? 'version_type external' : 'default (internal versioning)', error: msg };
  }
}

async function reindexOnce(
  es: Cluster,
  server: LocalCluster,
  set: DataSet,
  external: boolean,
  rep = 1,
): Promise<Json> {
  const dest = external ? 'reindexed-ext' : 'reindexed';
  log(`_reindex?slices=auto -> ${dest}${external ? ' (version_type external)' : ''}...`);
  await freshIndex(es, dest);
  const cpu = await cpuWindow(server);
  const t0 = process.hrtime.bigint();
  // As a task, polled every 250 ms: with wait_for_completion=true, OpenSearch 3.8 answered a 1M-document
  // reindex with more header bytes than undici accepts (Headers Overflow Error), after the work was done.
  const started = await es.request<Json>({
    method: 'POST',
    path: '/_reindex',
    query: { slices: 'auto', wait_for_completion: false, refresh: false },
    body: {
      source: { index: SOURCE, size: 1000 },
      dest: { index: dest, ...(external ? { version_type: 'external' } : {}) },
    },
  });
  const task = String(started.body.task);
  let res: { body: Json };
  for (;;) {
    const t = await es.request<Json>({
      method: 'GET',
      path: `/_tasks/${encodeURIComponent(task)}`,
      idempotent: true,
    });
    if (t.body.completed) {
      if (t.body.error)
        throw new Error(`_reindex task failed: ${JSON.stringify(t.body.error).slice(0, 300)}`);
      res = { body: t.body.response };
      break;
    }
    await sleep(250);
  }
  const t1 = process.hrtime.bigint();
  await expectCount(es, dest, set.docs);
  const t2 = process.hrtime.bigint();
  const cpuUsed = cpu(null);
  await es.deleteIndex(dest);
  const reindexSeconds = Number(t1 - t0) / 1e9;
  const total = Number(t2 - t0) / 1e9;
  const r = {
    rep,
    variant: external ? 'version_type external' : 'default (internal versioning)',
    slices: res.body.slices?.length ?? null,
    created: res.body.created,
    failures: res.body.failures?.length ?? 0,
    reindexSeconds: round(reindexSeconds, 2),
    reindexAndRefreshSeconds: round(total, 2),
    docsPerSecond: Math.round(set.docs / total),
    reindexOnlyDocsPerSecond: Math.round(set.docs / reindexSeconds),
    mbPerSecond: round(set.sourceBytes / 2 ** 20 / total, 2),
    ...cpuUsed,
  };
  log(`_reindex: ${JSON.stringify(r)}`);
  return r;
}

// ---- ratios --------------------------------------------------------------------------------------------

const fastest = (runs: Json[] | undefined) =>
  (runs ?? [])
    .filter((r) => r.ok !== false && typeof r.docsPerSecond === 'number')
    .sort((a, b) => b.docsPerSecond - a.docsPerSecond)[0];

function ratios(): Json {
  const es = results.es ?? {};
  const osr = results.os ?? {};
  const cut = best(es.cutover ?? []);
  const raw = fastest(es.raw);
  const ed = fastest(es.elasticdump);
  const osCut = best((osr.cutover ?? []).filter((r: Json) => !String(r.variant).includes('+rx')));
  const osRx = best((osr.cutover ?? []).filter((r: Json) => r.variant === 'default+rx+noverify'));
  const rx = fastest((osr.reindex ?? []).filter((r: Json) => r.variant.startsWith('default')));
  const q = (a: number | undefined, b: number | undefined) => (a && b ? round(a / b, 3) : null);
  const out: Json = {
    bestCutoverVariant: cut?.variant ?? null,
    cutoverOverRaw: {
      goal: '>= 0.85',
      defaultWithProofEndToEnd: q(
        best((es.cutover ?? []).filter((r: Json) => r.variant === 'default'))?.docsPerSecond,
        raw?.docsPerSecond,
      ),
      endToEnd: q(cut?.docsPerSecond, raw?.docsPerSecond),
      copyPhaseOverLoadOnly: q(cut?.copyPhaseDocsPerSecond, raw?.loadOnlyDocsPerSecond),
    },
    cutoverOverElasticdump: {
      goal: '>= 10',
      endToEnd: q(cut?.docsPerSecond, ed?.docsPerSecond),
    },
    cutoverOverReindex: {
      goal: '>= 1.0',
      bestCutoverVariantOnOs: osCut?.variant ?? null,
      endToEnd: q(osCut?.docsPerSecond, rx?.docsPerSecond),
      copyPhaseOverReindexOnly: q(osCut?.copyPhaseDocsPerSecond, rx?.reindexOnlyDocsPerSecond),
    },
    reindexEngineOverBareReindex: {
      goal: '>= 0.95 (within 5 %)',
      copyPhaseOverReindexOnly: q(osRx?.copyPhaseDocsPerSecond, rx?.reindexOnlyDocsPerSecond),
      endToEndOverReindexAndRefresh: q(osRx?.docsPerSecond, rx?.docsPerSecond),
    },
    peakRssMb: {
      goal: '<= 256',
      bestVariant: cut?.peakRssMb ?? null,
      defaultVariantMax: Math.max(
        0,
        ...[...(es.cutover ?? []), ...(osr.cutover ?? [])]
          .filter((r: Json) => r.variant === 'default')
          .map((r: Json) => r.peakRssMb ?? 0),
      ),
      maxOverAllCutoverRuns: Math.max(
        ...[...(es.cutover ?? []), ...(osr.cutover ?? [])].map((r: Json) => r.peakRssMb ?? 0),
      ),
      elasticdumpBest: ed?.peakRssMb ?? null,
    },
  };
  out.goalsMet = {
    cutoverOverRaw: out.cutoverOverRaw.endToEnd === null ? null : out.cutoverOverRaw.endToEnd >= 0.85,
    cutoverOverElasticdump:
      out.cutoverOverElasticdump.endToEnd === null ? null : out.cutoverOverElasticdump.endToEnd >= 10,
    cutoverOverReindex:
      out.cutoverOverReindex.endToEnd === null ? null : out.cutoverOverReindex.endToEnd >= 1,
    peakRssDefault: out.peakRssMb.defaultVariantMax ? out.peakRssMb.defaultVariantMax <= 256 : null,
    peakRssAllVariants: out.peakRssMb.maxOverAllCutoverRuns
      ? out.peakRssMb.maxOverAllCutoverRuns <= 256
      : null,
  };
  return out;
}

// ---- main ----------------------------------------------------------------------------------------------

async function onServer<T>(
  kind: ServerKind,
  heapMb: number,
  fn: (es: Cluster, server: LocalCluster) => Promise<T>,
): Promise<T> {
  const { server, es } = await startServer(kind, heapMb);
  try {
    return await fn(es, server);
  } finally {
    await es.close().catch(() => undefined);
    log(`stopping ${kind}...`);
    await server.stop();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  outFile = args.out;
  SHARDS = args.shards;
  quietWaitMaxSeconds = args.quietWait;
  const cutoverParts = ['cutover', 'os'].some((p) => args.parts.has(p));
  if (cutoverParts && !existsSync(args.cli))
    throw new Error(`${args.cli} is missing: build first (npx tsc -p .) or pass --cli`);
  results = {
    benchmark: 'copy',
    date: new Date().toISOString(),
    args: { ...args, parts: [...args.parts] },
    machine: machine(),
  };
  log(`generating ${args.docs} documents (or reusing them)...`);
  const t0 = Date.now();
  const set = await ensureDataSet(path.join(BENCH, '.data'), args.docs, CHUNK);
  results.data = {
    docs: set.docs,
    avgDocBytes: Math.round(set.sourceBytes / set.docs),
    sourceMb: round(set.sourceBytes / 2 ** 20, 1),
    ndjsonMb: round(set.ndjsonBytes / 2 ** 20, 1),
    files: set.files.length,
    docsPerFile: CHUNK,
    preparedSeconds: round((Date.now() - t0) / 1000, 1),
    sampleId: docId(0),
  };
  log(`data: ${JSON.stringify(results.data)}`);
  await save();

  const esParts = ['reads', 'cutover', 'raw', 'elasticdump'].filter((p) => args.parts.has(p));
  try {
    if (esParts.length) {
      await onServer(args.kind, args.heapMb, async (es, server) => {
        results.es = { kind: args.kind, version: server.version, heapMb: args.heapMb };
        results.es.source = await generateSource(es, server, set);
        await save();
        if (args.parts.has('reads')) {
          results.es.reads = await reads(es, server, set.docs, args.readRounds);
          await save();
        }
        if (args.parts.has('cutover')) {
          results.es.cutover = [];
          for (const v of args.variants) {
            results.es.cutover.push(await runCutover(es, server, set, args.cli, parseVariant(v), args.kind));
            await save();
          }
        }
        // The raw ceiling with the bulk size and concurrency of the fastest variant, then more rounds of both
        // alternately: other sessions share the 2 cores, so each figure is the best of `repeat` runs.
        if (args.parts.has('raw')) {
          const like = best(results.es.cutover ?? []) ?? {
            variant: 'default',
            ...effective(parseVariant('default')),
          };
          results.es.raw = [
            {
              matchedVariant: like.variant,
              ...(await rawCeiling(es, server, set, like, 1, args.rawConcurrency)),
            },
          ];
          await save();
          for (let rep = 2; rep <= args.repeat; rep++) {
            if (args.parts.has('cutover')) {
              const v = parseVariant(like.variant);
              results.es.cutover.push(await runCutover(es, server, set, args.cli, v, args.kind, rep));
            }
            results.es.raw.push({
              matchedVariant: like.variant,
              ...(await rawCeiling(es, server, set, like, rep, args.rawConcurrency)),
            });
            await save();
          }
        }
        if (args.parts.has('elasticdump')) {
          results.es.elasticdump = [];
          for (const v of args.edVariants) {
            results.es.elasticdump.push(await elasticdump(es, server, set, v));
            await save();
          }
        }
      });
    }
    if (args.parts.has('os')) {
      await onServer('os3', args.heapMb, async (es, server) => {
        results.os = { kind: 'os3', version: server.version, heapMb: args.heapMb };
        results.os.source = await generateSource(es, server, set);
        await save();
        results.os.reindex = [await reindex(es, server, set, false), await reindex(es, server, set, true)];
        await save();
        await save();
        // The ES winner and the default, on the same OpenSearch data.
        const esBest = best(results.es?.cutover ?? [])?.variant;
        // And the cluster's own reindex driven by cutover (copy.engine reindex), alone and with its proof.
        const names = [
          ...new Set([
            'default',
            ...(esBest ? [esBest] : args.variants.slice(1, 2)),
            'default+rx+noverify',
            'default+rx',
          ]),
        ];
        results.os.cutover = [];
        for (const v of names) {
          results.os.cutover.push(await runCutover(es, server, set, args.cli, parseVariant(v), 'os3'));
          await save();
        }
        const osBest = best(results.os.cutover)?.variant ?? 'default';
        for (let rep = 2; rep <= args.repeat; rep++) {
          results.os.reindex.push(await reindex(es, server, set, false, rep));
          results.os.cutover.push(
            await runCutover(es, server, set, args.cli, parseVariant(osBest), 'os3', rep),
          );
          await save();
        }
        if (args.parts.has('os-reads')) {
          results.os.reads = await reads(es, server, set.docs, 1);
          await save();
        }
      });
    }
    if (args.parts.has('es9')) {
      await onServer('es9', args.heapMb, async (es, server) => {
        results.es9 = { kind: 'es9', version: server.version, heapMb: args.heapMb };
        results.es9.source = await generateSource(es, server, set);
        results.es9.reads = await reads(es, server, set.docs, args.readRounds);
        await save();
      });
    }
  } finally {
    results.ratios = ratios();
    results.finished = new Date().toISOString();
    await save();
    await rm(path.join(BENCH, '.work'), { recursive: true, force: true });
    if (!args.keepData) await rm(set.dir, { recursive: true, force: true });
  }
  log(`ratios: ${JSON.stringify(results.ratios, null, 2)}`);
  log(`results in ${outFile}`);
}

main().catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
