/**
 * Write-proxy benchmark (never part of the test suite, never run in CI): what `cutover proxy` costs the application
 * and how the `capture.strategy: proxy` switch behaves, each figure beside its peer measured in the same run.
 *
 *   node --import tsx bench/proxy.ts                     sizes from the environment (below)
 *   BENCH_REPORT=bench/out/proxy.json node --import tsx bench/proxy.ts    markdown of an earlier results file
 *
 * One Elasticsearch server started here (startLocalCluster; stopped at the end), `cutover proxy` as its own
 * process (`node <cli> --json proxy spec.yaml`, measured through /proc), the load generator in this process:
 *
 *   latency  open-loop single-document index requests at each of BENCH_RATES writes/s through the write alias, the
 *            same writes/s as `_bulk` requests of BENCH_LATENCY_BULK documents, and
 *            GET by id / a small term search at BENCH_READ_RATES through the read alias; direct and through the
 *            proxy, BENCH_ROUNDS rounds alternating which goes first (after BENCH_WARMUP_SECONDS unrecorded on
 *            each); latency from the moment a request was due.
 *   clients  BENCH_CLIENTS keep-alive clients (one connection each), each in a loop for BENCH_CLIENT_SECONDS:
 *            index one document, GET one by id, alternately; through the proxy, then direct.
 *   bulk     `_bulk` of BENCH_BULK_DOCS ~1 KB documents, BENCH_BULK_STREAMS at a time, BENCH_BULK_TOTAL documents a
 *            run, direct and through the proxy, BENCH_ROUNDS rounds alternating.
 *   hold     BENCH_SWITCHES migrations in a row of BENCH_SWITCH_DOCS documents each with capture.strategy proxy,
 *            writers at BENCH_SWITCH_RATE writes/s through the proxy (index 50 / update 35 / delete 15, `_bulk` of
 *            BENCH_WRITER_BATCH ops; BENCH_WRITER_FILTER_PATH=1: their answers filtered as Logstash asks, so
 *            without `_seq_no`); the holds of journal-sync.json and the writes the application saw refused.
 *   lag      first the same writers straight at the server for 40 s, nothing else running (the ceiling: what the
 *            server alone makes of the rate); then one migration of BENCH_LAG_DOCS documents with writers at
 *            BENCH_LAG_RATE writes/s through the proxy: journal-sync.json `lags` (journaled → acknowledged by the
 *            target), during the copy and overall.
 *
 * Spec knobs of every migration: BENCH_MAX_LAG_SECONDS, BENCH_CAPTURE_INTERVAL_MS (capture.tailIntervalMs),
 * BENCH_COPY_CONCURRENCY (copy.concurrency); unset: the spec's defaults. CUTOVER_SERVERS_DIR=/dev/shm/... puts the
 * server's data on tmpfs (the proxy's journal and the runner's state stay on disk).
 *
 * Parts 1-3 share one proxy (one migration spec, the migrated index `bp-src`); every migration of 4-5 has its own.
 * Results: BENCH_OUT (JSON, rewritten after each part and migration) and BENCH_MD (the markdown, also on stdout).
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
import { AppWriters, type OpKind } from './app-writers.js';
import { LagCollector } from './lag-collector.js';
import {
  cpuSecondsOf,
  type DataSet,
  ensureDataSet,
  loadFiles,
  MAPPINGS,
  machineBusySeconds,
  markdownTable,
  measure,
  num,
  writeJson,
} from './lib.js';
import { bulkStreams, closedLoop, type Dist, dist, type OpenLoopResult, openLoop, type Req } from './load.js';
import { type ProxyChild, type ProxyUsage, startProxyProcess } from './proxy-process.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const DATA = path.join(BENCH, '.data');
const CHUNK = 500;

// biome-ignore lint/suspicious/noExplicitAny: a free-form results document, written as JSON
type Json = any;

// ---- configuration -------------------------------------------------------------------------------------

const PARTS = ['latency', 'clients', 'bulk', 'hold', 'lag'] as const;
type Part = (typeof PARTS)[number];

interface Config {
  parts: Part[];
  kind: ServerKind;
  heapMb: number;
  cli: string;
  rates: number[];
  readRates: number[];
  latencyBulk: number;
  latencySingle: boolean;
  latencySeconds: number;
  warmupSeconds: number;
  rounds: number;
  readDocs: number;
  clients: number;
  clientSeconds: number;
  bulkDocs: number;
  bulkStreams: number;
  bulkTotal: number;
  bulkWarmupRounds: number;
  pin: boolean;
  switches: number;
  holdWarmup: number;
  switchDocs: number;
  switchRate: number;
  lagDocs: number;
  lagRate: number;
  writerBatch: number;
  writerFilterPath: boolean;
  mix: Record<OpKind, number>;
  holdBudgetMs: number;
  maxLagSeconds: number;
  runTimeoutMinutes: number;
  keepData: boolean;
  out: string;
  md: string;
}

/** Every BENCH_* variable with its default: the sizes of a full run. */
const DEFAULTS: Record<string, string> = {
  BENCH_PARTS: PARTS.join(','),
  BENCH_KIND: 'es8',
  BENCH_HEAP_MB: '1024',
  BENCH_CLI: 'dist/src/cli/main.js',
  BENCH_RATES: '200,1000,5000',
  BENCH_READ_RATES: '200,1000',
  // Documents per `_bulk` in the second set of write rows: BENCH_RATES writes/s as bulks of this many (0: none).
  // Single-document requests saturate a 2-core server near 1,080/s; as bulks the same writes/s leave it headroom.
  BENCH_LATENCY_BULK: '10',
  // 0: no single-document write rows (only the bulk rows: a profile of the proxy's per-request work).
  BENCH_LATENCY_SINGLE: '1',
  BENCH_LATENCY_SECONDS: '10',
  BENCH_WARMUP_SECONDS: '3',
  BENCH_ROUNDS: '2',
  BENCH_READ_DOCS: '10000',
  BENCH_CLIENTS: '1000',
  BENCH_CLIENT_SECONDS: '20',
  BENCH_BULK_DOCS: '500',
  BENCH_BULK_STREAMS: '4',
  BENCH_BULK_TOTAL: '100000',
  // Unrecorded bulk runs (each route) before the recorded rounds: a fresh server speeds up 2x over its first runs.
  BENCH_BULK_WARMUP_ROUNDS: '1',
  // 1: the server on CPU 0, the proxy and this process on CPU 1 (taskset), as a proxy beside the application
  // would run: it then costs the server latency, not cores. 0: all share both cores.
  BENCH_PIN: '0',
  // 20 is the issue's count; one migration takes 30 s to 3 min on the shared 2-core machine, so 10 by default.
  BENCH_SWITCHES: '10',
  // Migrations before the recorded ones, on the same server, reported apart: a fresh server's first migration
  // and the two after it hold 1.5-2.5x longer than the rest (JIT; 2026-12-02: 224-479 ms against 76-214), which
  // a long-running production cluster does not show.
  BENCH_HOLD_WARMUP: '3',
  BENCH_SWITCH_DOCS: '10000',
  BENCH_SWITCH_RATE: '1000',
  BENCH_LAG_DOCS: '100000',
  BENCH_LAG_RATE: '2000',
  BENCH_WRITER_BATCH: '10',
  // 1: the writers' bulks ask for filter_path=items.*.status,... (as Logstash does): no _seq_no in the answers.
  BENCH_WRITER_FILTER_PATH: '0',
  BENCH_MIX: 'index:50,update:35,delete:15',
  BENCH_HOLD_BUDGET_MS: '1000',
  // capture.maxLagSeconds of every migration (0: the spec's default, 2). The backfill gives way while the journal
  // sync is more than half of it behind, so it sets the lag the copy allows.
  BENCH_MAX_LAG_SECONDS: '0',
  // A migration that has not cut over by then is stopped (SIGTERM) and counted as not switched.
  BENCH_RUN_TIMEOUT_MINUTES: '10',
  BENCH_KEEP_DATA: '0',
  BENCH_OUT: 'bench/out/proxy.json',
  BENCH_MD: 'bench/out/proxy.md',
};

function config(): Config {
  const v = (k: string) => process.env[k] ?? DEFAULTS[k]!;
  const n = (k: string) => {
    const x = Number(v(k));
    if (!Number.isFinite(x) || x < 0) throw new Error(`${k}=${v(k)}: a non-negative number is needed`);
    return x;
  };
  const parts = v('BENCH_PARTS')
    .split(',')
    .filter(Boolean)
    .map((p) => {
      if (!(PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_PARTS: unknown part ${p}`);
      return p as Part;
    });
  const mix: Record<OpKind, number> = { index: 0, update: 0, delete: 0 };
  for (const part of v('BENCH_MIX').split(',')) {
    const [k, w] = part.split(':');
    if (k !== 'index' && k !== 'update' && k !== 'delete') throw new Error(`BENCH_MIX: ${part}`);
    mix[k] = Number(w);
  }
  const c: Config = {
    parts,
    kind: v('BENCH_KIND') as ServerKind,
    heapMb: n('BENCH_HEAP_MB'),
    cli: path.resolve(ROOT, v('BENCH_CLI')),
    rates: v('BENCH_RATES').split(',').filter(Boolean).map(Number),
    readRates: v('BENCH_READ_RATES').split(',').filter(Boolean).map(Number),
    latencyBulk: Math.floor(n('BENCH_LATENCY_BULK')),
    latencySingle: v('BENCH_LATENCY_SINGLE') !== '0',
    latencySeconds: n('BENCH_LATENCY_SECONDS'),
    warmupSeconds: n('BENCH_WARMUP_SECONDS'),
    rounds: Math.max(1, n('BENCH_ROUNDS')),
    readDocs: n('BENCH_READ_DOCS'),
    clients: n('BENCH_CLIENTS'),
    clientSeconds: n('BENCH_CLIENT_SECONDS'),
    bulkDocs: n('BENCH_BULK_DOCS'),
    bulkStreams: n('BENCH_BULK_STREAMS'),
    bulkTotal: n('BENCH_BULK_TOTAL'),
    bulkWarmupRounds: n('BENCH_BULK_WARMUP_ROUNDS'),
    pin: v('BENCH_PIN') === '1',
    switches: n('BENCH_SWITCHES'),
    holdWarmup: Math.floor(n('BENCH_HOLD_WARMUP')),
    switchDocs: n('BENCH_SWITCH_DOCS'),
    switchRate: n('BENCH_SWITCH_RATE'),
    lagDocs: n('BENCH_LAG_DOCS'),
    lagRate: n('BENCH_LAG_RATE'),
    writerBatch: n('BENCH_WRITER_BATCH'),
    writerFilterPath: v('BENCH_WRITER_FILTER_PATH') === '1',
    mix,
    holdBudgetMs: n('BENCH_HOLD_BUDGET_MS'),
    maxLagSeconds: n('BENCH_MAX_LAG_SECONDS'),
    runTimeoutMinutes: n('BENCH_RUN_TIMEOUT_MINUTES'),
    keepData: v('BENCH_KEEP_DATA') === '1',
    out: path.resolve(ROOT, v('BENCH_OUT')),
    md: path.resolve(ROOT, v('BENCH_MD')),
  };
  if (c.readDocs < CHUNK || c.switchDocs < CHUNK || c.lagDocs < CHUNK)
    throw new Error(`BENCH_READ_DOCS, BENCH_SWITCH_DOCS and BENCH_LAG_DOCS must be >= ${CHUNK}`);
  if ([...c.rates, ...c.readRates].some((r) => !(r > 0)))
    throw new Error('BENCH_RATES and BENCH_READ_RATES: positive numbers, comma-separated');
  return c;
}

/** The command that reproduces this run: the BENCH_* variables that were set. */
function command(): string {
  const set = Object.keys(DEFAULTS)
    .filter((k) => process.env[k] !== undefined && k !== 'BENCH_REPORT')
    .map((k) => `${k}=${process.env[k]}`);
  return [...set, 'node --import tsx bench/proxy.ts'].join(' ');
}

// ---- small helpers -------------------------------------------------------------------------------------

/** Every thread of a process (threads made later inherit it) on one CPU. */
function pin(pid: number, cpu: number, what: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  log(`${what} (pid ${pid}) pinned to CPU ${cpu}`);
}

const log = (s: string) => process.stderr.write(`[proxy ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // The CLI is the built one: this process's tsx loader stays out of the children.
  delete env.NODE_OPTIONS;
  return env;
}

function mappingsWithW(): Json {
  return { ...MAPPINGS, properties: { ...MAPPINGS.properties, w: { type: 'long' } } };
}

async function templatesOf(set: DataSet): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(set.files[0]!, 'utf8');
  return text
    .split('\n')
    .filter((l, i) => l && i % 2 === 1)
    .map((l) => JSON.parse(l));
}

/** A source index of `set` behind a read alias and a write alias, refreshed, as an application's would be. */
async function sourceIndex(
  es: Cluster,
  index: string,
  aliases: { read: string; write: string },
  set: DataSet,
): Promise<void> {
  if (await es.indexExists(index)) await es.deleteIndex(index);
  await es.createIndex(index, {
    settings: { index: { number_of_shards: 3, number_of_replicas: 0, refresh_interval: '-1' } },
    mappings: mappingsWithW(),
    aliases: { [aliases.read]: {}, [aliases.write]: { is_write_index: true } },
  });
  await loadFiles(es, index, set, { concurrency: 4, filesPerRequest: 1 });
  await es.putSettings(index, { 'index.refresh_interval': null });
  await es.refresh(index);
  await es.request({ method: 'POST', path: `/${index}/_flush`, idempotent: true });
}

/** CPU of the server, the proxy and this process, and what everything else used, over one measurement. */
interface Usage {
  wallSeconds: number;
  serverCpuSeconds: number | null;
  proxyCpuSeconds: number | null;
  loadgenCpuSeconds: number;
  /** average cores used by other processes (other sessions on this shared machine); >= 0.3 disturbs */
  otherCores: number | null;
  loadAverage: number[];
}

function usageMeter(serverPid: number, proxy?: ProxyChild): () => Usage {
  const t0 = performance.now();
  const s0 = cpuSecondsOf(serverPid);
  const p0 = proxy?.usage().cpuSeconds ?? null;
  const self0 = process.cpuUsage();
  const m0 = machineBusySeconds();
  return () => {
    const wallSeconds = (performance.now() - t0) / 1000;
    const s1 = cpuSecondsOf(serverPid);
    const p1 = proxy?.usage().cpuSeconds ?? null;
    const self = process.cpuUsage(self0);
    const loadgen = (self.user + self.system) / 1e6;
    const server = s0 === null || s1 === null ? null : s1 - s0;
    const prox = p0 === null || p1 === null ? null : p1 - p0;
    const busy = machineBusySeconds() - m0;
    return {
      wallSeconds: round(wallSeconds, 2),
      serverCpuSeconds: server === null ? null : round(server, 2),
      proxyCpuSeconds: prox === null ? null : round(prox, 2),
      loadgenCpuSeconds: round(loadgen, 2),
      otherCores:
        server === null ? null : round(Math.max(0, busy - server - (prox ?? 0) - loadgen) / wallSeconds, 2),
      loadAverage: os.loadavg().map((x) => round(x, 2)),
    };
  };
}

// ---- parts 1-3: one proxy, direct against proxied ----------------------------------------------------

type Route = 'direct' | 'proxy';

interface Steady {
  es: Cluster;
  server: LocalCluster;
  proxy: ProxyChild;
  origin: Record<Route, string>;
  templates: Buffer[];
}

/** Rounds of `run` on both routes, alternating which goes first; per route the rounds' samples together. */
async function sideBySide<T>(
  rounds: number,
  label: string,
  s: Steady,
  run: (route: Route, round: number) => Promise<T>,
): Promise<Record<Route, Array<T & { usage: Usage }>>> {
  const out: Record<Route, Array<T & { usage: Usage }>> = { direct: [], proxy: [] };
  for (let r = 0; r < rounds; r++) {
    const order: Route[] = r % 2 === 0 ? ['direct', 'proxy'] : ['proxy', 'direct'];
    for (const route of order) {
      const meter = usageMeter(s.server.pid, s.proxy);
      const res = await run(route, r);
      const usage = meter();
      out[route].push({ ...res, usage });
      log(
        `${label} ${route} round ${r + 1}: ${JSON.stringify(summaryOf(res))} other cores ${usage.otherCores}`,
      );
      await sleep(1000);
    }
  }
  return out;
}

function summaryOf(x: unknown): unknown {
  const r = x as Partial<OpenLoopResult> & { docsPerSecond?: number; okPerSecond?: number };
  if (r.latencyMs) return { p50: r.latencyMs.p50, p99: r.latencyMs.p99, errors: r.errors };
  return r;
}

/** The open-loop runs of one request kind, with the samples of every round in one distribution per route. */
async function latencyRow(
  s: Steady,
  c: Config,
  what: string,
  rate: number,
  make: (route: Route, round: number) => (i: number) => Req,
  docsPerRequest = 1,
): Promise<Json> {
  const samples: Record<Route, { latency: number[]; service: number[] }> = {
    direct: { latency: [], service: [] },
    proxy: { latency: [], service: [] },
  };
  // Warm up both routes at the rate (JIT, connections, caches); not recorded.
  for (const route of ['direct', 'proxy'] as Route[])
    if (c.warmupSeconds > 0)
      await openLoop({ origin: s.origin[route], rate, seconds: c.warmupSeconds, make: make(route, -1) });
  const runs = await sideBySide(c.rounds, `${what} @${rate}/s`, s, async (route, r) => {
    const res = await openLoop({
      origin: s.origin[route],
      rate,
      seconds: c.latencySeconds,
      make: make(route, r),
      keepSamples: true,
    });
    for (const x of res.samples!.latency) samples[route].latency.push(x);
    for (const x of res.samples!.service) samples[route].service.push(x);
    delete res.samples;
    return res;
  });
  const side = (route: Route) => {
    const rs = runs[route];
    return {
      latencyMs: dist(samples[route].latency),
      serviceMs: dist(samples[route].service),
      scheduled: rs.reduce((a, x) => a + x.scheduled, 0),
      sent: rs.reduce((a, x) => a + x.scheduled - x.dropped, 0),
      ok: rs.reduce((a, x) => a + x.ok, 0),
      errors: rs.reduce((a, x) => a + x.errors, 0),
      errorsByType: Object.assign({}, ...rs.map((x) => x.errorsByType)),
      /** answers per second achieved, mean over the rounds */
      okPerSecond: Math.round(rs.reduce((a, x) => a + x.okPerSecond, 0) / rs.length),
      sendDelayP99Ms: Math.max(...rs.map((x) => x.sendDelayMs.p99 ?? 0)),
      proxyCpuSeconds: rs.reduce((a, x) => a + (x.usage.proxyCpuSeconds ?? 0), 0),
      serverCpuSeconds: rs.reduce((a, x) => a + (x.usage.serverCpuSeconds ?? 0), 0),
      otherCoresMax: Math.max(...rs.map((x) => x.usage.otherCores ?? 0)),
      runs: rs,
    };
  };
  const direct = side('direct');
  const proxy = side('proxy');
  const diff = (k: 'p50' | 'p99') =>
    direct.latencyMs[k] === null || proxy.latencyMs[k] === null
      ? null
      : round(proxy.latencyMs[k]! - direct.latencyMs[k]!, 3);
  return {
    what,
    rate,
    docsPerRequest,
    writesPerSecond: rate * docsPerRequest,
    seconds: c.latencySeconds,
    rounds: c.rounds,
    direct,
    proxy,
    addedP50Ms: diff('p50'),
    addedP99Ms: diff('p99'),
    /** proxy CPU per request through it, ms */
    proxyCpuMsPerRequest: proxy.sent ? round((proxy.proxyCpuSeconds * 1000) / proxy.sent, 3) : null,
  };
}

async function latencyPart(s: Steady, c: Config): Promise<Json> {
  const rows: Json[] = [];
  const doc = (i: number) => s.templates[i % s.templates.length]!;
  for (const rate of c.latencySingle ? c.rates : [])
    rows.push(
      await latencyRow(s, c, 'index one document (PUT _doc, write alias)', rate, (route, r) => (i) => ({
        method: 'PUT',
        path: `/bp-write/_doc/${route[0]}${rate}r${r < 0 ? 'w' : r}-${i}`,
        body: doc(i),
      })),
    );
  const per = c.latencyBulk;
  if (per > 0)
    for (const writes of c.rates)
      rows.push(
        await latencyRow(
          s,
          c,
          `\`_bulk\` of ${per} documents (write alias)`,
          writes / per,
          (route, r) => (i) => {
            const lines: string[] = [];
            for (let k = 0; k < per; k++) {
              const id = `${route[0]}b${writes}r${r < 0 ? 'w' : r}-${i}-${k}`;
              lines.push(JSON.stringify({ index: { _id: id } }), doc(i * per + k).toString('utf8'));
            }
            return {
              method: 'POST',
              path: '/bp-write/_bulk',
              body: `${lines.join('\n')}\n`,
              contentType: 'application/x-ndjson',
            };
          },
          per,
        ),
      );
  let seed = 1;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const id = () => `d${String(Math.floor(rand() * c.readDocs)).padStart(8, '0')}`;
  for (const rate of c.readRates)
    rows.push(
      await latencyRow(s, c, 'GET one document by id (read alias)', rate, () => () => ({
        method: 'GET',
        path: `/bp-read/_doc/${id()}`,
      })),
    );
  for (const rate of c.readRates)
    rows.push(
      await latencyRow(s, c, 'small search: term on a keyword, size 5 (read alias)', rate, () => (i) => ({
        method: 'POST',
        path: '/bp-read/_search',
        body: JSON.stringify({ size: 5, query: { term: { category: `cat-${i % 50}` } } }),
      })),
    );
  return { rows };
}

async function clientsPart(s: Steady, c: Config): Promise<Json> {
  const out: Json = {};
  // Proxy first: the question is the proxy; direct is its peer, same load right after.
  for (const route of ['proxy', 'direct'] as Route[]) {
    let fds: number | null = null;
    const meter = usageMeter(s.server.pid, s.proxy);
    const res = await closedLoop({
      origin: s.origin[route],
      clients: c.clients,
      seconds: c.clientSeconds,
      rampMs: 1000,
      make: (client, k) =>
        k % 2 === 0
          ? {
              method: 'PUT',
              path: `/bp-write/_doc/c${route[0]}${client}-${k}`,
              body: s.templates[(client + k) % s.templates.length]!,
            }
          : {
              method: 'GET',
              path: `/bp-read/_doc/d${String((client * 7 + k) % c.readDocs).padStart(8, '0')}`,
            },
      during: () => {
        if (route === 'proxy') fds = Math.max(fds ?? 0, s.proxy.fds() ?? 0);
      },
    });
    const usage = meter();
    out[route] = { ...res, proxyOpenFds: fds, usage };
    log(
      `clients ${route}: ${res.ok} ok, ${res.errors} errors ${JSON.stringify(res.errorsByType)}, ${res.okPerSecond}/s, p50 ${res.latencyMs.p50} p99 ${res.latencyMs.p99} ms, proxy fds ${fds}; other cores ${usage.otherCores}`,
    );
    await sleep(2000);
  }
  out.throughputRatio = out.direct.okPerSecond
    ? round(out.proxy.okPerSecond / out.direct.okPerSecond, 3)
    : null;
  return out;
}

async function bulkPart(s: Steady, c: Config): Promise<Json> {
  const bodiesFor = (prefix: string): Buffer[] => {
    const bodies: Buffer[] = [];
    for (let start = 0; start < c.bulkTotal; start += c.bulkDocs) {
      const parts: Buffer[] = [];
      for (let i = start; i < Math.min(c.bulkTotal, start + c.bulkDocs); i++)
        parts.push(
          Buffer.from(`{"index":{"_id":"${prefix}-${i}"}}\n`),
          s.templates[i % s.templates.length]!,
          NL,
        );
      bodies.push(Buffer.concat(parts));
    }
    return bodies;
  };
  // Every run writes into an empty index of its own behind the write alias (the proxy journals by name, so it
  // sees the same migrated alias): a run into an index the earlier runs filled would pay for their merges.
  let n = 0;
  const bulkRun = async (route: Route, r: number | string) => {
    const bodies = bodiesFor(`b${route[0]}${r}`);
    const fresh = `bp-bulk-${n++}`;
    await s.es.createIndex(fresh, {
      settings: { index: { number_of_shards: 3, number_of_replicas: 0 } },
      mappings: mappingsWithW(),
    });
    await s.es.updateAliases([
      { add: { index: fresh, alias: 'bp-write', is_write_index: true } },
      { remove: { index: 'bp-src', alias: 'bp-write' } },
    ]);
    try {
      return await bulkStreams({
        origin: s.origin[route],
        path: '/bp-write/_bulk',
        bodies,
        docsPerBody: c.bulkDocs,
        streams: c.bulkStreams,
      });
    } finally {
      await s.es.updateAliases([
        { add: { index: 'bp-src', alias: 'bp-write', is_write_index: true } },
        { remove: { index: fresh, alias: 'bp-write' } },
      ]);
      await s.es.deleteIndex(fresh);
    }
  };
  for (let r = 0; r < c.bulkWarmupRounds; r++)
    for (const route of ['direct', 'proxy'] as const) {
      const w = await bulkRun(route, `w${r}`);
      log(`bulk ${route} warm-up ${r + 1} (not recorded): ${JSON.stringify(summaryOf(w))}`);
    }
  const runs = await sideBySide(c.rounds, 'bulk', s, bulkRun);
  const total = (route: Route) => {
    const rs = runs[route];
    const docs = rs.reduce((a, x) => a + x.docs, 0);
    const seconds = rs.reduce((a, x) => a + x.seconds, 0);
    return {
      docs,
      seconds: round(seconds, 2),
      docsPerSecond: Math.round(docs / seconds),
      errors: rs.reduce((a, x) => a + x.errors, 0),
      proxyCpuSeconds: round(
        rs.reduce((a, x) => a + (x.usage.proxyCpuSeconds ?? 0), 0),
        2,
      ),
      serverCpuSeconds: round(
        rs.reduce((a, x) => a + (x.usage.serverCpuSeconds ?? 0), 0),
        2,
      ),
      otherCoresMax: Math.max(...rs.map((x) => x.usage.otherCores ?? 0)),
      runs: rs,
    };
  };
  const direct = total('direct');
  const proxy = total('proxy');
  return {
    bulkDocs: c.bulkDocs,
    streams: c.bulkStreams,
    warmupRounds: c.bulkWarmupRounds,
    pinned: c.pin,
    docsPerRun: c.bulkTotal,
    avgDocBytes: Math.round(s.templates.reduce((a, t) => a + t.length, 0) / s.templates.length),
    direct,
    proxy,
    ratio: round(proxy.docsPerSecond / direct.docsPerSecond, 3),
    // Each round's proxy run against its direct run (run one after the other): the spread of the ratio.
    roundRatios: proxy.runs.map((p, i) => round(p.docsPerSecond / direct.runs[i]!.docsPerSecond, 3)),
  };
}

const NL = Buffer.from('\n');

async function steadyParts(
  es: Cluster,
  server: LocalCluster,
  c: Config,
  res: Json,
  save: () => Promise<void>,
) {
  const set = await ensureDataSet(DATA, c.readDocs, CHUNK);
  await sourceIndex(es, 'bp-src', { read: 'bp-read', write: 'bp-write' }, set);
  const templates = (await templatesOf(set)).map((t) => Buffer.from(JSON.stringify(t)));
  const work = path.join(DATA, 'proxy-work', 'bp');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const specFile = path.join(work, 'spec.yaml');
  await writeFile(
    specFile,
    stringify({
      name: 'bp',
      source: { cluster: { url: server.url }, index: 'bp-read' },
      target: { index: 'bp-dst' },
      aliases: { read: ['bp-read'], write: 'bp-write' },
      capture: { strategy: 'proxy' },
      stateDir: './state',
    }),
  );
  const proxy = await startProxyProcess({ cli: c.cli, specFile, cwd: work, env: childEnv() });
  log(`cutover proxy pid ${proxy.pid} at ${proxy.url} (at rest: ${JSON.stringify(proxy.usage())})`);
  if (c.pin) pin(proxy.pid, 1, 'the proxy');
  const s: Steady = { es, server, proxy, origin: { direct: server.url, proxy: proxy.url }, templates };
  res.steady = { proxyAtStart: proxy.usage(), usageAfter: {} };
  try {
    for (const part of ['latency', 'clients', 'bulk'] as const) {
      if (!c.parts.includes(part)) continue;
      log(`part ${part} (load average ${os.loadavg().map((x) => round(x, 2))})...`);
      const meter = usageMeter(server.pid, proxy);
      const fn = part === 'latency' ? latencyPart : part === 'clients' ? clientsPart : bulkPart;
      res[part] = await fn(s, c);
      res[part].usage = meter();
      // VmHWM is cumulative: the peak of the proxy up to the end of this part.
      res.steady.usageAfter[part] = proxy.usage();
      await save();
    }
  } finally {
    const stopped = await proxy.stop();
    res.steady.proxyAtEnd = stopped.usage;
    res.steady.proxyExit = stopped.code;
    await es.deleteIndex('bp-src').catch(() => undefined);
    if (!c.keepData) await rm(work, { recursive: true, force: true });
  }
}

// ---- parts 4-5: migrations with capture.strategy proxy ---------------------------------------------------

/** CLI log lines (`event: step`, ISO `time`) -> step start times, ms since epoch */
async function stepMarks(stderrFile: string): Promise<Array<{ step: string; at: number }>> {
  const marks: Array<{ step: string; at: number }> = [];
  for (const line of (await readFile(stderrFile, 'utf8').catch(() => '')).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { event?: string; step?: string; time?: string };
      const at = j.time ? Date.parse(j.time) : Number.NaN;
      if (j.event === 'step' && j.step && !Number.isNaN(at)) marks.push({ step: j.step, at });
    } catch {
      // not a log line
    }
  }
  return marks;
}

function readJsonFile(file: string): Json {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * The lag part's writers straight at the server for `seconds`, nothing else running: what the server alone makes
 * of the rate (acknowledged writes, their latency, its write queue) is the floor under any catch-up lag.
 */
async function directWrites(
  es: Cluster,
  server: LocalCluster,
  c: Config,
  set: DataSet,
  rate: number,
  seconds = 40,
): Promise<Json> {
  const index = 'bp-direct-src';
  await sourceIndex(es, index, { read: 'bp-direct-read', write: 'bp-direct-write' }, set);
  const writers = new AppWriters({
    origin: server.url,
    alias: 'bp-direct-write',
    rate,
    batch: c.writerBatch,
    docs: set.docs,
    templates: await templatesOf(set),
    mix: c.mix,
    seed: 98,
    filterPath: c.writerFilterPath,
  });
  const meter = usageMeter(server.pid);
  let queueMax = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const st = await es.request<{ nodes: Record<string, { thread_pool: { write: { queue: number } } }> }>(
          {
            method: 'GET',
            path: '/_nodes/stats/thread_pool',
          },
        );
        for (const n of Object.values(st.body.nodes))
          queueMax = Math.max(queueMax, n.thread_pool.write.queue);
      } catch {
        // a sample missed under load is not a figure
      }
      await sleep(1000);
    }
  })();
  writers.start();
  await sleep(seconds * 1000);
  const w = await writers.stop();
  sampling = false;
  await sampler;
  const usage = meter();
  await es.deleteIndex(index);
  log(
    `direct writers at ${rate}/s: ${w.achievedAckedPerSecond}/s acked (not sent ${w.notSent}), requests p50 ${w.requestMs.p50} p99 ${w.requestMs.p99} ms, server write queue max ${queueMax}, server ${usage.serverCpuSeconds} CPU s in ${usage.wallSeconds} s`,
  );
  return { writers: w, queueMax, usage };
}

async function migration(
  es: Cluster,
  server: LocalCluster,
  c: Config,
  o: { label: string; set: DataSet; rate: number; seed: number; watchLags: boolean },
): Promise<Json> {
  const source = `${o.label}-src`;
  const target = `${o.label}-dst`;
  const readAlias = `${o.label}-read`;
  const writeAlias = `${o.label}-write`;
  if (await es.indexExists(target)) await es.deleteIndex(target);
  const tl = Date.now();
  await sourceIndex(es, source, { read: readAlias, write: writeAlias }, o.set);
  log(`${o.label}: ${o.set.docs} documents in ${source} (${round((Date.now() - tl) / 1000)} s)`);
  const work = path.join(DATA, 'proxy-work', o.label);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const spec = {
    name: o.label,
    source: { cluster: { url: server.url }, index: readAlias },
    target: { index: target },
    aliases: { read: [readAlias], write: writeAlias },
    copy: {
      sampleSize: 20,
      ...(process.env.BENCH_COPY_CONCURRENCY
        ? { concurrency: Number(process.env.BENCH_COPY_CONCURRENCY) }
        : {}),
    },
    capture: {
      strategy: 'proxy',
      ...(c.maxLagSeconds ? { maxLagSeconds: c.maxLagSeconds } : {}),
      ...(process.env.BENCH_CAPTURE_INTERVAL_MS
        ? { tailIntervalMs: Number(process.env.BENCH_CAPTURE_INTERVAL_MS) }
        : {}),
    },
    cutover: { holdBudgetMs: c.holdBudgetMs },
    verify: { mode: 'off' },
    stateDir: './state',
  };
  const specFile = path.join(work, 'spec.yaml');
  await writeFile(specFile, stringify(spec));
  const stateDir = path.join(work, 'state', o.label);
  const proxy = await startProxyProcess({ cli: c.cli, specFile, cwd: work, env: childEnv() });
  const writers = new AppWriters({
    origin: proxy.url,
    alias: writeAlias,
    rate: o.rate,
    batch: c.writerBatch,
    docs: o.set.docs,
    templates: await templatesOf(o.set),
    mix: c.mix,
    seed: o.seed,
    filterPath: c.writerFilterPath,
  });
  writers.start();
  await sleep(2000);
  // The journal sync's lags as they come, to keep them all and tell the ones of the copy from the later ones.
  const collector = new LagCollector();
  const syncFile = path.join(stateDir, 'journal-sync.json');
  let watching = o.watchLags;
  const watcher = (async () => {
    while (watching) {
      const j = readJsonFile(syncFile);
      if (Array.isArray(j?.lags)) collector.feed(j.lags, Date.now());
      await sleep(250);
    }
  })();
  // The server's own write queue: at a rate near its ceiling the runner's bulks wait behind the writers' queue,
  // and that, not cutover, is what the figures then measure.
  const queue = { max: 0, samples: 0, rejected0: -1, rejected: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const st = await es.request<{
          nodes: Record<string, { thread_pool: { write: { queue: number; rejected: number } } }>;
        }>({
          method: 'GET',
          path: '/_nodes/stats/thread_pool',
        });
        for (const n of Object.values(st.body.nodes)) {
          const wq = n.thread_pool.write;
          queue.max = Math.max(queue.max, wq.queue);
          if (queue.rejected0 < 0) queue.rejected0 = wq.rejected;
          queue.rejected = wq.rejected - queue.rejected0;
        }
        queue.samples++;
      } catch {
        // a sample missed under load is not a figure
      }
      await sleep(1000);
    }
  })();
  const meter = usageMeter(server.pid, proxy);
  const stderrFile = path.join(work, 'stderr.log');
  log(`${o.label}: cutover run (writers at ${o.rate}/s through the proxy)...`);
  const m = await measure(process.execPath, [c.cli, '--json', 'run', specFile], {
    cwd: work,
    env: childEnv(),
    stderrFile,
    timeoutMs: c.runTimeoutMinutes * 60_000,
  });
  const usage = meter();
  const cliEnd = Date.now();
  // A moment of writes through the moved aliases, then stop.
  await sleep(1000);
  const w = await writers.stop();
  watching = false;
  sampling = false;
  await Promise.all([watcher, sampler]);
  const stopped = await proxy.stop();
  await writeFile(path.join(work, 'proxy.log'), proxy.output());
  const sync: Json = readJsonFile(path.join(stateDir, 'journal-sync.json'));
  const capture: Json = readJsonFile(path.join(stateDir, 'capture.json'));
  const marks = await stepMarks(stderrFile);
  const ok = m.code === 0;
  if (o.watchLags && Array.isArray(sync?.lags)) collector.feed(sync.lags, Date.now());
  // journal-sync.json keeps the last 2000; the collector every one it saw (when watched).
  const lags: number[] = o.watchLags ? collector.all.map((x) => x.ms) : (sync?.lags ?? []);
  const copyMark = marks.findIndex((k) => k.step === 'copy');
  const copyStart = copyMark >= 0 ? marks[copyMark]!.at : undefined;
  const copyEnd = copyMark >= 0 ? marks[copyMark + 1]?.at : undefined;
  const copyLags =
    o.watchLags && copyStart !== undefined && copyEnd !== undefined
      ? collector.all.filter((x) => x.at > copyStart && x.at <= copyEnd).map((x) => x.ms)
      : null;
  const holds: Json[] = sync?.holds ?? [];
  // Switches that put their hold off while the journal's reads were still large (hold-switch.ts).
  const deferredHolds = (await readFile(path.join(stateDir, 'audit.jsonl'), 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l.includes('"event":"hold-deferred"')).length;
  const r: Json = {
    label: o.label,
    deferredHolds,
    ok,
    exitCode: m.code,
    timedOut: m.wallSeconds >= c.runTimeoutMinutes * 60,
    wallSeconds: round(m.wallSeconds, 1),
    steps: Object.fromEntries(
      marks.map((k, i) => [k.step, round(((marks[i + 1]?.at ?? cliEnd) - k.at) / 1000, 1)]),
    ),
    runner: { peakRssMb: m.peakRssMb === null ? null : round(m.peakRssMb), cpuSeconds: cpuOf(m) },
    proxy: stopped.usage,
    proxyExit: stopped.code,
    serverWriteQueue: { max: queue.max, rejected: queue.rejected, samples: queue.samples },
    usage,
    writers: w,
    holds: holds.map((h) => ({
      attempt: h.attempt,
      durationMs: h.durationMs,
      switched: h.switched,
      reason: h.reason,
      heldRequests: h.heldRequests,
      longestWaitMs: h.longestWaitMs,
      releasedBy: h.releasedBy,
      syncedInHold: h.syncedInHold,
      fence: h.fence,
      accounted: h.accounted,
      targetCount: h.targetCount,
      sourceCount: h.sourceCount,
      sourceCountFromJournal: h.sourceCountFromJournal,
      gaps: h.gaps,
      firstGap: h.firstGap,
      phases: h.phases,
      grantWaitMs: h.grantWaitMs,
    })),
    // The proxy's own account of each hold (its log): it knows what it held even when it released by deadline.
    proxyHolds: proxyHolds(proxy.output()),
    journal: sync
      ? {
          entries: sync.entries,
          copied: sync.copied,
          deleted: sync.deleted,
          bypass: sync.bypass,
          demands: sync.demands?.length ?? 0,
          lagsMs: dist(lags),
          /** all lags seen (the collector) or the file's last 2000 */
          lagsComplete: o.watchLags,
          copyLagsMs: copyLags ? dist(copyLags) : null,
          /** the first batches: [ms after the copy step began (read every 250 ms), lag ms] */
          firstLags:
            o.watchLags && copyStart !== undefined
              ? collector.all.slice(0, 20).map((x) => [x.at - copyStart, x.ms])
              : null,
          lags,
        }
      : null,
    // The safety-net _seq_no rounds: their lag gates the switch.
    capture: capture
      ? {
          rounds: capture.rounds,
          /** changes the rounds found already applied by the journal sync (listed, or passed over unread) */
          coveredByJournal: capture.coveredByJournal ?? 0,
          /** rounds that neither refreshed nor read the source: the journal accounted for every change */
          roundsUnread: capture.roundsUnread ?? 0,
          reconciles: capture.reconciles,
          freezes: capture.freezes?.length,
          roundLagsMs: dist(capture.lags ?? []),
          lastRoundLagsMs: (capture.lags ?? []).slice(-5),
        }
      : null,
    stderrTail: ok ? undefined : m.stderrTail,
  };
  const sw = r.holds.find((h: Json) => h.switched);
  log(
    `${o.label}: ${ok ? 'cut over' : `FAILED (exit ${m.code})`} in ${r.wallSeconds} s; holds ${JSON.stringify(r.holds.map((h: Json) => [h.durationMs, h.switched, h.heldRequests]))}; writers ${w.achievedAckedPerSecond}/s acked, refused ${w.refused}, other failures ${w.otherFailures}; journal lag p50 ${r.journal?.lagsMs.p50} p99 ${r.journal?.lagsMs.p99} ms; server write queue max ${queue.max} (rejected ${queue.rejected}); proxy RSS ${stopped.usage.peakRssMb} MB; other cores ${usage.otherCores}${sw ? '' : ' (no switched hold)'}`,
  );
  if (!ok) log(`${o.label}: stderr tail:\n${m.stderrTail}`);
  for (const ix of [source, target]) if (await es.indexExists(ix)) await es.deleteIndex(ix);
  if (!c.keepData) await rm(work, { recursive: true, force: true });
  return r;
}

/** `hold ended` lines of the proxy's JSON log: how each hold ended and what it held. */
function proxyHolds(output: string): Json[] {
  const out: Json[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line);
      if (j.msg === 'hold ended')
        out.push({
          releasedBy: j.releasedBy,
          heldRequests: j.heldRequests,
          longestWaitMs: j.longestWaitMs,
          ms: j.ms,
        });
    } catch {
      // not a log line
    }
  }
  return out;
}

function cpuOf(m: { userSeconds: number | null; systemSeconds: number | null }): number | null {
  return m.userSeconds === null ? null : round(m.userSeconds + (m.systemSeconds ?? 0), 2);
}

function holdSummary(runs: Json[]): Json {
  const switched = runs.flatMap((r) => r.holds.filter((h: Json) => h.switched));
  const all = runs.flatMap((r) => r.holds);
  return {
    runs: runs.length,
    ok: runs.filter((r) => r.ok).length,
    timedOut: runs.filter((r) => r.timedOut).length,
    /** runs in which the journal sync counted changes it never journaled (writers bypassing the proxy) */
    withBypass: runs.filter((r) => (r.journal?.bypass ?? 0) > 0).length,
    /** the server's write thread-pool queue at its longest, over every run (its ceiling, not cutover's) */
    serverWriteQueueMax: Math.max(0, ...runs.map((r) => r.serverWriteQueue?.max ?? 0)),
    serverWriteRejected: runs.reduce((a, r) => a + (r.serverWriteQueue?.rejected ?? 0), 0),
    switchedMs: dist(switched.map((h: Json) => h.durationMs)),
    allHoldsMs: dist(all.map((h: Json) => h.durationMs)),
    failedHolds: all.length - switched.length,
    failedReasons: all.filter((h: Json) => !h.switched).map((h: Json) => h.reason),
    heldRequests: dist(switched.map((h: Json) => h.heldRequests)),
    longestWaitMs: dist(switched.map((h: Json) => h.longestWaitMs)),
    fenced: switched.filter((h: Json) => h.fence?.fenced).length,
    /** holds in which the journal accounted for every source operation, so no safety-net round ran */
    accounted: all.filter((h: Json) => h.accounted).length,
    /** holds whose target count came from the writer's answers (no target refresh under the hold) */
    targetCountTallied: all.filter((h: Json) => h.targetCount === 'tally').length,
    /** holds whose source count came from a point in time and the journal (no source refresh under the hold) */
    sourceCountFromJournal: all.filter((h: Json) => h.sourceCount === 'journal').length,
    /** holds where that figure disagreed with the target and a refresh was counted instead */
    sourceCountFellBack: all.filter((h: Json) => h.sourceCountFromJournal !== undefined).length,
    // The proxies' side of every hold (their log), switched or not: what the application's writes went through.
    proxyHoldMs: dist(runs.flatMap((r) => (r.proxyHolds ?? []).map((x: Json) => x.ms))),
    proxyLongestWaitMs: dist(runs.flatMap((r) => (r.proxyHolds ?? []).map((x: Json) => x.longestWaitMs))),
    releasedByDeadline: runs.reduce(
      (a, r) => a + (r.proxyHolds ?? []).filter((x: Json) => x.releasedBy === 'deadline').length,
      0,
    ),
    refused: runs.reduce((a, r) => a + r.writers.refused, 0),
    notSent: runs.reduce((a, r) => a + (r.writers.notSent ?? 0), 0),
    refusedByType: Object.assign({}, ...runs.map((r) => r.writers.refusedByType)),
    otherFailures: runs.reduce((a, r) => a + r.writers.otherFailures, 0),
    otherFailuresByType: Object.assign({}, ...runs.map((r) => r.writers.otherFailuresByType)),
    writerRequestMs: dist(runs.map((r) => r.writers.requestMs.max ?? 0)),
    ackedPerSecond: dist(runs.map((r) => r.writers.achievedAckedPerSecond)),
    proxyPeakRssMbMax: Math.max(0, ...runs.map((r) => r.proxy.peakRssMb ?? 0)),
    runnerPeakRssMbMax: Math.max(0, ...runs.map((r) => r.runner.peakRssMb ?? 0)),
    otherCores: dist(runs.map((r) => r.usage.otherCores ?? 0)),
    wallSeconds: dist(runs.map((r) => r.wallSeconds)),
  };
}

// ---- markdown ------------------------------------------------------------------------------------------

const ms = (x: unknown, d = 2) => (typeof x === 'number' ? `${num(x, d)} ms` : '-');
const signed = (x: unknown, d = 2) =>
  typeof x === 'number' ? `${x > 0 ? '+' : x < 0 ? '−' : '±'}${num(Math.abs(x), d)} ms` : '-';

function goals(res: Json): Json[] {
  const out: Json[] = [];
  for (const row of res.latency?.rows ?? [])
    out.push({
      goal: `${row.what} at ${num(row.rate)}/s${(row.docsPerRequest ?? 1) > 1 ? ` (${num(row.writesPerSecond)} writes/s)` : ''}: added p50 ≤ +1 ms`,
      measured: `${signed(row.addedP50Ms)} (direct ${ms(row.direct.latencyMs.p50)}, proxy ${ms(row.proxy.latencyMs.p50)}); p99 ${signed(row.addedP99Ms)}; answered ${num(row.direct.okPerSecond)}/s direct, ${num(row.proxy.okPerSecond)}/s via proxy; errors ${num(row.direct.errors)} / ${num(row.proxy.errors)}${row.direct.errors ? ' (the server did not keep up even direct)' : ''}`,
      met: row.addedP50Ms !== null && row.addedP50Ms <= 1 && row.proxy.errors === 0,
    });
  const cl = res.clients;
  if (cl)
    out.push({
      goal: `${num(cl.proxy.clients)} concurrent keep-alive clients through the proxy: 0 errors`,
      measured: `${num(cl.proxy.errors)} errors in ${num(cl.proxy.requests)} requests; ${num(cl.proxy.okPerSecond)} req/s through the proxy, ${num(cl.direct.okPerSecond)} direct (${pctOf(cl.throughputRatio)})`,
      met: cl.proxy.errors === 0 && cl.proxy.clientsAnswered === cl.proxy.clients,
    });
  const b = res.bulk;
  if (b)
    out.push({
      goal: '`_bulk` throughput through the proxy ≥ 90 % of direct',
      measured: `${num(b.proxy.docsPerSecond)} / ${num(b.direct.docsPerSecond)} docs/s = ${pctOf(b.ratio)}${b.pinned ? ' (server on CPU 0, proxy and load on CPU 1)' : ' (all on both cores)'}`,
      met: b.ratio >= 0.9 && b.proxy.errors === 0,
    });
  const h = res.hold?.summary;
  if (h)
    out.push({
      goal: `hold at the switch p99 ≤ 250 ms and 0 refused writes (${h.runs} switches)`,
      measured: `switched holds p50 ${ms(h.switchedMs.p50, 0)}, p99 ${ms(h.switchedMs.p99, 0)} (n = ${h.switchedMs.n}; ${h.failedHolds} hold(s) released without switching); ${num(h.refused)} writes refused, ${num(h.otherFailures)} other failures, ${num(h.notSent)} not sent (back-pressure: ≥ 256 requests waiting); ${h.ok} of ${h.runs} runs cut over`,
      met: h.switchedMs.p99 !== null && h.switchedMs.p99 <= 250 && h.refused === 0 && h.ok === h.runs,
    });
  const l = res.lag;
  if (l?.journal) {
    const d = l.journal.copyLagsMs ?? l.journal.lagsMs;
    out.push({
      goal: `journal sync lag p99 ≤ 1 s at ${num(l.writers.rate)} writes/s during the copy`,
      measured: `during the copy p50 ${ms(d.p50, 0)}, p99 ${ms(d.p99, 0)} (n = ${d.n}${l.journal.copyLagsMs ? '' : ', whole run: the copy could not be told apart'}); whole run p99 ${ms(l.journal.lagsMs.p99, 0)}`,
      met: d.p99 !== null && d.p99 <= 1000 && l.ok,
    });
  }
  return out;
}

const pctOf = (x: unknown) => (typeof x === 'number' ? `${num(x * 100, 1)} %` : '-');

function markdown(res: Json): string {
  const out: string[] = [];
  const p = (s = '') => out.push(s);
  const table = (head: string[], rows: unknown[][]) => markdownTable(out, head, rows);
  const c: Config = res.config;
  const mc = res.machine;
  p(`## Write proxy (\`bench/proxy.ts\`, ${res.date.slice(0, 10)})`);
  p();
  p(
    `- Machine: ${mc.nproc} vCPU ${mc.cpuModel}, ${mc.memoryGiB} GiB, Node ${mc.node}; **the load generator, \`cutover proxy\`, the runner and the server share the ${mc.nproc} cores** (no network between them). ${res.server?.distribution ?? ''} ${res.server?.version ?? ''}, single node, heap ${c.heapMb} MB, 3 shards, 0 replicas.`,
  );
  p(
    `- Build \`${mc.gitHead}\`${mc.srcUncommitted.length ? ` with uncommitted changes in ${mc.srcUncommitted.length} src file(s)` : ' (src clean)'}; ${res.date} to ${res.finished ?? '?'}; load average at start ${mc.loadAverageAtStart.join(' / ')}${res.loadAverageAtEnd ? `, at the end ${res.loadAverageAtEnd.join(' / ')}` : ''}.`,
  );
  p(`- Command: \`${res.command}\``);
  p(
    '- "other cores": average cores used meanwhile by processes other than the server, the proxy, the runner and the load generator (other sessions on this shared machine); ≥ 0.3 disturbs the figures.',
  );
  p();
  const lat = res.latency;
  if (lat) {
    p(
      `### Added latency (open loop, ${c.latencySeconds} s × ${c.rounds} rounds per route, alternating which goes first)`,
    );
    p();
    p(
      'Latency counts from the moment each request was due on the fixed schedule (no coordinated omission); the same generator, pool and requests on both routes. Writes go to the migrated index through the write alias, so the proxy journals each one (file journal, fdatasync group commit) before answering.',
    );
    p();
    table(
      [
        'requests',
        'rate/s',
        'direct p50 / p99',
        'proxy p50 / p99',
        'added p50',
        'added p99',
        'answered/s d / p',
        'errors d / p',
        'proxy CPU per request',
        'other cores (max)',
      ],
      lat.rows.map((r: Json) => [
        r.what,
        (r.docsPerRequest ?? 1) > 1 ? `${num(r.rate)} (${num(r.writesPerSecond)} writes)` : num(r.rate),
        `${ms(r.direct.latencyMs.p50)} / ${ms(r.direct.latencyMs.p99)}`,
        `${ms(r.proxy.latencyMs.p50)} / ${ms(r.proxy.latencyMs.p99)}`,
        `**${signed(r.addedP50Ms)}**`,
        signed(r.addedP99Ms),
        `${num(r.direct.okPerSecond)} / ${num(r.proxy.okPerSecond)}`,
        `${num(r.direct.errors)} / ${num(r.proxy.errors)}`,
        ms(r.proxyCpuMsPerRequest, 3),
        num(Math.max(r.direct.otherCoresMax, r.proxy.otherCoresMax), 2),
      ]),
    );
    p(
      `Generator send delay p99 (how late it sent, the same on both routes): ${lat.rows.map((r: Json) => `${num(r.rate)}/s ${ms(Math.max(r.direct.sendDelayP99Ms, r.proxy.sendDelayP99Ms))}`).join(', ')}. Service time (from the hand-over to undici) p50 direct / proxy: ${lat.rows.map((r: Json) => `${ms(r.direct.serviceMs.p50)} / ${ms(r.proxy.serviceMs.p50)}`).join('; ')}.`,
    );
    p();
  }
  const cl = res.clients;
  if (cl) {
    p(
      `### ${num(c.clients)} concurrent keep-alive clients (${c.clientSeconds} s; each: index one document, GET one by id, in a loop)`,
    );
    p();
    table(
      ['route', 'requests', 'errors', 'answered/s', 'p50', 'p99', 'max', 'clients answered', 'other cores'],
      (['proxy', 'direct'] as const).map((k) => [
        k,
        num(cl[k].requests),
        `${num(cl[k].errors)}${
          cl[k].errors
            ? ` (${Object.entries(cl[k].errorsByType)
                .map(([t, n]) => `${t}: ${n}`)
                .join(', ')})`
            : ''
        }`,
        num(cl[k].okPerSecond),
        ms(cl[k].latencyMs.p50, 1),
        ms(cl[k].latencyMs.p99, 1),
        ms(cl[k].latencyMs.max, 0),
        `${num(cl[k].clientsAnswered)} / ${num(cl[k].clients)}`,
        num(cl[k].usage.otherCores, 2),
      ]),
    );
    p(
      `Throughput through the proxy: ${pctOf(cl.throughputRatio)} of direct. The proxy held ${cl.proxy.proxyOpenFds ?? '?'} open file descriptors once every client had started (client sockets, upstream sockets, journal). Anchor: the OpenSearch Migration Assistant's capture proxy is reported to saturate at 350 clients (their figure as cited in the issue; not measured here).`,
    );
    p();
  }
  const b = res.bulk;
  if (b) {
    p(
      `### \`_bulk\` throughput (${num(b.bulkDocs)} documents of ~${num(b.avgDocBytes)} B per request, ${b.streams} streams, ${num(b.docsPerRun)} documents a run, ${c.rounds} runs per route after ${b.warmupRounds ?? 0} unrecorded; ${b.pinned ? 'server pinned to CPU 0, proxy and load generator to CPU 1' : 'server, proxy and load generator sharing both cores'})`,
    );
    p();
    table(
      [
        'route',
        'documents',
        'seconds',
        'docs/s',
        'errors',
        'proxy CPU s',
        'server CPU s',
        'other cores (max)',
      ],
      (['direct', 'proxy'] as const).map((k) => [
        k,
        num(b[k].docs),
        num(b[k].seconds, 1),
        num(b[k].docsPerSecond),
        b[k].errors,
        num(b[k].proxyCpuSeconds, 1),
        num(b[k].serverCpuSeconds, 1),
        num(b[k].otherCoresMax, 2),
      ]),
    );
    p(
      `Through the proxy: **${pctOf(b.ratio)}** of direct. Runs: ${(['direct', 'proxy'] as const).map((k) => `${k} ${b[k].runs.map((r: Json) => num(r.docsPerSecond)).join(', ')} docs/s`).join('; ')}.${b.roundRatios ? ` Round by round (proxy / the direct run beside it): ${b.roundRatios.map(pctOf).join(', ')}.` : ''}`,
    );
    p();
  }
  const st = res.steady;
  if (st?.proxyAtEnd)
    p(
      `**The proxy process over parts 1-3** (${Object.keys(st.usageAfter).join(', ')}): peak RSS ${num(st.proxyAtEnd.peakRssMb)} MB (VmHWM; ${num(st.proxyAtStart.rssMb)} MB at rest), CPU ${num(st.proxyAtEnd.cpuSeconds, 1)} s (utime + stime) — ${Object.entries(
        st.usageAfter,
      )
        .map(([k, u]) => `after ${k}: ${num((u as ProxyUsage).peakRssMb)} MB peak`)
        .join(', ')}.`,
    );
  p();
  const h = res.hold;
  if (h?.runs?.length) {
    const s = h.summary;
    p(
      `### Hold at the switch: ${s.runs} migrations of ${num(c.switchDocs)} documents, writers at ${num(c.switchRate)} writes/s through the proxy`,
    );
    p();
    p(
      `Each migration: a new source index, its own \`cutover proxy\`, writers sending \`_bulk\` of ${c.writerBatch} ops (answers ${c.writerFilterPath ? "filtered to each item's status, result and error type, as Logstash asks: no `_seq_no`" : 'whole, as the official clients ask'}; index ${c.mix.index} / update ${c.mix.update} / delete ${c.mix.delete}) through it on a fixed schedule, then \`cutover --json run\` (capture.strategy proxy, \`cutover.holdBudgetMs: ${c.holdBudgetMs}\`, ${c.maxLagSeconds ? `\`capture.maxLagSeconds: ${c.maxLagSeconds}\`, ` : ''}\`verify.mode: off\`, other settings default). Hold figures from journal-sync.json; refused = an op the application got back as 429/5xx/write block/transport failure or could not send.`,
    );
    const wu: Json[] = h.warmup ?? [];
    if (wu.length)
      p(
        `Before them, ${wu.length} warm-up migration(s) on the same server, not in the figures: ${wu.map((w) => `${w.label} ${w.ok ? 'cut over' : 'did not cut over'}, holds ${(w.holds ?? []).map((x: Json) => `${x.durationMs} ms${x.switched ? '' : ' ✗'}`).join(', ') || 'none'}, ${num(w.writers?.refused ?? 0)} refused`).join('; ')}.`,
      );
    p();
    const row = (label: string, d: Dist, f: (x: unknown) => string = (x) => ms(x, 0)) => [
      label,
      d.n,
      f(d.p50),
      f(d.p99),
      f(d.max),
    ];
    table(
      ['figure', 'n', 'p50', 'p99', 'max'],
      [
        row('switched hold, durationMs (hold request → last release)', s.switchedMs),
        row('every hold, switched or not', s.allHoldsMs),
        row('requests held in the switched hold', s.heldRequests, (x) => num(x)),
        row("longest wait of a held request (runner's report of the proxy's figure)", s.longestWaitMs),
        row('every hold as the proxy saw it, held → released (proxy log)', s.proxyHoldMs),
        row('longest wait of a held request, every hold (proxy log)', s.proxyLongestWaitMs),
        row('slowest writer request of each run (due → answer)', s.writerRequestMs),
        row('writes/s acknowledged per run', s.ackedPerSecond, (x) => num(x)),
        row('run wall time, s', s.wallSeconds, (x) => num(x, 1)),
      ].filter((r) => r[1] !== 0),
    );
    p(
      `${s.ok} of ${s.runs} runs cut over${s.timedOut ? ` (${s.timedOut} stopped at the ${c.runTimeoutMinutes}-minute limit)` : ''}; runs whose journal sync counted "bypassing" changes (every writer here goes through the proxy): ${s.withBypass}; ${s.failedHolds} hold(s) released without switching${s.failedReasons.length ? ` (${[...new Set(s.failedReasons)].join('; ')})` : ''}; holds the proxy ended itself at its deadline: ${s.releasedByDeadline}; switched holds with the bypass fence: ${s.fenced}; holds whose journal accounted for every source \`_seq_no\` (no safety-net round under the hold): ${s.accounted ?? 0}; holds counting the target from the writer's answers: ${s.targetCountTallied ?? 0}, the source from a point in time and the journal: ${s.sourceCountFromJournal ?? 0} (figure disagreed, refreshed instead: ${s.sourceCountFellBack ?? 0}). Writes refused: **${num(s.refused)}**${s.refused ? ` (${JSON.stringify(s.refusedByType)})` : ''}; other failed writes: ${num(s.otherFailures)}${s.otherFailures ? ` (${JSON.stringify(s.otherFailuresByType)})` : ''}; writes not sent because 256 requests were still waiting (the writers' back-pressure, not a refusal): ${num(s.notSent)}. The server's write queue reached ${num(s.serverWriteQueueMax)} task(s) (${num(s.serverWriteRejected)} rejected): near the server's write ceiling every bulk of the runner waits behind the writers' queue. Peak RSS: proxy ≤ ${num(s.proxyPeakRssMbMax)} MB, runner ≤ ${num(s.runnerPeakRssMbMax)} MB; other cores p50 ${num(s.otherCores.p50, 2)}, max ${num(s.otherCores.max, 2)}.`,
    );
    p();
    table(
      [
        'run',
        'ok',
        'wall s',
        'holds (ms; ✗ = not switched)',
        'held requests',
        'refused',
        'not sent',
        'acked/s',
        'proxy RSS MB',
        'proxy CPU s',
        'journal "bypass"',
        'safety-net round lag p50 / max',
        'other cores',
      ],
      h.runs.map((r: Json) => [
        r.label,
        r.ok,
        num(r.wallSeconds, 1),
        r.holds.map((x: Json) => `${x.durationMs}${x.switched ? '' : '✗'}`).join(', '),
        r.holds.find((x: Json) => x.switched)?.heldRequests ?? '-',
        r.writers.refused,
        num(r.writers.notSent ?? 0),
        num(r.writers.achievedAckedPerSecond),
        num(r.proxy.peakRssMb),
        num(r.proxy.cpuSeconds, 1),
        num(r.journal?.bypass),
        r.capture?.roundLagsMs
          ? `${ms(r.capture.roundLagsMs.p50, 0)} / ${ms(r.capture.roundLagsMs.max, 0)}`
          : '-',
        num(r.usage.otherCores, 2),
      ]),
    );
  }
  const l = res.lag;
  if (l) {
    p(
      `### Catch-up lag: a ${num(c.lagDocs)}-document migration with writers at ${num(l.writers.rate)} writes/s through the proxy${c.maxLagSeconds ? ` (\`capture.maxLagSeconds: ${c.maxLagSeconds}\`: the copy gives way above ${c.maxLagSeconds / 2} s)` : ' (`capture.maxLagSeconds` 2 by default: the copy gives way above 1 s)'}`,
    );
    p();
    p(
      `${l.ok ? 'Cut over' : `**Run failed (exit ${l.exitCode})**`} after ${num(l.wallSeconds, 1)} s (steps: ${Object.entries(
        l.steps,
      )
        .map(([k, v]) => `${k} ${v} s`)
        .join(
          ', ',
        )}); writers acknowledged ${num(l.writers.achievedAckedPerSecond)} writes/s, refused ${num(l.writers.refused)}, other failures ${num(l.writers.otherFailures)}, not sent (back-pressure) ${num(l.writers.notSent ?? 0)}; proxy peak RSS ${num(l.proxy.peakRssMb)} MB, CPU ${num(l.proxy.cpuSeconds, 1)} s; runner peak RSS ${num(l.runner.peakRssMb)} MB; other cores ${num(l.usage.otherCores, 2)}.`,
    );
    p();
    if (l.journal) {
      const row = (label: string, d: Dist | null) =>
        d
          ? [label, d.n, ms(d.p50, 0), ms(d.p90, 0), ms(d.p99, 0), ms(d.max, 0)]
          : [label, '-', '-', '-', '-', '-'];
      table(
        ['journal sync lag (journal-sync.json `lags`)', 'batches', 'p50', 'p90', 'p99', 'max'],
        [
          row('during the copy', l.journal.copyLagsMs),
          row(l.journal.lagsComplete ? 'whole run' : 'whole run (the last 2,000 batches)', l.journal.lagsMs),
        ],
      );
      p(
        `A lag is the engine's own figure: for each batch the journal sync applied, from the proxy's journaling of the batch's oldest entry to the target's acknowledgement (the longest any write of the batch waited). Journal: ${num(l.journal.entries)} entries, ${num(l.journal.copied)} documents copied and ${num(l.journal.deleted)} deleted through it; holds ${l.holds.map((x: Json) => `${x.durationMs} ms${x.switched ? '' : ' ✗'}`).join(', ')}.`,
      );
      p();
    }
  }
  p('### Goals');
  p();
  table(
    ['goal', 'measured', 'met?'],
    (res.goals ?? []).map((g: Json) => [g.goal, g.measured, g.met ? 'yes' : '**no**']),
  );
  return out.join('\n');
}

// ---- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.env.BENCH_REPORT) {
    const res: Json = JSON.parse(readFileSync(process.env.BENCH_REPORT, 'utf8'));
    if (res.hold?.runs?.length) res.hold.summary = holdSummary(res.hold.runs);
    res.goals = goals(res);
    process.stdout.write(`${markdown(res)}\n`);
    return;
  }
  const c = config();
  if (!existsSync(c.cli)) throw new Error(`${c.cli} is missing: build first (npx tsc -p .) or set BENCH_CLI`);
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const res: Json = {
    benchmark: 'proxy',
    date: new Date().toISOString(),
    command: command(),
    config: c,
    machine: {
      nproc: os.availableParallelism(),
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown',
      kernel: os.release(),
      node: process.version,
      gitHead: git(['rev-parse', '--short', 'HEAD']),
      srcUncommitted: git(['status', '--short', '--', 'src']).split('\n').filter(Boolean),
      loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
    },
  };
  const save = async () => {
    // The raw lag list stays in the JSON; the rest is summaries.
    await writeJson(c.out, res);
  };
  log(`starting ${c.kind} (heap ${c.heapMb} MB)...`);
  const server = await startLocalCluster({ kind: c.kind, heapMb: c.heapMb });
  const es = new Cluster({ url: server.url, requestTimeoutMs: 600_000, connections: 32 });
  res.server = { kind: c.kind, distribution: server.distribution, version: server.version };
  log(`${server.distribution} ${server.version} at ${server.url} (pid ${server.pid})`);
  if (c.pin) {
    pin(server.pid, 0, 'the server');
    pin(process.pid, 1, 'the load generator');
  }
  const sets: DataSet[] = [];
  try {
    if (c.parts.some((x) => x === 'latency' || x === 'clients' || x === 'bulk'))
      await steadyParts(es, server, c, res, save);
    if (c.parts.includes('hold') && c.switches > 0) {
      const set = await ensureDataSet(DATA, c.switchDocs, CHUNK);
      sets.push(set);
      res.hold = { runs: [], warmup: [] };
      const switchOnce = (label: string, seed: number) =>
        migration(es, server, c, { label, set, rate: c.switchRate, seed, watchLags: false });
      for (let i = 1; i <= c.holdWarmup; i++) {
        res.hold.warmup.push(await switchOnce(`bp-hw${i}`, 1000 + i));
        await save();
      }
      for (let i = 1; i <= c.switches; i++) {
        res.hold.runs.push(await switchOnce(`bp-h${i}`, i));
        res.hold.summary = holdSummary(res.hold.runs);
        await save();
      }
    }
    if (c.parts.includes('lag')) {
      const set = await ensureDataSet(DATA, c.lagDocs, CHUNK);
      sets.push(set);
      // The ceiling: the same writers straight at the server, no proxy and no migration.
      res.lagDirect = await directWrites(es, server, c, set, c.lagRate);
      await save();
      res.lag = await migration(es, server, c, {
        label: 'bp-lag',
        set,
        rate: c.lagRate,
        seed: 99,
        watchLags: true,
      });
      await save();
    }
  } finally {
    res.finished = new Date().toISOString();
    res.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));
    res.goals = goals(res);
    await save();
    await es.close().catch(() => undefined);
    log(`stopping ${c.kind}...`);
    await server.stop();
    if (!c.keepData) {
      for (const s of sets) await rm(s.dir, { recursive: true, force: true });
      await rm(path.join(DATA, 'proxy-work'), { recursive: true, force: true });
    }
  }
  const md = markdown(res);
  await mkdir(path.dirname(c.md), { recursive: true });
  await writeFile(c.md, `${md}\n`);
  process.stdout.write(`${md}\n`);
  log(`results in ${c.out} and ${c.md}`);
}

main().catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
