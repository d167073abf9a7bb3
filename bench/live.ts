/**
 * Live-capture benchmark (never part of the test suite, never run in CI): what the application sees while
 * `capture.strategy: seqno` migrates the index it keeps writing to.
 *
 *   node --import tsx bench/live.ts [--parts lag,freeze] [--kind es8] [--docs 400000] [--rate 2000]
 *     [--cutovers 20] [--freeze-docs 20000] [--freeze-rate 1000] [--mix index:50,update:35,delete:15]
 *     [--batch 100] [--sample 0.01] [--poll-ms 100] [--verify sample] [--freeze-verify off]
 *     [--tail-interval-ms 500] [--max-lag-seconds 2] [--freeze-budget-ms 1000] [--heap 1024] [--shards 3]
 *     [--timeout-minutes 30] [--cli dist/src/cli/main.js] [--keep-data] [--out bench/.data/live-results.json]
 *     [--md bench/.data/live-results.md]
 *   node --import tsx bench/live.ts --report bench/.data/live-results.json [--md out.md]   (markdown only)
 *
 * On one local server (startLocalCluster, like bench/copy.ts) and for each migration: a source index of ~1 KB
 * documents behind a read alias and a write alias, "application" writers sending `_bulk` requests of `--batch`
 * small ops through the write alias at a steady `--rate` writes/s (requests on a fixed schedule, never waiting
 * for the previous answer, at most 16 in flight: a tick that finds 16 in flight is skipped and counted), and the
 * CLI (`node <cli> --json run spec.yaml`, under /usr/bin/time for peak RSS) migrating it with capture seqno.
 *
 *   lag     one migration of `--docs` documents at `--rate`. TRUE lag: `--sample` of the acknowledged writes
 *           (once the capture has started, i.e. capture.json exists) are watched: their id is kept away from
 *           other writers, and the target is polled with `_mget` (realtime) every `--poll-ms` until it holds
 *           the write's state (the unique `w` value, or absence for a delete); lag = first seen − ack. A
 *           delete's "seen" is reset if the document shows up again (a backfill copy of an older state). At
 *           the end every sampled write acknowledged by the source is checked once more: one the target does
 *           not hold is lost. Also the engine's own per-round figure (capture.json `lags`).
 *   freeze  `--cutovers` migrations of `--freeze-docs` documents at `--freeze-rate` (new source and target
 *           each time): every freeze of capture.json (durationMs, switched or not) and what the writers saw
 *           (cluster_block_exception refusals: how many, first to last per freeze).
 *
 * Results: `--out` (JSON, rewritten after every migration) and `--md` (a markdown section for
 * docs/benchmarks.md, also printed on stdout). Data and work directories go to bench/.data (gitignored) and
 * are deleted at the end unless --keep-data.
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
import { ClusterError } from '../src/cluster/errors.js';
import { type LocalCluster, type ServerKind, startLocalCluster } from '../src/local/servers.js';
import {
  cpuSecondsOf,
  type DataSet,
  docId,
  ensureDataSet,
  loadFiles,
  MAPPINGS,
  machineBusySeconds,
  markdownTable,
  measure,
  num,
  prng,
  writeJson,
} from './lib.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const DATA = path.join(BENCH, '.data');
const CHUNK = 500;
const MAX_IN_FLIGHT = 16;

// biome-ignore lint/suspicious/noExplicitAny: a free-form results document, written as JSON
type Json = any;

// ---- arguments -----------------------------------------------------------------------------------------

type OpKind = 'index' | 'update' | 'delete';

interface Args {
  parts: Set<string>;
  kind: ServerKind;
  heapMb: number;
  shards: number;
  cli: string;
  docs: number;
  rate: number;
  cutovers: number;
  freezeDocs: number;
  freezeRate: number;
  mix: Record<OpKind, number>;
  batch: number;
  sample: number;
  pollMs: number;
  verify: string;
  freezeVerify: string;
  tailIntervalMs: number;
  maxLagSeconds: number;
  freezeBudgetMs: number;
  timeoutMinutes: number;
  keepData: boolean;
  out: string;
  md: string;
  /** only rewrite the markdown of an existing results file */
  report?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    parts: new Set(['lag', 'freeze']),
    kind: 'es8',
    heapMb: 1024,
    shards: 3,
    cli: path.join(ROOT, 'dist/src/cli/main.js'),
    docs: 400_000,
    rate: 2000,
    cutovers: 20,
    freezeDocs: 20_000,
    freezeRate: 1000,
    mix: { index: 50, update: 35, delete: 15 },
    batch: 100,
    sample: 0.01,
    pollMs: 100,
    verify: 'sample',
    freezeVerify: 'off',
    tailIntervalMs: 500,
    maxLagSeconds: 2,
    freezeBudgetMs: 1000,
    timeoutMinutes: 30,
    keepData: false,
    out: path.join(DATA, 'live-results.json'),
    md: path.join(DATA, 'live-results.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    const num = () => {
      const x = Number(v());
      if (!Number.isFinite(x) || x < 0) throw new Error(`${k} needs a non-negative number`);
      return x;
    };
    if (k === '--parts') a.parts = new Set(v().split(',').filter(Boolean));
    else if (k === '--kind') a.kind = v() as ServerKind;
    else if (k === '--heap') a.heapMb = num();
    else if (k === '--shards') a.shards = num();
    else if (k === '--cli') a.cli = path.resolve(v());
    else if (k === '--docs') a.docs = num();
    else if (k === '--rate') a.rate = num();
    else if (k === '--cutovers') a.cutovers = num();
    else if (k === '--freeze-docs') a.freezeDocs = num();
    else if (k === '--freeze-rate') a.freezeRate = num();
    else if (k === '--mix') a.mix = parseMix(v());
    else if (k === '--batch') a.batch = num();
    else if (k === '--sample') a.sample = num();
    else if (k === '--poll-ms') a.pollMs = num();
    else if (k === '--verify') a.verify = v();
    else if (k === '--freeze-verify') a.freezeVerify = v();
    else if (k === '--tail-interval-ms') a.tailIntervalMs = num();
    else if (k === '--max-lag-seconds') a.maxLagSeconds = num();
    else if (k === '--freeze-budget-ms') a.freezeBudgetMs = num();
    else if (k === '--timeout-minutes') a.timeoutMinutes = num();
    else if (k === '--keep-data') a.keepData = true;
    else if (k === '--out') a.out = path.resolve(v());
    else if (k === '--md') a.md = path.resolve(v());
    else if (k === '--report') a.report = path.resolve(v());
    else throw new Error(`unknown argument ${k}`);
  }
  for (const p of a.parts) if (p !== 'lag' && p !== 'freeze') throw new Error(`unknown part ${p}`);
  for (const m of [a.verify, a.freezeVerify])
    if (!['full', 'sample', 'off'].includes(m)) throw new Error(`verify mode ${m}: use full, sample or off`);
  if (a.docs < CHUNK || a.freezeDocs < CHUNK) throw new Error(`--docs and --freeze-docs must be >= ${CHUNK}`);
  if (a.batch < 1 || a.rate < a.batch || a.freezeRate < a.batch)
    throw new Error('--rate and --freeze-rate must be at least --batch');
  return a;
}

function parseMix(s: string): Record<OpKind, number> {
  const mix: Record<OpKind, number> = { index: 0, update: 0, delete: 0 };
  for (const part of s.split(',').filter(Boolean)) {
    const [k, w] = part.split(':');
    if (k !== 'index' && k !== 'update' && k !== 'delete')
      throw new Error(`--mix ${s}: use e.g. index:50,update:35,delete:15`);
    mix[k] = Number(w);
  }
  if (!(mix.index > 0)) throw new Error('--mix needs a positive index weight (new ids come from index ops)');
  return mix;
}

// ---- small helpers -------------------------------------------------------------------------------------

const log = (s: string) => process.stderr.write(`[live ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/** nearest rank, like the engine's `percentile` (src/capture/live.ts) */
function pct(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function dist(values: number[]): Json {
  return {
    n: values.length,
    p50: pct(values, 50),
    p90: pct(values, 90),
    p99: pct(values, 99),
    max: values.length ? Math.max(...values) : null,
  };
}

/** mulberry32 */
function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

// ---- writers -------------------------------------------------------------------------------------------

interface Sample {
  id: number;
  /** unique write number, the `w` the document carries after an index or update */
  n: number;
  kind: OpKind;
  ackAt: number;
  /** concrete index that acknowledged the write */
  ackIndex: string;
  /** first poll answer showing the state (delete: reset when the document showed up again) */
  seenAt?: number;
  done: boolean;
  /** the final check found the state missing on the target */
  lost?: boolean;
}

interface PendingOp {
  id: number;
  n: number;
  kind: OpKind;
  sampled: boolean;
}

interface BulkItem {
  _index?: string;
  status: number;
  result?: string;
  error?: { type?: string };
}

/**
 * Application writers: one `_bulk` of `batch` ops every `batch / rate` seconds through the write alias, never
 * retried. Ids `docId(0..docs-1)` exist at the start; index ops go half to new ids, half to existing ones;
 * updates and deletes pick ids believed present. Sampled ops use an id no other op is touching and keep it to
 * themselves until the target shows their state.
 */
class Writers {
  private readonly rand: () => number;
  private present: Uint8Array;
  private nextNew: number;
  private n = 0;
  private readonly inFlightIds = new Map<number, number>();
  /** ids reserved by a sample under observation */
  readonly locked = new Set<number>();
  readonly samples: Sample[] = [];
  sampling = false;
  private stopped = false;
  private inFlight = 0;
  private loop?: Promise<void>;
  private readonly requests = new Set<Promise<void>>();
  startedAt = 0;
  stoppedAt = 0;
  readonly st = {
    ticks: 0,
    skippedTicks: 0,
    requests: 0,
    requestErrors: {} as Record<string, number>,
    sent: 0,
    acked: 0,
    ackedByKind: { index: 0, update: 0, delete: 0 } as Record<OpKind, number>,
    ackedByIndex: {} as Record<string, number>,
    refused: 0,
    failedByType: {} as Record<string, number>,
    bulkLatencyMs: [] as number[],
  };
  /** arrival time of every cluster_block_exception refusal */
  readonly refusals: number[] = [];
  lastSourceAckAt = 0;
  firstTargetAckAt = 0;
  private readonly totalWeight: number;

  constructor(
    private readonly o: {
      es: Cluster;
      alias: string;
      sourceIndex: string;
      targetIndex: string;
      rate: number;
      batch: number;
      sampleRate: number;
      docs: number;
      templates: Json[];
      mix: Record<OpKind, number>;
      seed: number;
    },
  ) {
    this.rand = prng(o.seed);
    this.present = new Uint8Array(o.docs * 2).fill(1, 0, o.docs);
    this.nextNew = o.docs;
    this.totalWeight = o.mix.index + o.mix.update + o.mix.delete;
  }

  start(): void {
    this.startedAt = Date.now();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.requests]);
    this.stoppedAt = Date.now();
  }

  private async run(): Promise<void> {
    const interval = (1000 * this.o.batch) / this.o.rate;
    const t0 = performance.now();
    let k = 0;
    while (!this.stopped) {
      const due = t0 + k * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.stopped) break;
      k++;
      this.st.ticks++;
      // More than a second behind (a stalled event loop): those ticks are lost, not sent as a burst.
      if (performance.now() - due > 1000) {
        const behind = Math.floor((performance.now() - due) / interval);
        this.st.skippedTicks += behind;
        this.st.ticks += behind;
        k += behind;
      }
      if (this.inFlight >= MAX_IN_FLIGHT) {
        this.st.skippedTicks++;
        continue;
      }
      const p = this.send().catch((e: unknown) => {
        const key = e instanceof Error ? e.message.slice(0, 80) : String(e);
        this.st.requestErrors[key] = (this.st.requestErrors[key] ?? 0) + 1;
      });
      this.requests.add(p);
      void p.finally(() => this.requests.delete(p));
    }
  }

  private isPresent(id: number): boolean {
    return id < this.present.length && this.present[id] === 1;
  }

  private setPresent(id: number, v: boolean): void {
    if (id >= this.present.length) {
      const grown = new Uint8Array(Math.max(id + 1, this.present.length * 2));
      grown.set(this.present);
      this.present = grown;
    }
    this.present[id] = v ? 1 : 0;
  }

  private pickKind(): OpKind {
    let r = this.rand() * this.totalWeight;
    for (const k of ['index', 'update', 'delete'] as const) {
      if (r < this.o.mix[k]) return k;
      r -= this.o.mix[k];
    }
    return 'index';
  }

  /** An id for `kind`, or undefined; never a locked id, never one already in this batch when sampled. */
  private pickId(kind: OpKind, sampled: boolean, batch: Set<number>): number | undefined {
    const free = (id: number) =>
      !this.locked.has(id) && !(sampled && (batch.has(id) || (this.inFlightIds.get(id) ?? 0) > 0));
    if (kind === 'index' && this.rand() < 0.5) return this.nextNew++;
    for (let tries = 0; tries < 8; tries++) {
      const id = Math.floor(this.rand() * this.nextNew);
      if (!free(id)) continue;
      if (kind !== 'index' && !this.isPresent(id)) continue;
      return id;
    }
    return kind === 'index' ? this.nextNew++ : undefined;
  }

  private async send(): Promise<void> {
    const ops: PendingOp[] = [];
    const batch = new Set<number>();
    for (let i = 0; i < this.o.batch; i++) {
      const sampled = this.sampling && this.rand() < this.o.sampleRate;
      let kind = this.pickKind();
      let id = this.pickId(kind, sampled, batch);
      if (id === undefined) {
        kind = 'index';
        id = this.pickId(kind, sampled, batch)!;
      }
      if (sampled) this.locked.add(id);
      batch.add(id);
      ops.push({ id, n: ++this.n, kind, sampled });
    }
    const lines: string[] = [];
    for (const op of ops) {
      const _id = docId(op.id);
      if (op.kind === 'index') {
        const t = this.o.templates[op.n % this.o.templates.length];
        lines.push(JSON.stringify({ index: { _id } }), JSON.stringify({ ...t, w: op.n }));
      } else if (op.kind === 'update') {
        lines.push(
          JSON.stringify({ update: { _id } }),
          JSON.stringify({ doc: { w: op.n, quantity: op.n % 1000 } }),
        );
      } else lines.push(JSON.stringify({ delete: { _id } }));
      this.inFlightIds.set(op.id, (this.inFlightIds.get(op.id) ?? 0) + 1);
    }
    const body = `${lines.join('\n')}\n`;
    this.inFlight++;
    this.st.requests++;
    this.st.sent += ops.length;
    const sentAt = Date.now();
    let items: BulkItem[];
    try {
      const res = await this.o.es.request<{ items: Array<Record<string, BulkItem>> }>({
        method: 'POST',
        path: `/${encodeURIComponent(this.o.alias)}/_bulk`,
        body,
        ndjson: true,
        query: { filter_path: 'items.*._index,items.*.status,items.*.result,items.*.error.type' },
      });
      items = res.body.items.map((it) => Object.values(it)[0]!);
    } catch (e) {
      // The whole request refused (e.g. a block checked before the items): every op shares the answer.
      if (e instanceof ClusterError) items = ops.map(() => ({ status: e.status, error: { type: e.type } }));
      else {
        for (const op of ops) this.release(op, false);
        throw e;
      }
    } finally {
      this.inFlight--;
    }
    const at = Date.now();
    this.st.bulkLatencyMs.push(at - sentAt);
    ops.forEach((op, i) => {
      const it = items[i] ?? { status: 0, error: { type: 'no item' } };
      // A delete of an id already gone is answered 404 not_found: acknowledged, nothing changed.
      const noopDelete = op.kind === 'delete' && it.status === 404 && it.result === 'not_found';
      if ((it.status >= 200 && it.status < 300) || noopDelete) {
        this.st.acked++;
        this.st.ackedByKind[op.kind]++;
        const ix = it._index ?? '?';
        this.st.ackedByIndex[ix] = (this.st.ackedByIndex[ix] ?? 0) + 1;
        if (ix === this.o.sourceIndex) this.lastSourceAckAt = Math.max(this.lastSourceAckAt, at);
        else if (ix === this.o.targetIndex && !this.firstTargetAckAt) this.firstTargetAckAt = at;
        this.setPresent(op.id, op.kind !== 'delete');
        // A delete of an id already gone (not_found) changes nothing: not a useful sample.
        const useful = !(op.kind === 'delete' && it.result === 'not_found');
        if (op.sampled && useful)
          this.samples.push({ id: op.id, n: op.n, kind: op.kind, ackAt: at, ackIndex: ix, done: false });
        this.release(op, op.sampled && useful && ix === this.o.sourceIndex);
      } else {
        const type = it.error?.type ?? `status ${it.status}`;
        if (type === 'cluster_block_exception') {
          this.st.refused++;
          this.refusals.push(at);
        } else this.st.failedByType[type] = (this.st.failedByType[type] ?? 0) + 1;
        if (type === 'document_missing_exception') this.setPresent(op.id, false);
        this.release(op, false);
      }
    });
  }

  /** The op is answered; a sampled id stays locked while its sample is watched. */
  private release(op: PendingOp, keepLock: boolean): void {
    const left = (this.inFlightIds.get(op.id) ?? 1) - 1;
    if (left <= 0) this.inFlightIds.delete(op.id);
    else this.inFlightIds.set(op.id, left);
    if (op.sampled && !keepLock) this.locked.delete(op.id);
  }
}

// ---- sampled-write poller ------------------------------------------------------------------------------

/**
 * Polls the target for the sampled writes the source acknowledged. Index/update: done once the target's `w`
 * equals the write's; delete: seen while absent, re-watched (every 10th poll) until the end in case a stale
 * copy brings the document back.
 */
class Poller {
  private stopped = false;
  private loop?: Promise<void>;
  polls = 0;
  pollErrors = 0;
  captureStartedAt = 0;

  constructor(
    private readonly o: {
      es: Cluster;
      writers: Writers;
      sourceIndex: string;
      targetIndex: string;
      pollMs: number;
      captureFile: string;
    },
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private watched(all: boolean): Sample[] {
    return this.o.writers.samples.filter(
      (s) => s.ackIndex === this.o.sourceIndex && !s.done && (all || s.seenAt === undefined),
    );
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const t0 = Date.now();
      if (!this.captureStartedAt && existsSync(this.o.captureFile)) {
        this.captureStartedAt = Date.now();
        this.o.writers.sampling = true;
      }
      try {
        await this.check(this.watched(this.polls % 10 === 0), false);
      } catch {
        this.pollErrors++;
      }
      this.polls++;
      await sleep(Math.max(0, this.o.pollMs - (Date.now() - t0)));
    }
  }

  /** One `_mget` round over `list`; `final`: the end-of-run check (marks the ones still missing as lost). */
  async check(list: Sample[], final: boolean): Promise<void> {
    for (let i = 0; i < list.length; i += 500) {
      const part = list.slice(i, i + 500);
      const res = await this.o.es.request<{
        docs?: Array<{ found?: boolean; _source?: { w?: number } }>;
      }>({
        method: 'POST',
        path: `/${encodeURIComponent(this.o.targetIndex)}/_mget`,
        query: { _source_includes: 'w' },
        body: { docs: part.map((s) => ({ _id: docId(s.id) })) },
        okStatuses: [404],
        idempotent: true,
      });
      const at = Date.now();
      const docs = res.status === 404 ? [] : (res.body.docs ?? []);
      part.forEach((s, k) => {
        const d = docs[k];
        const found = !!d?.found;
        const holds = s.kind === 'delete' ? !found : found && d?._source?.w === s.n;
        if (holds) {
          s.seenAt ??= at;
          if (s.kind !== 'delete' || final) {
            s.done = true;
            this.o.writers.locked.delete(s.id);
          }
        } else {
          s.seenAt = undefined;
          if (final) {
            s.lost = true;
            s.done = true;
          }
        }
      });
    }
  }

  /** After the writers stopped: wait up to `ms` for the stragglers, then the final check. */
  async finish(ms: number): Promise<void> {
    await this.stop();
    const until = Date.now() + ms;
    while (Date.now() < until && this.watched(false).length > 0) {
      await this.check(this.watched(false), false).catch(() => undefined);
      await sleep(this.o.pollMs);
    }
    await this.check(this.watched(true), true);
  }
}

// ---- one migration under writers -----------------------------------------------------------------------

interface RunOptions {
  label: string;
  set: DataSet;
  rate: number;
  verify: string;
  sample: number;
  warmupSeconds: number;
}

function mappingsWithW(): Json {
  return { ...MAPPINGS, properties: { ...MAPPINGS.properties, w: { type: 'long' } } };
}

async function templatesOf(set: DataSet): Promise<Json[]> {
  const text = await readFile(set.files[0]!, 'utf8');
  return text
    .split('\n')
    .filter((l, i) => l && i % 2 === 1)
    .map((l) => JSON.parse(l));
}

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

/** Refusals closer than `gapMs` to each other belong to the same freeze, as the writers saw it. */
function refusalGroups(times: number[], gapMs = 400): Array<{ first: number; last: number; count: number }> {
  const groups: Array<{ first: number; last: number; count: number }> = [];
  for (const t of [...times].sort((a, b) => a - b)) {
    const g = groups[groups.length - 1];
    if (g && t - g.last <= gapMs) {
      g.last = t;
      g.count++;
    } else groups.push({ first: t, last: t, count: 1 });
  }
  return groups;
}

async function runLive(
  es: Cluster,
  server: LocalCluster,
  cli: string,
  args: Args,
  o: RunOptions,
): Promise<Json> {
  const source = `${o.label}-src`;
  const target = `${o.label}-dst`;
  const readAlias = `${o.label}-read`;
  const writeAlias = `${o.label}-write`;
  for (const ix of [source, target]) if (await es.indexExists(ix)) await es.deleteIndex(ix);
  await es.createIndex(source, {
    settings: { index: { number_of_shards: args.shards, number_of_replicas: 0, refresh_interval: '-1' } },
    mappings: mappingsWithW(),
    aliases: { [readAlias]: {}, [writeAlias]: { is_write_index: true } },
  });
  const tl = Date.now();
  await loadFiles(es, source, o.set, { concurrency: 4, filesPerRequest: 1 });
  await es.putSettings(source, { 'index.refresh_interval': null });
  await es.refresh(source);
  await es.request({ method: 'POST', path: `/${source}/_flush`, idempotent: true });
  const loadSeconds = (Date.now() - tl) / 1000;
  log(`${o.label}: ${o.set.docs} documents in ${source} (${round(loadSeconds)} s)`);

  const work = path.join(DATA, 'work', o.label);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const spec = {
    name: o.label,
    source: { cluster: { url: server.url }, index: readAlias },
    target: { index: target },
    aliases: { read: [readAlias], write: writeAlias },
    copy: { sampleSize: 20 },
    capture: { strategy: 'seqno', tailIntervalMs: args.tailIntervalMs, maxLagSeconds: args.maxLagSeconds },
    cutover: { freezeBudgetMs: args.freezeBudgetMs },
    verify: { mode: o.verify },
    stateDir: './state',
  };
  const specFile = path.join(work, 'spec.yaml');
  await writeFile(specFile, stringify(spec));
  const captureFile = path.join(work, 'state', o.label, 'capture.json');

  const writers = new Writers({
    es,
    alias: writeAlias,
    sourceIndex: source,
    targetIndex: target,
    rate: o.rate,
    batch: args.batch,
    sampleRate: o.sample,
    docs: o.set.docs,
    templates: await templatesOf(o.set),
    mix: args.mix,
    seed: 7,
  });
  const poller = new Poller({
    es,
    writers,
    sourceIndex: source,
    targetIndex: target,
    pollMs: args.pollMs,
    captureFile,
  });
  writers.start();
  poller.start();
  await sleep(o.warmupSeconds * 1000);

  const s0 = cpuSecondsOf(server.pid);
  const m0 = machineBusySeconds();
  const self0 = process.cpuUsage();
  const load0 = os.loadavg()[0]!;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const stderrFile = path.join(work, 'stderr.log');
  log(`${o.label}: cutover run (writers at ${o.rate}/s, verify ${o.verify})...`);
  const m = await measure(process.execPath, [cli, '--json', 'run', specFile], {
    cwd: work,
    env,
    stderrFile,
    timeoutMs: args.timeoutMinutes * 60_000,
  });
  const cliEndedAt = Date.now();
  // A moment of writes through the moved alias, then stop and settle the samples.
  await sleep(2000);
  await writers.stop();
  await poller.finish(15_000);
  const serverCpu = s0 === null ? null : (cpuSecondsOf(server.pid) ?? s0) - s0;
  const self = process.cpuUsage(self0);
  const selfCpu = (self.user + self.system) / 1e6;
  const cliCpu = (m.userSeconds ?? 0) + (m.systemSeconds ?? 0);
  const busy = machineBusySeconds() - m0;
  const otherCores =
    serverCpu === null ? null : Math.max(0, busy - serverCpu - cliCpu - selfCpu) / m.wallSeconds;

  let report: Json = null;
  try {
    report = JSON.parse(m.stdout.trim().split('\n').pop() ?? 'null');
  } catch {
    report = null;
  }
  const capture: Json = existsSync(captureFile) ? JSON.parse(readFileSync(captureFile, 'utf8')) : null;
  const marks = await stepMarks(stderrFile);
  const freezes: Json[] = capture?.freezes ?? [];
  const switched = freezes.find((f) => f.switched);
  const switchStart = switched ? Date.parse(switched.startedAt) : null;
  const switchEnd = switched ? switchStart! + switched.durationMs : null;

  // TRUE lag of the writes the source acknowledged after the capture started.
  const watched = writers.samples.filter((s) => s.ackIndex === source);
  const lagOf = (s: Sample) => (s.seenAt === undefined || s.lost ? null : s.seenAt - s.ackAt);
  const lags = (f: (s: Sample) => boolean) =>
    watched.filter(f).flatMap((s) => (lagOf(s) === null ? [] : [lagOf(s)!]));
  const phaseOf = (t: number) => marks.filter((mk) => mk.at <= t).pop()?.step ?? 'before-run';
  const byPhase: Json = {};
  for (const s of watched) {
    const l = lagOf(s);
    if (l === null) continue;
    const p = phaseOf(s.ackAt);
    byPhase[p] ??= [];
    byPhase[p].push(l);
  }
  const groups = refusalGroups(writers.refusals);
  const groupOf = (f: Json) => {
    const a = Date.parse(f.startedAt);
    return groups.filter((g) => g.first >= a - 50 && g.first <= a + f.durationMs + 200);
  };
  const wall = (writers.stoppedAt - writers.startedAt) / 1000;
  const ok = m.code === 0 && report?.phase === 'cut-over';
  const r: Json = {
    label: o.label,
    ok,
    exitCode: m.code,
    docs: o.set.docs,
    loadSeconds: round(loadSeconds),
    targetRate: o.rate,
    verify: o.verify,
    wallSeconds: round(m.wallSeconds, 1),
    peakRssMb: m.peakRssMb === null ? null : round(m.peakRssMb, 1),
    rssSource: m.rssSource,
    cliCpuSeconds: round(cliCpu, 1),
    serverCpuSeconds: serverCpu === null ? null : round(serverCpu, 1),
    benchCpuSeconds: round(selfCpu, 1),
    otherCores: otherCores === null ? null : round(otherCores, 2),
    loadAverage1m: [round(load0, 2), round(os.loadavg()[0]!, 2)],
    steps: Object.fromEntries(
      marks.map((mk, i) => [mk.step, round(((marks[i + 1]?.at ?? cliEndedAt) - mk.at) / 1000, 1)]),
    ),
    writers: {
      seconds: round(wall, 1),
      requests: writers.st.requests,
      sent: writers.st.sent,
      acked: writers.st.acked,
      achievedSentPerSecond: Math.round(writers.st.sent / wall),
      achievedAckedPerSecond: Math.round(writers.st.acked / wall),
      skippedTicks: writers.st.skippedTicks,
      ticks: writers.st.ticks,
      ackedByKind: writers.st.ackedByKind,
      ackedByIndex: writers.st.ackedByIndex,
      refused: writers.st.refused,
      failedByType: writers.st.failedByType,
      requestErrors: writers.st.requestErrors,
      bulkLatencyMs: dist(writers.st.bulkLatencyMs),
    },
    trueLag: {
      sampleRate: o.sample,
      pollMs: args.pollMs,
      captureStartedAt: poller.captureStartedAt ? new Date(poller.captureStartedAt).toISOString() : null,
      sampled: writers.samples.length,
      acknowledgedBySource: watched.length,
      acknowledgedByTarget: writers.samples.length - watched.length,
      all: dist(lags(() => true)),
      indexAndUpdate: dist(lags((s) => s.kind !== 'delete')),
      deletes: dist(lags((s) => s.kind === 'delete')),
      byPhase: Object.fromEntries(Object.entries(byPhase).map(([k, v]) => [k, dist(v as number[])])),
      lost: watched.filter((s) => s.lost).length,
      lostIds: watched
        .filter((s) => s.lost)
        .slice(0, 10)
        .map((s) => ({ id: docId(s.id), kind: s.kind, n: s.n })),
      /** first seen more than one poll period after the switch's freeze ended (polling granularity aside) */
      seenAfterSwitch:
        switchEnd === null
          ? null
          : watched.filter((s) => s.ackAt < switchStart! && (s.seenAt ?? 0) > switchEnd + 2 * args.pollMs)
              .length,
      polls: poller.polls,
      pollErrors: poller.pollErrors,
    },
    engine: {
      rounds: capture?.rounds ?? null,
      applied: capture?.applied ?? null,
      deleted: capture?.deleted ?? null,
      reconciles: capture?.reconciles ?? null,
      roundLagMs: dist(capture?.lags ?? []),
      reportLagP50Ms: report?.capture?.lagP50Ms ?? null,
      reportLagP99Ms: report?.capture?.lagP99Ms ?? null,
    },
    freezes: freezes.map((f) => {
      const g = groupOf(f);
      return {
        attempt: f.attempt,
        durationMs: f.durationMs,
        switched: f.switched,
        reason: f.reason,
        appliedInFreeze: f.appliedInFreeze,
        deletedInFreeze: f.deletedInFreeze,
        clientRefused: g.reduce((s, x) => s + x.count, 0),
        clientObservedMs: g.length
          ? Math.max(...g.map((x) => x.last)) - Math.min(...g.map((x) => x.first))
          : null,
      };
    }),
    refusalGroups: groups.map((g) => ({
      at: new Date(g.first).toISOString(),
      spanMs: g.last - g.first,
      count: g.count,
    })),
    writeGapMs:
      writers.firstTargetAckAt && writers.lastSourceAckAt
        ? writers.firstTargetAckAt - writers.lastSourceAckAt
        : null,
    stderrTail: ok ? undefined : m.stderrTail,
  };
  log(
    `${o.label}: ${ok ? 'cut over' : `FAILED (exit ${m.code})`} in ${r.wallSeconds} s; writers ${r.writers.achievedAckedPerSecond}/s acked; true lag ${JSON.stringify(r.trueLag.all)} lost ${r.trueLag.lost}; freezes ${JSON.stringify(r.freezes.map((f: Json) => [f.durationMs, f.switched, f.clientRefused]))}; RSS ${r.peakRssMb} MB; other cores ${r.otherCores}`,
  );
  if (!ok) log(`${o.label}: stderr tail:\n${m.stderrTail}`);
  for (const ix of [source, target]) if (await es.indexExists(ix)) await es.deleteIndex(ix);
  if (!args.keepData) await rm(work, { recursive: true, force: true });
  return r;
}

// ---- markdown ------------------------------------------------------------------------------------------

function markdown(res: Json, args: Args): string {
  const out: string[] = [];
  const p = (s = '') => out.push(s);
  const n = num;
  const ms = (x: unknown) => (typeof x === 'number' ? `${n(x)} ms` : '-');
  const table = (head: string[], rows: unknown[][]) => markdownTable(out, head, rows);
  /** a row of n / p50 / p99 / max for one distribution */
  const stat90 = (label: string, d: Json) => [label, d.n, ms(d.p50), ms(d.p90), ms(d.p99), ms(d.max)];
  const stat = (label: string, d: Json, f: (x: unknown) => string = ms) => [
    label,
    d.n,
    f(d.p50),
    f(d.p99),
    f(d.max),
  ];
  const mc = res.machine;
  p(`## Live capture: catch-up lag and write freeze (\`bench/live.ts\`, ${res.date.slice(0, 10)})`);
  p();
  p(
    `- Machine: ${mc.nproc} vCPU ${mc.cpuModel}, ${mc.memoryGiB} GiB, Node ${mc.node}; **client (cutover CLI), writers and server share the ${mc.nproc} cores**. ${res.server.distribution} ${res.server.version}, single node, heap ${args.heapMb} MB, ${args.shards} shards, 0 replicas.`,
  );
  p(
    `- CLI: a build of \`${mc.gitHead}\`${mc.srcUncommitted.length ? ` with uncommitted changes in ${mc.srcUncommitted.length} src file(s)` : ' (src clean)'}. ${res.date} to ${res.finished ?? '?'}; load average at start ${mc.loadAverageAtStart.join(' / ')}.`,
  );
  p(`- Command: \`${res.command}\``);
  p(
    `- Writers: \`_bulk\` of ${args.batch} ops through the write alias on a fixed schedule (no retries; at most ${MAX_IN_FLIGHT} requests in flight), mix ${Object.entries(
      args.mix,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ' / ',
      )} (half the index ops create new ids). Spec: \`capture.strategy: seqno\`, \`tailIntervalMs: ${args.tailIntervalMs}\`, \`maxLagSeconds: ${args.maxLagSeconds}\`, \`freezeBudgetMs: ${args.freezeBudgetMs}\`, \`copy.sampleSize: 20\`, other copy settings default.`,
  );
  p(
    `- "other cores": average cores used by processes other than the server, the CLI and the bench during a run (other sessions' test servers on this shared machine); ≥ 0.3 means the figures are disturbed.`,
  );
  p();
  const lag = res.lag;
  if (lag) {
    const t = lag.trueLag;
    p(`### Catch-up lag at ${n(lag.targetRate)} writes/s during a ${n(lag.docs)}-document backfill`);
    p();
    p(
      `verify.mode ${lag.verify}; ${lag.ok ? 'cut over' : `**run failed (exit ${lag.exitCode})**`} after ${n(lag.wallSeconds, 1)} s (steps: ${Object.entries(
        lag.steps,
      )
        .map(([k, v]) => `${k} ${v} s`)
        .join(
          ', ',
        )}); peak RSS of the cutover process ${n(lag.peakRssMb)} MB (${lag.rssSource}); other cores ${n(lag.otherCores, 2)}.`,
    );
    p();
    p(
      `Writers: ${n(lag.writers.achievedAckedPerSecond)} writes/s acknowledged (${n(lag.writers.achievedSentPerSecond)}/s sent, target ${n(lag.targetRate)}; ${n(lag.writers.skippedTicks)} of ${n(lag.writers.ticks)} ticks skipped with ${MAX_IN_FLIGHT} requests in flight), bulk latency p50 ${ms(lag.writers.bulkLatencyMs.p50)} / p99 ${ms(lag.writers.bulkLatencyMs.p99)}; refused by the freeze: ${n(lag.writers.refused)}; other failures: ${JSON.stringify(lag.writers.failedByType)}.`,
    );
    p();
    table(
      ['lag (ack → visible on the target)', 'samples', 'p50', 'p90', 'p99', 'max'],
      [
        stat90('TRUE lag, all sampled writes', t.all),
        stat90('TRUE lag, index + update', t.indexAndUpdate),
        stat90('TRUE lag, deletes', t.deletes),
        ...Object.entries(t.byPhase).map(([k, v]) => stat90(`TRUE lag, acknowledged during step ${k}`, v)),
        // Lag as the engine measures it: from the previous round's checkpoint read to the end of this round.
        stat90("engine's per-round lag (capture.json `lags`)", lag.engine.roundLagMs),
      ],
    );
    p(
      `Sampled: ${n(t.sampled)} writes (${t.sampleRate * 100}% once capture.json existed), ${n(t.acknowledgedBySource)} acknowledged by the source (watched), ${n(t.acknowledgedByTarget)} by the target after the switch (not watched). **${lag.ok ? 'Never showed up on the target' : 'Not on the target when the run stopped (no switch, so not a loss)'}: ${n(t.lost)}**; first seen more than two polls after the switch's freeze ended: ${t.seenAfterSwitch ?? '-'}. Polled with \`_mget\` every ${t.pollMs} ms; a lag includes up to one poll period and the \`_mget\` round trip.`,
    );
    p();
    if (lag.freezes.length)
      table(
        [
          'freeze attempt',
          'durationMs',
          'switched',
          'reason',
          'applied in freeze',
          'refused writes',
          'client-observed',
        ],
        lag.freezes.map((f: Json) => [
          f.attempt,
          f.durationMs,
          f.switched,
          f.reason ?? '',
          f.appliedInFreeze,
          f.clientRefused,
          ms(f.clientObservedMs),
        ]),
      );
  }
  const fz = res.freeze;
  if (fz?.runs?.length) {
    const s = fz.summary;
    p(
      `### Write freeze over ${fz.runs.length} cutovers of ${n(args.freezeDocs)} documents at ${n(args.freezeRate)} writes/s`,
    );
    p();
    p(
      `verify.mode ${args.freezeVerify}; ${s.ok} of ${fz.runs.length} runs cut over. Per run: peak RSS max ${n(s.peakRssMbMax)} MB; writers acknowledged ${n(s.ackedPerSecond.p50)} writes/s (p50 over runs); other cores p50 ${n(s.otherCores.p50, 2)}, max ${n(s.otherCores.max, 2)}.`,
    );
    p();
    table(
      ['figure', 'n', 'p50', 'p99', 'max'],
      [
        stat('switched freeze durationMs (capture.json)', s.switchedMs),
        stat('every freeze, switched or not (durationMs)', s.allFreezesMs),
        stat('client-observed switched freeze (first → last refusal)', s.clientObservedMs),
        stat('refused writes per cutover (all attempts)', s.refusedPerRun, (x) => n(x)),
        stat('per-run p99 of the TRUE lag of sampled writes', s.trueLagMs),
      ],
    );
    p(
      `Failed freeze attempts (lifted without switching): ${s.failedAttempts}${s.failedReasons.length ? ` (${[...new Set(s.failedReasons.map((x: string) => x.replace(/\d+ delete/, 'N delete')))].join('; ')})` : ''}. Sampled writes never seen on the target (runs that cut over): ${s.lost}.`,
    );
    p();
    table(
      [
        'run',
        'ok',
        'wall s',
        'freezes (ms, switched)',
        'refused',
        'client-observed',
        'acked/s',
        'other cores',
      ],
      fz.runs.map((r: Json) => [
        r.label,
        r.ok,
        n(r.wallSeconds, 1),
        r.freezes.map((f: Json) => `${f.durationMs}${f.switched ? '' : '✗'}`).join(', '),
        r.writers.refused,
        ms(r.freezes.find((f: Json) => f.switched)?.clientObservedMs),
        n(r.writers.achievedAckedPerSecond),
        n(r.otherCores, 2),
      ]),
    );
  }
  p('### Goals');
  p();
  for (const g of res.goals ?? []) p(`- ${g}`);
  p();
  return out.join('\n');
}

function goals(res: Json, args: Args): string[] {
  const out: string[] = [];
  const lag = res.lag;
  if (lag) {
    const p99 = lag.trueLag.all.p99;
    const p99iu = lag.trueLag.indexAndUpdate.p99;
    out.push(
      `catch-up lag ≤ 2 s p99 at ${lag.targetRate} writes/s (achieved ${lag.writers.achievedAckedPerSecond}/s): ${
        p99 === null
          ? 'not measured'
          : p99 <= 2000
            ? `**met** (TRUE p99 ${p99} ms)`
            : `**not met** (TRUE p99 ${p99} ms`
      }${p99 !== null && p99 > 2000 ? `; index + update only: ${p99iu} ms)` : ''}; engine round p99 ${lag.engine.roundLagMs.p99} ms; ${lag.ok ? `lost sampled writes ${lag.trueLag.lost}` : `**the run did not cut over (exit ${lag.exitCode})**`}.`,
    );
  }
  const fz = res.freeze;
  if (fz?.runs?.length) {
    const s = fz.summary;
    const v = s.allFreezesMs.p99;
    const met = v !== null && v <= args.freezeBudgetMs && s.ok === fz.runs.length;
    out.push(
      `freeze ≤ ${args.freezeBudgetMs} ms p99 over ${fz.runs.length} cutovers at ${args.freezeRate} writes/s: ${
        v === null ? 'not measured' : met ? '**met**' : '**not met**'
      } (p99 over all ${s.allFreezesMs.n} freezes ${v} ms, over the ${s.switchedMs.n} switched ones ${s.switchedMs.p99} ms; client-observed p99 ${s.clientObservedMs.p99} ms; ${s.failedAttempts} failed attempt(s); ${fz.runs.length - s.ok} run(s) that never switched).`,
    );
  }
  return out;
}

function freezeSummary(runs: Json[]): Json {
  const switched = runs.flatMap((r) => r.freezes.filter((f: Json) => f.switched));
  const failed = runs.flatMap((r) => r.freezes.filter((f: Json) => !f.switched));
  return {
    ok: runs.filter((r) => r.ok).length,
    switchedMs: dist(switched.map((f: Json) => f.durationMs)),
    /** every freeze the writers went through, switched or lifted without switching */
    allFreezesMs: dist(runs.flatMap((r) => r.freezes.map((f: Json) => f.durationMs))),
    clientObservedMs: dist(
      switched.flatMap((f: Json) => (f.clientObservedMs === null ? [] : [f.clientObservedMs])),
    ),
    refusedPerRun: dist(runs.map((r) => r.writers.refused)),
    failedAttempts: failed.length,
    failedReasons: failed.map((f: Json) => f.reason),
    lost: runs.filter((r) => r.ok).reduce((s, r) => s + r.trueLag.lost, 0),
    trueLagMs: dist(runs.flatMap((r) => (r.trueLag.all.n ? [r.trueLag.all.p99] : []))),
    ackedPerSecond: dist(runs.map((r) => r.writers.achievedAckedPerSecond)),
    otherCores: dist(runs.flatMap((r) => (r.otherCores === null ? [] : [r.otherCores]))),
    peakRssMbMax: Math.max(0, ...runs.map((r) => r.peakRssMb ?? 0)),
  };
}

// ---- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.report) {
    // The markdown (and goals) of an earlier results file, with that run's arguments.
    const res: Json = JSON.parse(readFileSync(args.report, 'utf8'));
    const runArgs: Args = { ...res.args, parts: new Set(res.args.parts) };
    if (res.freeze?.runs?.length) res.freeze.summary = freezeSummary(res.freeze.runs);
    res.goals = goals(res, runArgs);
    const md = markdown(res, runArgs);
    await writeFile(args.md, `${md}\n`);
    process.stdout.write(`${md}\n`);
    return;
  }
  if (!existsSync(args.cli))
    throw new Error(`${args.cli} is missing: build first (npx tsc -p .) or pass --cli`);
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const res: Json = {
    benchmark: 'live',
    date: new Date().toISOString(),
    command: `node --import tsx bench/live.ts ${process.argv.slice(2).join(' ')}`.trim(),
    args: { ...args, parts: [...args.parts] },
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
  const save = () => writeJson(args.out, res);
  const sets: DataSet[] = [];
  log(`starting ${args.kind} (heap ${args.heapMb} MB)...`);
  const server = await startLocalCluster({ kind: args.kind, heapMb: args.heapMb });
  const es = new Cluster({ url: server.url, requestTimeoutMs: 600_000, connections: 32 });
  res.server = { kind: args.kind, distribution: server.distribution, version: server.version };
  log(`${server.distribution} ${server.version} at ${server.url} (pid ${server.pid})`);
  try {
    if (args.parts.has('lag')) {
      log(`generating ${args.docs} documents (or reusing them)...`);
      const set = await ensureDataSet(DATA, args.docs, CHUNK);
      sets.push(set);
      res.lag = await runLive(es, server, args.cli, args, {
        label: 'live-lag',
        set,
        rate: args.rate,
        verify: args.verify,
        sample: args.sample,
        warmupSeconds: 5,
      });
      await save();
    }
    if (args.parts.has('freeze')) {
      const set = await ensureDataSet(DATA, args.freezeDocs, CHUNK);
      sets.push(set);
      res.freeze = { runs: [] };
      for (let i = 1; i <= args.cutovers; i++) {
        res.freeze.runs.push(
          await runLive(es, server, args.cli, args, {
            label: `live-fz${i}`,
            set,
            rate: args.freezeRate,
            verify: args.freezeVerify,
            sample: args.sample,
            warmupSeconds: 2,
          }),
        );
        res.freeze.summary = freezeSummary(res.freeze.runs);
        await save();
      }
    }
  } finally {
    res.finished = new Date().toISOString();
    res.goals = goals(res, args);
    await save();
    await es.close().catch(() => undefined);
    log(`stopping ${args.kind}...`);
    await server.stop();
    if (!args.keepData) {
      for (const s of sets) await rm(s.dir, { recursive: true, force: true });
      await rm(path.join(DATA, 'work'), { recursive: true, force: true });
    }
  }
  const md = markdown(res, args);
  await mkdir(path.dirname(args.md), { recursive: true });
  await writeFile(args.md, `${md}\n`);
  process.stdout.write(`${md}\n`);
  log(`results in ${args.out} and ${args.md}`);
}

main().catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
