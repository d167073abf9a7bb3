/**
 * Chaos through the write proxy (`capture.strategy: proxy`): concurrent application writers talk to `cutover
 * proxy` instead of the cluster (index, partial update, delete, re-create, auto-id creates; scripted updates and
 * one `_delete_by_query` on OpenSearch) during the whole migration and a little after the switch, one more writer
 * bypasses the proxy (straight to the cluster through the write alias, its own ids), while
 *   - the runner is killed with SIGKILL at random moments and resumed with `run --take-over-lock`, and
 *   - a proxy is killed with SIGKILL mid-copy and started again on the same port (the writers' URL stays valid;
 *     writes meanwhile fail with connection errors, which the harness counts as refused or ambiguous).
 * The target is then compared, id by id, with the writers' oracle (test/support/writers.ts): nothing lost, stale,
 * resurrected or extra. No proxied write may be refused by a write block (the switch holds them, it never refuses
 * them); the bypassing writer's writes may be (the fence of the switch), and are then not applied.
 *
 * Two journals: the file journal with one proxy, and a NATS JetStream stream shared by two proxies (the writers
 * split between them, the hold granted by both), each test on its own stream, deleted afterwards.
 *
 * Small by default (it runs on every push); larger through env vars:
 *   CUTOVER_PROXY_CHAOS_DOCS (2000)          seeded documents (the NATS test: three quarters)
 *   CUTOVER_PROXY_CHAOS_KILLS (2)            kill -9 of the runner, each followed by `run --take-over-lock`: the first
 *                                            at a random moment, the last in the switch step (NATS test: the last only)
 *   CUTOVER_PROXY_CHAOS_WRITERS (6)          concurrent writers through the proxies
 *   CUTOVER_PROXY_CHAOS_RATE (5)             ops per second per writer (the bypassing writer: 4)
 *   CUTOVER_PROXY_CHAOS_COPY_RATE (400)      copy.maxDocsPerSecond: the copy lasts long enough for the proxy kill
 *   CUTOVER_PROXY_CHAOS_HOLD_BUDGET_MS (5000) cutover.holdBudgetMs
 *   CUTOVER_PROXY_CHAOS_KILL_MAX_MS (4000)   a run is killed at a random moment up to this long after its start
 *                                            (inside the copy: 2000 docs at 400/s take 5 s; a run seen to end
 *                                            first at 5.8 s left the test without a kill)
 *   CUTOVER_PROXY_CHAOS_DOWN_MS (1500)       the killed proxy stays down a random time up to this long
 *   CUTOVER_PROXY_CHAOS_AFTER_MS (1500)      writers go on this long after the switch
 *   CUTOVER_PROXY_CHAOS_SEED                 the writers' PRNG seed (default random; printed)
 *   CUTOVER_PROXY_CHAOS_FINAL_RUN_MS (180000) the final run gets this long
 *   CUTOVER_PROXY_CHAOS_FAILPOINTS           the kill in the switch step by CUTOVER_FAILPOINTS instead of a timer
 *                                            (e.g. freeze.after-switch:1: right after the alias request of the fence)
 *
 * The Elasticsearch test servers are plain zips without the reindex module (no `_delete_by_query`) and without
 * painless (no scripted updates): both run on OpenSearch only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Cluster } from '../../src/cluster/client.js';
import { FileJournalReader } from '../../src/proxy/file-journal.js';
import type { JournalEntry, JournalReader } from '../../src/proxy/journal.js';
import { NatsJournalReader } from '../../src/proxy/nats-journal.js';
import { loadSpec } from '../../src/spec/load.js';
import { StateStore } from '../../src/store/state.js';
import { type CliResult, startCli } from '../support/cli.js';
import { EXPECTED, testCluster } from '../support/clusters.js';
import { readAll } from '../support/data.js';
import { type ProxyProcess, startProxy } from '../support/proxy.js';
import { aliasTargets, type Scenario, trackedScenarios, transformDoc } from '../support/scenario.js';
import {
  compare,
  type Doc,
  defaultDoc,
  describeComparison,
  expectedState,
  type OpKind,
  sourcesOf,
  startWriters,
  type WriterReport,
  type WritersHandle,
  writerClusterOf,
} from '../support/writers.js';

function num(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: expected a non-negative number`);
  return n;
}

const DOCS = num('CUTOVER_PROXY_CHAOS_DOCS', 2000);
const KILLS = num('CUTOVER_PROXY_CHAOS_KILLS', 2);
const WRITERS = Math.max(2, num('CUTOVER_PROXY_CHAOS_WRITERS', 6));
const RATE = num('CUTOVER_PROXY_CHAOS_RATE', 5);
const COPY_RATE = num('CUTOVER_PROXY_CHAOS_COPY_RATE', 400);
/** Generous, as in the other proxy tests: this suite checks outcomes; timing is for bench/. */
const HOLD_BUDGET_MS = num('CUTOVER_PROXY_CHAOS_HOLD_BUDGET_MS', 5000);
const KILL_MAX_MS = num('CUTOVER_PROXY_CHAOS_KILL_MAX_MS', 4000);
const DOWN_MS = num('CUTOVER_PROXY_CHAOS_DOWN_MS', 1500);
const AFTER_MS = num('CUTOVER_PROXY_CHAOS_AFTER_MS', 1500);
const SEED = process.env.CUTOVER_PROXY_CHAOS_SEED ? num('CUTOVER_PROXY_CHAOS_SEED', 0) : undefined;
const FINAL_RUN_MS = num('CUTOVER_PROXY_CHAOS_FINAL_RUN_MS', 180_000);
const FAILPOINTS = process.env.CUTOVER_PROXY_CHAOS_FAILPOINTS;
const NATS_URL = 'nats://127.0.0.1:4222';
/** ids only the `_delete_by_query` touches: created before the run, deleted by it mid-copy */
const BY_QUERY_IDS = Array.from({ length: 20 }, (_, i) => `dbq-${i}`);

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

interface SyncState {
  bypass: number;
  copied: number;
  deleted: number;
  demands: unknown[];
  holds: Array<{
    attempt: number;
    switched: boolean;
    proxies: number;
    heldRequests: number;
    releasedBy: string[];
    reason?: string;
    fence?: { fenced: boolean; freezeMs?: number };
    durationMs: number;
    settledByNextRun?: boolean;
  }>;
}

interface Attempt {
  n: number;
  startedAt: number;
  ms: number;
  killAt?: string;
  result: CliResult;
}

/** Documents handled by the copy so far, from the slice checkpoints, and whether every slice is done. */
function copyProgress(stateDir: string): { handled: number; done: boolean } {
  const dir = join(stateDir, 'checkpoints');
  if (!existsSync(dir)) return { handled: 0, done: false };
  let handled = 0;
  let done = true;
  let slices = 0;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    try {
      const cp = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      handled += cp.copied + cp.conflicts + cp.dropped + cp.deadLetters;
      done &&= !!cp.done;
      slices++;
    } catch {
      done = false; // read between the listing and the rename: next poll
    }
  }
  return { handled, done: done && slices > 0 };
}

/** When each step of a run started, seconds after the run started (from the CLI's JSON log lines). */
function stepTimes(a: Attempt): string {
  const out: string[] = [];
  for (const line of a.result.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as { event?: string; step?: string; time?: string };
      if (e.event === 'step' && e.step && e.time)
        out.push(`${e.step}@${((Date.parse(e.time) - a.startedAt) / 1000).toFixed(1)}`);
    } catch {
      // not a log line
    }
  }
  return `${out.join(' ')} end@${(a.ms / 1000).toFixed(1)} ${a.result.signal ?? `exit ${a.result.code}`}`;
}

/** The application's cluster URL pointed at a proxy: one answer per request, as patient as the harness's. */
function applicationVia(url: string): Cluster {
  return new Cluster({ url, requestTimeoutMs: 120_000, connections: 32 });
}

/** Every entry of the journal, from its start. */
async function journalEntries(reader: JournalReader): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  let pos = { seq: 0, offset: 0 } as Parameters<JournalReader['read']>[0];
  for (;;) {
    const b = await reader.read(pos, 5000);
    if (b.entries.length === 0) return out;
    out.push(...b.entries);
    pos = b.next;
  }
}

/** A port nobody listens on now (the proxy binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A proxy that can be killed with SIGKILL and started again on the same address. A fixed port from the first start
 * on, as an operator runs it: the port names the proxy, so the proxy started after a crash knows it is the next
 * life of the one that crashed.
 */
class RestartableProxy {
  private p!: ProxyProcess;
  /** the address the writers use */
  url = '';
  private listen = '';
  private outputs: string[] = [];
  kills = 0;

  constructor(
    private readonly specPath: string,
    readonly name: string,
  ) {}

  async start(): Promise<void> {
    this.listen ||= `127.0.0.1:${await freePort()}`;
    // The port the killed proxy held is free again at once, but be patient with a busy machine.
    for (let i = 0; ; i++) {
      try {
        this.p = await startProxy(this.specPath, this.listen);
        break;
      } catch (e) {
        if (i >= 20) throw e;
        this.outputs.push(`(start failed: ${(e as Error).message})`);
        await sleep(100);
      }
    }
    this.url ||= this.p.url;
    assert.equal(this.p.url, this.url, `${this.name} came back on another address`);
  }

  async kill(): Promise<void> {
    this.kills++;
    await this.p.kill();
    this.outputs.push(this.p.output());
  }

  async stop(): Promise<void> {
    if (this.p && this.p.child.exitCode === null && this.p.child.signalCode === null) await this.p.stop();
  }

  output(): string {
    return [...this.outputs, this.p?.output() ?? ''].join('\n--- restarted\n');
  }
}

interface Variant {
  journal: 'file' | 'nats';
  proxies: number;
  docs: number;
  kills: number;
}

const KINDS = (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k));

for (const kind of KINDS) {
  describe(`chaos through the write proxy on ${kind}`, () => {
    const t = trackedScenarios();
    afterEach(t.drop);
    const timeout = FINAL_RUN_MS + 240_000;

    it('file journal, one proxy: kill -9 of the runner and of the proxy, every write kept, none refused by a block', {
      timeout,
    }, async (tc) => {
      await chaos(tc, t, kind, { journal: 'file', proxies: 1, docs: DOCS, kills: KILLS });
    });

    it('NATS journal, two proxies on one stream: one killed -9 and restarted, the hold granted by both', {
      timeout,
    }, async (tc) => {
      await chaos(tc, t, kind, {
        journal: 'nats',
        proxies: 2,
        docs: Math.round((DOCS * 3) / 4),
        // Two runs killed, as with the file journal: one at a random moment, one in the switch step (which a
        // fast switch can finish before the kill lands; the first kill still makes this a run that was killed).
        kills: KILLS,
      });
    });
  });
}

async function chaos(
  tc: TestContext,
  scenarios: {
    scenario(...a: Parameters<ReturnType<typeof trackedScenarios>['scenario']>): Promise<Scenario>;
  },
  kind: (typeof KINDS)[number],
  v: Variant,
): Promise<void> {
  const started = Date.now();
  const timeline: string[] = [];
  const note = (m: string) => timeline.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${m}`);
  const stream = `cutover-chaos-${randomBytes(5).toString('hex')}`;
  const s = await scenarios.scenario(kind, v.docs, {
    capture: { strategy: 'proxy', tailIntervalMs: 200 },
    copy: { batchDocs: 250, concurrency: 3, maxDocsPerSecond: COPY_RATE, sampleSize: 200 },
    cutover: { holdBudgetMs: HOLD_BUDGET_MS },
    ...(v.journal === 'nats' ? { proxy: { journal: { kind: 'nats', servers: NATS_URL, stream } } } : {}),
  });
  const spec = loadSpec(s.specPath);
  const stateDir = spec.migrationDir;
  const server = testCluster(kind);
  const direct = writerClusterOf(server);
  tc.after(async () => {
    await direct.close();
    if (v.journal !== 'nats') return;
    const nc = await connect({ servers: NATS_URL });
    try {
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    } finally {
      await nc.close();
    }
  });

  // ---- the proxies, and what the application writes through them
  const proxies: RestartableProxy[] = [];
  const apps: Cluster[] = [];
  tc.after(async () => {
    for (const a of apps) await a.close();
    for (const p of proxies) await p.stop().catch(() => undefined);
  });
  for (let i = 0; i < v.proxies; i++) {
    const p = new RestartableProxy(s.specPath, `proxy ${i + 1}`);
    proxies.push(p);
    await p.start();
    apps.push(applicationVia(p.url));
  }
  note(`${v.proxies} proxies at ${proxies.map((p) => p.url).join(', ')} (${v.journal} journal)`);

  // The ids of the by-query: made through the proxy before the run, so the copy takes them, and searchable.
  const byQuery = kind === 'os3';
  if (byQuery) {
    for (const [i, id] of BY_QUERY_IDS.entries())
      await apps[0]!.request({
        method: 'PUT',
        path: `/${s.writeAlias}/_doc/${id}`,
        body: defaultDoc(id, -1 - i),
      });
    await apps[0]!.request({ method: 'POST', path: `/${s.writeAlias}/_refresh` });
  }

  // Seeded ids the writers may touch: one in eight, plus every document the transform drops. Routed ids are left
  // out: the writers send no routing (a write would make a second document with that id on another shard).
  const seedIds = [...s.seeded]
    .filter(([id, d]) => !d.routing && (Number(id.slice(1)) % 8 === 3 || d.source.drop === true))
    .map(([id]) => id);
  const newIds = Math.max(100, Math.round(v.docs / 20));
  const seed = SEED ?? Math.floor(Math.random() * 2 ** 31);
  // The writers split between the proxies, over the same ids: concurrent writes to one id cross proxies.
  const per = Math.ceil(WRITERS / v.proxies);
  const proxied: WritersHandle[] = apps.map((cluster, i) =>
    startWriters({
      cluster,
      alias: s.writeAlias,
      writers: per,
      ids: newIds,
      seedIds,
      ratePerWriter: RATE,
      scripted: kind === 'os3',
      mix: { autoid: 1 },
      seed: seed + i * 7919,
    }),
  );
  // The writer that bypasses the proxies: its own ids, straight to the cluster through the write alias.
  const bypassing = startWriters({
    cluster: direct,
    alias: s.writeAlias,
    writers: 1,
    ids: Array.from({ length: 40 }, (_, i) => `bypass-${i}`),
    ratePerWriter: 4,
    seed: seed + 1,
  });
  note(`writers started (${per * v.proxies} x ${RATE}/s through the proxies, 1 bypassing; seed ${seed})`);

  // ---- chaos beside the runs: the by-query, then a proxy killed and started again on its port, both mid-copy
  let byQueryDeleted: number | undefined;
  let proxyBack: Promise<void> = Promise.resolve();
  let chaosError: unknown;
  let stopChaos = false;
  const victim = proxies[proxies.length - 1]!;
  const waitForCopy = async (fraction: number) => {
    for (;;) {
      const p = copyProgress(stateDir);
      if (stopChaos || p.done || p.handled >= fraction * v.docs) return p;
      await sleep(25);
    }
  };
  const sideChaos = (async () => {
    if (byQuery) {
      const p = await waitForCopy(rand(10, 30) / 100);
      if (stopChaos) return;
      note(`_delete_by_query through the proxy at ${p.handled}/${v.docs} copied`);
      const r = await apps[0]!.request<{ deleted: number }>({
        method: 'POST',
        path: `/${s.writeAlias}/_delete_by_query`,
        query: { refresh: 'true' },
        body: { query: { ids: { values: BY_QUERY_IDS } } },
      });
      byQueryDeleted = r.body.deleted;
    }
    const p = await waitForCopy(rand(35, 70) / 100);
    if (stopChaos) return;
    let back!: () => void;
    proxyBack = new Promise<void>((r) => {
      back = r;
    });
    try {
      await victim.kill();
      note(`kill -9 ${victim.name} at ${p.handled}/${v.docs} copied${p.done ? ' (copy done)' : ''}`);
      await sleep(rand(100, DOWN_MS));
      await victim.start();
      note(`${victim.name} started again on ${victim.url}`);
    } finally {
      back();
    }
  })().catch((e) => {
    chaosError = e;
  });

  // ---- the runs: killed at random moments, then in the switch step, then the one that must finish
  const attempts: Attempt[] = [];
  let running: { kill(): void } | undefined;
  const attempt = async (n: number, kill?: { ms: number; step?: string; failpoints?: string }) => {
    // A run must not meet the switch while the killed proxy is still down (it refuses: no proxy to hold).
    await proxyBack;
    const run = startCli(
      ['--json', 'run', s.specPath, ...(n > 1 ? ['--take-over-lock'] : [])],
      kill?.failpoints ? { CUTOVER_FAILPOINTS: kill.failpoints } : {},
    );
    running = { kill: () => run.child.exitCode === null && run.child.kill('SIGKILL') };
    const a: Partial<Attempt> = { n, startedAt: Date.now() };
    note(`run ${n} started`);
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, why: string) => {
      timer = setTimeout(() => {
        note(`kill -9 run ${n} (${why})`);
        run.child.kill('SIGKILL');
      }, ms);
    };
    if (!kill) arm(FINAL_RUN_MS, `final run still going after ${FINAL_RUN_MS} ms`);
    else if (kill.failpoints) {
      a.killAt = `failpoint ${kill.failpoints}`;
      arm(FINAL_RUN_MS, `failpoint ${kill.failpoints} not reached after ${FINAL_RUN_MS} ms`);
    } else if (!kill.step) {
      a.killAt = `${kill.ms}ms`;
      arm(kill.ms, a.killAt);
    } else {
      const marker = `"step":"${kill.step}"`;
      let seen = '';
      const onData = (d: Buffer) => {
        seen = (seen + d).slice(-4096);
        if (!seen.includes(marker)) return;
        run.child.stderr!.off('data', onData);
        a.killAt = `${kill.step}+${kill.ms}ms`;
        note(`run ${n} reached ${kill.step}`);
        arm(kill.ms, a.killAt);
      };
      run.child.stderr!.on('data', onData);
    }
    const r = await run.done;
    clearTimeout(timer);
    running = undefined;
    attempts.push({ ...a, ms: Date.now() - a.startedAt!, result: r } as Attempt);
    writeFileSync(join(s.dir, `run-${n}.log`), `${r.stderr}\n--- stdout\n${r.stdout}`);
    note(`run ${n} ended: ${r.signal ?? `exit ${r.code}`}`);
    return r;
  };

  let final: CliResult | undefined;
  let reports: WriterReport[];
  let bypass: WriterReport;
  try {
    for (let n = 1; n <= v.kills + 1; n++) {
      const last = n === v.kills + 1;
      const kill = last
        ? undefined
        : n === v.kills
          ? FAILPOINTS
            ? { ms: 0, failpoints: FAILPOINTS }
            : // The switch step can end 0.6 s after it starts (a round, the hold, one alias request): a later kill misses it.
              { ms: rand(0, 500), step: 'switch-aliases' }
          : { ms: rand(1500, KILL_MAX_MS) };
      const r = await attempt(n, kill);
      if (r.signal === 'SIGKILL' && !last) continue;
      final = r;
      break;
    }
    // A little more writing: through the proxies, onto the new index.
    if (final?.code === 0) await sleep(AFTER_MS);
  } finally {
    running?.kill();
    stopChaos = true;
    await sideChaos;
    reports = await Promise.all(proxied.map((w) => w.stop()));
    bypass = await bypassing.stop();
    note('writers stopped');
    for (const p of proxies) await p.stop().catch(() => undefined);
    writeFileSync(join(s.dir, 'proxies.log'), proxies.map((p) => `== ${p.name}\n${p.output()}`).join('\n'));
  }
  const steps = attempts.map((a) => `run ${a.n}: ${stepTimes(a)}`).join('\n');
  const where = `\nsteps:\n${steps}\ntimeline:\n${timeline.join('\n')}\nstate dir: ${stateDir}`;
  if (chaosError) throw chaosError;
  assert.equal(final?.code, 0, `the final run did not cut over\n${final?.stderr.slice(-3000)}${where}`);

  // ---- the oracle: every writer's acknowledged writes, the bypassing one's included (disjoint ids)
  const all = [...reports, bypass];
  const expected = expectedState(
    {
      log: all.flatMap((r) => r.log),
      ambiguousOps: all.flatMap((r) => r.ambiguousOps),
      ambiguousCreates: all.flatMap((r) => r.ambiguousCreates),
    },
    [s.source, s.target],
  );
  const onTarget = sourcesOf(await readAll(s.c, s.target));
  const byQueryLeft = BY_QUERY_IDS.filter((id) => onTarget.delete(id));
  const transform = (doc: Doc, ctx: { id: string; index: string | null }) =>
    ctx.index === s.target ? doc : transformDoc(doc, ctx.id);
  const cmp = compare(expected, onTarget, { seeded: sourcesOf(s.seeded), transform });

  // ---- what the engine says
  const sync = JSON.parse(readFileSync(join(stateDir, 'journal-sync.json'), 'utf8')) as SyncState;
  const capture = JSON.parse(readFileSync(join(stateDir, 'capture.json'), 'utf8')) as {
    reconciles: number;
    freezes: Array<{ switched: boolean; durationMs: number }>;
  };
  const migration = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
  const audit = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; upTo?: number; why?: string });
  const reader =
    v.journal === 'nats'
      ? new NatsJournalReader(spec)
      : new FileJournalReader(new StateStore(stateDir).journalPath);
  const entries = await journalEntries(reader).finally(() => reader.close());
  const crashMarkers = entries.filter(
    (e) =>
      e.kind === 'reconcile' && /stopped without closing its journal|restarted after a crash/.test(e.why),
  );
  const reconciled = audit.filter((e) => e.event === 'proxy-reconciled');

  const sum = <K extends keyof WriterReport>(k: K) =>
    reports.reduce((n, r) => n + (r[k] as unknown as number), 0);
  const ackedByKind = Object.fromEntries(
    Object.keys(reports[0]!.ackedByKind).map((k) => [
      k,
      reports.reduce((n, r) => n + r.ackedByKind[k as OpKind], 0),
    ]),
  ) as Record<OpKind, number>;
  const refusals = reports.flatMap((r) => r.refusals);
  const refusedBy = (pred: (r: (typeof refusals)[number]) => boolean) => refusals.filter(pred).length;
  const ackedOn = (ix: string) => reports.reduce((n, r) => n + (r.ackedByIndex[ix] ?? 0), 0);
  const ambiguousAutoId = sum('ambiguousAutoId');
  const switched = sync.holds.filter((h) => h.switched);
  const summary =
    `proxy chaos ${kind} (${v.journal} journal, ${v.proxies} prox${v.proxies > 1 ? 'ies' : 'y'}): ${v.docs} docs, ` +
    `${Math.round((Date.now() - started) / 1000)} s | through the proxies: acked ${sum('acked')} ${JSON.stringify(ackedByKind)} ` +
    `(old ${ackedOn(s.source)}, new ${ackedOn(s.target)}), refused ${JSON.stringify(
      Object.fromEntries(
        [...new Set(refusals.map((r) => (r.reason === 'other' ? r.type : r.reason)))].map((k) => [
          k,
          refusedBy((r) => (r.reason === 'other' ? r.type : r.reason) === k),
        ]),
      ),
    )}, ambiguous ${sum('ambiguous')} of which auto-id creates ${ambiguousAutoId} (${cmp.ambiguousAutoId} landed) | ` +
    `bypassing: acked ${bypass.acked}, refused ${JSON.stringify(bypass.refusedByReason)} | ` +
    `by-query ${byQuery ? `deleted ${byQueryDeleted}/${BY_QUERY_IDS.length}` : '- (no reindex module)'} | ` +
    `runs ${attempts.map((a) => `${(a.ms / 1000).toFixed(1)}s${a.killAt ? `(kill ${a.killAt}${a.result.signal ? '' : ', ended first'})` : ''}`).join(',')} | ` +
    `proxy kills ${proxies.reduce((n, p) => n + p.kills, 0)}, crash markers ${crashMarkers.map((e) => e.seq).join(',') || 'none'}, ` +
    `reconciled up to ${reconciled.map((e) => e.upTo).join(',') || 'never'} (capture.reconciles ${capture.reconciles}) | ` +
    `journal ${entries.length} entries, sync copied ${sync.copied} deleted ${sync.deleted} bypass ${sync.bypass} | ` +
    `holds ${sync.holds.map((h) => `${h.durationMs}ms/${h.proxies}p${h.switched ? ` switched${h.fence?.fenced ? ' fenced' : ''}${h.settledByNextRun ? ' (recorded by the next run)' : ''}` : ` (${h.reason})`}`).join('; ')} | ` +
    `${describeComparison(cmp)}`;
  console.log(summary);
  tc.diagnostic(summary);
  const context = `\n${summary}${where}`;

  // ---- assertions
  assert.deepEqual(
    { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
    { lost: [], stale: [], resurrected: [], extra: [] },
    `the target differs from the oracle: ${describeComparison(cmp)}; ${ambiguousAutoId} auto-id create(s) went unanswered (whether they created a document cannot be known: a document with exactly one's content counts as it, ${cmp.ambiguousAutoId} did)${context}`,
  );
  // Only the proxy kill leaves writes unanswered: each writer through it had at most one request in flight.
  assert.ok(
    sum('ambiguous') <= per * victim.kills,
    `${sum('ambiguous')} unanswered writes (${ambiguousAutoId} of them auto-id creates), more than the ${per} writers through the killed proxy had in flight${context}`,
  );
  if (byQuery) {
    assert.equal(byQueryDeleted, BY_QUERY_IDS.length, `the by-query deleted its ids${context}`);
    assert.deepEqual(byQueryLeft, [], `ids the by-query deleted are on the target${context}`);
  }
  // The hold queues, it never refuses: no proxied write met a write block.
  assert.equal(
    refusedBy((r) => r.reason === 'cluster_block_exception'),
    0,
    `writes through the proxies refused by a write block${context}`,
  );
  // Connection refused while the killed proxy was down is expected (nothing was sent); nothing else.
  assert.deepEqual(
    refusals
      .filter((r) => r.reason === 'other' && r.type !== 'transport:ECONNREFUSED')
      .slice(0, 5)
      .map((r) => `${r.kind} ${r.id}: ${r.status} ${r.type}: ${r.message}`),
    [],
    `writes through the proxies refused for unexpected reasons${context}`,
  );
  assert.deepEqual(
    bypass.refusals
      .filter((r) => r.reason === 'other')
      .slice(0, 5)
      .map((r) => `${r.kind} ${r.id}: ${r.status} ${r.type}: ${r.message}`),
    [],
    `bypassing writes refused for unexpected reasons${context}`,
  );
  assert.deepEqual(bypass.ambiguousOps.slice(0, 3), [], `the bypassing writer got every answer${context}`);
  assert.equal(sum('inFlight') + bypass.inFlight, 0);
  // The writers really raced the migration, on both indices, with every kind of write.
  assert.ok(ackedOn(s.source) > 0 && ackedOn(s.target) > 0, `writes on both indices${context}`);
  assert.ok(
    (bypass.ackedByIndex[s.source] ?? 0) > 0,
    `the bypassing writer wrote to the old index${context}`,
  );
  const kinds: OpKind[] = ['index', 'update', 'delete', 'recreate', 'autoid'];
  if (kind === 'os3') kinds.push('script');
  for (const k of kinds) assert.ok(ackedByKind[k] >= 5, `${k}: ${ackedByKind[k]} acknowledged${context}`);

  // Chaos happened: the runner was killed, a proxy was killed and came back.
  assert.ok(
    v.kills === 0 || attempts.some((a) => a.result.signal === 'SIGKILL'),
    `no run was killed${context}`,
  );
  assert.equal(victim.kills, 1, `the proxy was killed once${context}`);

  // The switch: aliases on the target, under one hold every proxy granted, fenced for the bypassing writer.
  assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
  assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
  assert.equal(switched.length, 1, `one switched hold: ${JSON.stringify(sync.holds)}${context}`);
  assert.equal(switched[0]!.proxies, v.proxies, `the switched hold was granted by every proxy${context}`);
  assert.equal(switched[0]!.fence?.fenced, true, `the bypassing writer was fenced at the switch${context}`);
  assert.ok(sync.bypass > 0, `journal-sync.json counts the bypassing writes${context}`);
  assert.equal(migration.phase, 'cut-over');
  assert.equal(migration.frozen, undefined, 'no block is recorded as possibly left on');
  const settings = Object.values(await s.c.getSettings(s.source))[0]?.settings ?? {};
  assert.notEqual(String(settings['index.blocks.write']), 'true', 'the source is not write-blocked');

  // The restarted proxy said its predecessor crashed, and the runner reconciled every id past that marker.
  assert.ok(crashMarkers.length >= 1, `no reconcile marker from the restarted proxy${context}`);
  const marker = crashMarkers[crashMarkers.length - 1]!.seq;
  assert.ok(
    reconciled.some((e) => (e.upTo ?? -1) >= marker) && capture.reconciles > 0,
    `the runner did not reconcile past the crash marker at ${marker}: ${JSON.stringify(reconciled)}${context}`,
  );
  assert.deepEqual(sync.demands, [], `reconcile demands left unsatisfied${context}`);
}
