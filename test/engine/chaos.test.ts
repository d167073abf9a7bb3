/**
 * Chaos for seqno capture: eight concurrent application writers (index, partial update, delete, re-create of
 * overlapping ids, seeded and new; scripted updates on OpenSearch) write through the write alias during the whole
 * migration and a little after the switch, while
 *   - the server is SIGSTOPped for 30 s in the middle of the copy (the copy and the writers just wait), and
 *   - the cutover process is killed with SIGKILL at random moments and resumed with `run --take-over-lock`.
 * The target is then compared, document by document, with the writers' oracle (test/support/writers.ts): nothing
 * lost, stale, resurrected or extra.
 *
 * The point in time outlives the stop: copy.keepAlive stays at its default (5m), well above 30 s (and an expired
 * PIT would be reopened at the checkpoint anyway, see pit-expiry.test.ts).
 *
 * Moderate by default (it runs on every push); larger from bench through env vars:
 *   CUTOVER_CHAOS_DOCS (4000)        seeded documents
 *   CUTOVER_CHAOS_KILLS (3)          kill -9 of the cutover process, each followed by `run --take-over-lock`:
 *                                    the first soon after the server is back, the last in the switch step
 *   CUTOVER_CHAOS_STOP_MS (30000)    SIGSTOP of the server mid-copy (0: none)
 *   CUTOVER_CHAOS_WRITERS (8)        concurrent writers
 *   CUTOVER_CHAOS_RATE (5)           ops per second per writer
 *   CUTOVER_CHAOS_COPY_RATE (1000)   copy.maxDocsPerSecond (0: unthrottled; 200 per process with workers)
 *   CUTOVER_CHAOS_FREEZE_BUDGET_MS (5000) cutover.freezeBudgetMs
 *   CUTOVER_CHAOS_KILL_MAX_MS (8000) a resumed run is killed at a random moment up to this long after its start
 *   CUTOVER_CHAOS_AFTER_MS (1500)    writers go on this long after the switch
 *   CUTOVER_CHAOS_SEED               the writers' PRNG seed (default random; printed)
 *   CUTOVER_CHAOS_KINDS (es8,os3)    which servers
 *   CUTOVER_CHAOS_FAILPOINTS         the last kill by CUTOVER_FAILPOINTS instead (e.g. freeze.after-switch:1)
 *   CUTOVER_CHAOS_WORKERS (0 and 2)  copy.workers on the NATS server at CUTOVER_TEST_NATS (127.0.0.1:4222): this many
 *                                    `cutover worker` processes share the copy (the runner copies one slice at a
 *                                    time); the first is killed with kill -9 right after the server is back and a
 *                                    new one started. Unset: each kind runs without workers, then with 2
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from '../../src/capture/live.js';
import { type CliResult, startCli } from '../support/cli.js';
import { testCluster } from '../support/clusters.js';
import { readAll } from '../support/data.js';
import { bucketsOf, destroyBuckets, NATS } from '../support/nats.js';
import { aliasTargets, scenario, transformDoc } from '../support/scenario.js';
import {
  compare,
  type Doc,
  describeComparison,
  expectedState,
  type OpKind,
  type RefusedOp,
  sourcesOf,
  startWriters,
  type WriterReport,
  writerClusterOf,
} from '../support/writers.js';

function num(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: expected a non-negative number`);
  return n;
}

const DOCS = num('CUTOVER_CHAOS_DOCS', 4000);
const KILLS = num('CUTOVER_CHAOS_KILLS', 3);
const STOP_MS = num('CUTOVER_CHAOS_STOP_MS', 30_000);
const WRITERS = num('CUTOVER_CHAOS_WRITERS', 8);
const RATE = num('CUTOVER_CHAOS_RATE', 5);
/** With workers each process copies at this rate, and the runner sees progress every 2 s (its mirror of the bucket). */
const copyRate = (workers: number) => num('CUTOVER_CHAOS_COPY_RATE', workers ? 200 : 1000);
/** A generous budget, as in the other live-capture tests: the chaos test checks outcomes; timing is for bench/. */
const FREEZE_BUDGET_MS = num('CUTOVER_CHAOS_FREEZE_BUDGET_MS', 5000);
const KILL_MAX_MS = num('CUTOVER_CHAOS_KILL_MAX_MS', 8000);
const AFTER_MS = num('CUTOVER_CHAOS_AFTER_MS', 1500);
const SEED = process.env.CUTOVER_CHAOS_SEED ? num('CUTOVER_CHAOS_SEED', 0) : undefined;
/** the final run gets this long before the test gives up on it (and kills it) */
const FINAL_RUN_MS = num('CUTOVER_CHAOS_FINAL_RUN_MS', 240_000);
// Each kind runs twice by default: one process, then the runner with two workers sharing the copy.
const WORKER_MODES = process.env.CUTOVER_CHAOS_WORKERS ? [num('CUTOVER_CHAOS_WORKERS', 0)] : [0, 2];

interface FreezeRecord {
  attempt: number;
  startedAt: string;
  durationMs: number;
  switched: boolean;
  reason?: string;
}

interface Attempt {
  n: number;
  startedAt: number;
  ms: number;
  /** planned kill: ms after the start (after the server came back, for the run with the stop), or after a step began */
  killAt?: string;
  result: CliResult;
}

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

/** Copy progress from the slice checkpoints: documents handled and whether every slice is done. */
function copyProgress(stateDir: string): { handled: number; done: boolean; slices: number } {
  const dir = join(stateDir, 'checkpoints');
  if (!existsSync(dir)) return { handled: 0, done: false, slices: 0 };
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
      // written atomically, but read between directory listing and rename: next poll
      done = false;
    }
  }
  // A shared copy's slices reach the state directory as they move (the runner's mirror): count the plan's.
  let planned = 0;
  try {
    planned = (JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')).copyRanges ?? []).length;
  } catch {
    // not written yet
  }
  return { handled, done: done && slices > 0 && slices >= planned, slices };
}

/** Windows in which writers saw the write block: refusals closer than `gapMs` belong to one window. */
function blockWindows(refusals: RefusedOp[], gapMs = 500): Array<{ from: number; ms: number; n: number }> {
  const ats = refusals
    .filter((r) => r.reason === 'cluster_block_exception')
    .map((r) => r.at)
    .sort((a, b) => a - b);
  const out: Array<{ from: number; ms: number; n: number }> = [];
  for (const at of ats) {
    const last = out[out.length - 1];
    if (last && at - (last.from + last.ms) <= gapMs) {
      last.ms = at - last.from;
      last.n++;
    } else out.push({ from: at, ms: 0, n: 1 });
  }
  return out;
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

function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const line = stdout.trim().split('\n').pop();
  try {
    return line ? JSON.parse(line) : undefined;
  } catch {
    return undefined;
  }
}

const FAILPOINTS = process.env.CUTOVER_CHAOS_FAILPOINTS;
const KINDS = (process.env.CUTOVER_CHAOS_KINDS ?? 'es8,os3').split(',').map((k) => k.trim());

for (const WORKERS of WORKER_MODES)
  for (const kind of (['es8', 'os3'] as const).filter((k) => KINDS.includes(k))) {
    const COPY_RATE = copyRate(WORKERS);
    describe(`chaos on ${kind}${WORKERS ? ` with ${WORKERS} copy workers` : ''}: concurrent writers, kill -9 of cutover, SIGSTOP of the server`, () => {
      // The final run may take FINAL_RUN_MS; everything else (seeding, the stop, killed runs, checks) fits in 5 min more.
      const timeout = FINAL_RUN_MS + STOP_MS + 300_000;
      it('keeps every acknowledged write through kills and a stopped server', { timeout }, async (t) => {
        const started = Date.now();
        const timeline: string[] = [];
        const note = (m: string) => timeline.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${m}`);
        const server = testCluster(kind);
        const pid = server.pid;
        assert.ok(pid && pid > 0, `CUTOVER_TEST_${kind.toUpperCase()}_PID is not set`);
        let stopped = false;
        const resume = () => {
          if (!stopped) return;
          process.kill(pid, 'SIGCONT');
          stopped = false;
        };
        // Even if this process dies on an error the test runner does not catch, the server must not stay stopped.
        process.on('exit', resume);

        const bucket = WORKERS ? `cutover-chaos-${process.pid}-${kind}-${Date.now()}` : undefined;
        const s = await scenario(kind, DOCS, {
          capture: { strategy: 'seqno', tailIntervalMs: 200 },
          // Every shard at once, in pages of 500: the proof reads the same way, and under live writes each page waits
          // for the catch-up to settle the documents changed meanwhile, so fewer, parallel pages keep it short.
          copy: {
            batchDocs: 500,
            concurrency: WORKERS ? 1 : 3,
            maxDocsPerSecond: COPY_RATE,
            sampleSize: 200,
            ...(WORKERS
              ? {
                  workers: { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 },
                }
              : {}),
          },
          cutover: { freezeBudgetMs: FREEZE_BUDGET_MS },
        });
        const stateDir = join(s.dir, 'state', 'm1');
        const wc = writerClusterOf(server);
        t.after(async () => {
          await wc.close();
          await s.c.close();
        });
        // Seeded ids the writers may touch: one in eight, spread over the whole _seq_no range, plus every document
        // the transform drops (updates keep `drop: true`, a new index drops it). Routed ids are left out: the writers
        // send no routing, so writing one would create a second document with the same id on another shard.
        const seedIds = [...s.seeded]
          .filter(([id, d]) => !d.routing && (Number(id.slice(1)) % 8 === 3 || d.source.drop === true))
          .map(([id]) => id);
        const newIds = Math.max(100, Math.round(DOCS / 20));
        const w = startWriters({
          cluster: wc,
          alias: s.writeAlias,
          writers: WRITERS,
          ids: newIds,
          seedIds,
          ratePerWriter: RATE,
          scripted: kind === 'os3',
          seed: SEED,
        });
        note(`writers started (${WRITERS} x ${RATE}/s over ${newIds} new + ${seedIds.length} seeded ids)`);

        // copy.workers: processes that take slices of the shared copy beside the runner (they wait for its plan).
        const workers: Array<{ n: number; run: ReturnType<typeof startCli>; result?: CliResult }> = [];
        const startWorker = () => {
          const run = startCli(['--json', 'worker', s.specPath]);
          const wk = { n: workers.length + 1, run } as (typeof workers)[number];
          void run.done.then((r) => {
            wk.result = r;
            writeFileSync(join(s.dir, `worker-${wk.n}.log`), `${r.stderr}\n--- stdout\n${r.stdout}`);
            note(`worker ${wk.n} ended: ${r.signal ?? `exit ${r.code}`}`);
          });
          workers.push(wk);
          note(`worker ${wk.n} started`);
        };
        for (let i = 0; i < WORKERS; i++) startWorker();
        t.after(async () => {
          for (const wk of workers) if (wk.run.child.exitCode === null) wk.run.child.kill('SIGKILL');
          // The copy's bucket and the runner's seat beside it.
          await destroyBuckets(bucket ? bucketsOf(bucket) : []);
        });

        const attempts: Attempt[] = [];
        let stoppedFor = 0;
        let stopAt: { handled: number; total: number } | undefined;
        let running: { kill(): void } | undefined;
        /**
         * One `run`, killed `kill.ms` after its start (or after it logged the start of step `kill.step`) unless it ended
         * first; without `kill`, the final run, killed only when it takes longer than FINAL_RUN_MS.
         */
        const attempt = async (
          n: number,
          opts: { kill?: { ms: number; step?: string; failpoints?: string }; stopServer?: boolean },
        ) => {
          const args = ['--json', 'run', s.specPath, ...(n > 1 ? ['--take-over-lock'] : [])];
          const run = startCli(
            args,
            opts.kill?.failpoints ? { CUTOVER_FAILPOINTS: opts.kill.failpoints } : {},
          );
          running = { kill: () => run.child.exitCode === null && run.child.kill('SIGKILL') };
          const a: Partial<Attempt> = { n, startedAt: Date.now() };
          note(`run ${n} started`);
          let exited = false;
          void run.done.then(() => {
            exited = true;
          });
          if (opts.stopServer) {
            // Mid-copy: a quarter of the documents handled, the copy not done.
            let p = copyProgress(stateDir);
            while (!exited && !p.done && p.handled < DOCS / 4) {
              await sleep(25);
              p = copyProgress(stateDir);
            }
            assert.ok(
              !exited && !p.done,
              `the copy ended before the server could be stopped: ${JSON.stringify(p)}`,
            );
            stopAt = { handled: p.handled, total: DOCS };
            process.kill(pid, 'SIGSTOP');
            stopped = true;
            const stopT = Date.now();
            note(`server SIGSTOP at ${p.handled}/${DOCS} documents copied`);
            try {
              await sleep(STOP_MS);
            } finally {
              resume();
            }
            stoppedFor = Date.now() - stopT;
            note(`server SIGCONT after ${stoppedFor} ms`);
            if (workers[0]) {
              // A worker dies with its slice half copied; a new one (or another process) continues it.
              workers[0].run.child.kill('SIGKILL');
              note('kill -9 worker 1');
              startWorker();
            }
          }
          let timer: NodeJS.Timeout | undefined;
          const arm = (ms: number, why: string) => {
            timer = setTimeout(() => {
              note(`kill -9 run ${n} (${why})`);
              run.child.kill('SIGKILL');
            }, ms);
          };
          const kill = opts.kill;
          if (!kill) arm(FINAL_RUN_MS, `final run still going after ${FINAL_RUN_MS} ms`);
          else if (!kill.step) {
            a.killAt = kill.failpoints ? `failpoint ${kill.failpoints}` : `${kill.ms}ms`;
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
        let report: WriterReport;
        try {
          // ---- chaos: the first run meets the stopped server mid-copy, then runs are killed at random moments
          for (let n = 1; n <= KILLS + 1; n++) {
            const last = n === KILLS + 1;
            const stopServer = n === 1 && STOP_MS > 0;
            // The run that met the stop is killed soon after the server is back (early in catch-up); the last kill lands in the switch
            // (catch-up before the freeze, inside it, or right after the alias swap); the others at any moment.
            // CUTOVER_CHAOS_FAILPOINTS replaces the timer of the last kill (a moment random kills rarely hit).
            const kill = last
              ? undefined
              : n === KILLS && FAILPOINTS
                ? { ms: FINAL_RUN_MS, failpoints: FAILPOINTS }
                : stopServer
                  ? // Killed in the steps after the copy the stop interrupted: a timer from the resume raced the
                    // rest of a small run (4,000 docs finish within ~2.6 s of SIGCONT) and sometimes lost.
                    { ms: rand(0, 300), step: 'catch-up' }
                  : n === KILLS && KILLS >= 2
                    ? { ms: rand(0, 1500), step: 'switch-aliases' }
                    : { ms: rand(300, KILL_MAX_MS) };
            const r = await attempt(n, { stopServer, kill });
            if (r.signal === 'SIGKILL' && !last) continue;
            final = r;
            break;
          }
          // A little more writing: these writes go to the new index directly.
          if (final?.code === 0) await sleep(AFTER_MS);
        } finally {
          resume();
          process.off('exit', resume);
          running?.kill();
          report = await w.stop();
          note('writers stopped');
        }
        for (const wk of workers) await wk.run.done;
        const kills = attempts.filter((a) => a.result.signal === 'SIGKILL').length;
        const finalEnd = attempts[attempts.length - 1]!.startedAt + attempts[attempts.length - 1]!.ms;
        const transform = (doc: Doc, ctx: { id: string; index: string | null }) =>
          ctx.index === s.target ? doc : transformDoc(doc, ctx.id);

        if (final?.code !== 0) {
          // Evidence for the report: with the writers stopped, does one more run switch, and is the target then right?
          const again = await attempt(attempts.length + 1, {});
          let after = '';
          if (again.code === 0) {
            const c = compare(
              expectedState(report, [s.source, s.target]),
              sourcesOf(await readAll(s.c, s.target)),
              {
                seeded: sourcesOf(s.seeded),
                transform,
              },
            );
            after = `; oracle after it: ${describeComparison(c)}`;
          }
          assert.fail(
            `the final run under live writes did not cut over: ${final?.signal ?? `exit ${final?.code}`}\n` +
              `${final?.stderr.slice(-3000)}\n` +
              `with the writers stopped, one more run: ${again.signal ?? `exit ${again.code}`}${after}\n` +
              `steps: ${attempts.map((a) => `run ${a.n}: ${stepTimes(a)}`).join(' | ')}\n` +
              `timeline:\n${timeline.join('\n')}\nstate dir: ${stateDir}`,
          );
        }

        // ---- what the engine says
        const capture = JSON.parse(readFileSync(join(stateDir, 'capture.json'), 'utf8')) as {
          freezes: FreezeRecord[];
          lags: number[];
          rounds: number;
          applied: number;
          deleted: number;
          conflicts: number;
        };
        const migration = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
        const audit = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { event: string });
        const runReport = lastJsonLine(final.stdout);
        const proofPath = join(stateDir, 'proof.json');
        const proof = existsSync(proofPath)
          ? (JSON.parse(readFileSync(proofPath, 'utf8')) as {
              durationSeconds: number;
              resolvedOnRecheck: number;
            })
          : undefined;
        const overBudget = capture.freezes.filter((f) => f.durationMs > FREEZE_BUDGET_MS).length;

        // ---- the oracle
        const expected = expectedState(report, [s.source, s.target]);
        const actual = sourcesOf(await readAll(s.c, s.target));
        const cmp = compare(expected, actual, { seeded: sourcesOf(s.seeded), transform });

        const windows = blockWindows(report.refusals);
        const lags = capture.lags;
        const summary =
          `chaos ${kind}: ${DOCS} docs, ${Math.round((Date.now() - started) / 1000)} s | ` +
          `writes acked ${report.acked} ${JSON.stringify(report.ackedByKind)} ` +
          `(old ${report.ackedByIndex[s.source] ?? 0}, new ${report.ackedByIndex[s.target] ?? 0}), ` +
          `refused ${JSON.stringify(report.refusedByReason)}, ambiguous ${report.ambiguous} | ` +
          `kills ${kills}/${KILLS} at ${attempts
            .filter((a) => a.killAt !== undefined)
            .map((a) => `${a.killAt}${a.result.signal === 'SIGKILL' ? '' : '(ended first)'}`)
            .join(',')}; runs ${attempts.map((a) => `${(a.ms / 1000).toFixed(1)}s`).join(',')} | ` +
          `server stopped ${stoppedFor} ms at ${stopAt?.handled ?? '-'}/${DOCS} copied | ` +
          `proof ${proof ? `${proof.durationSeconds.toFixed(1)} s, ${proof.resolvedOnRecheck} resolved on re-read` : '-'} | ` +
          `freezes (budget ${FREEZE_BUDGET_MS} ms, ${overBudget} over) ${capture.freezes.map((f) => `${f.durationMs}ms${f.switched ? ' switched' : ` lifted (${f.reason})`}`).join('; ')} | ` +
          `block windows seen by writers ${windows.map((x) => `${x.ms}ms/${x.n}`).join(',') || 'none'} | ` +
          `catch-up ${capture.rounds} rounds, applied ${capture.applied}, deleted ${capture.deleted}, ` +
          `lag p50 ${percentile(lags, 50)} p99 ${percentile(lags, 99)} max ${lags.length ? Math.max(...lags) : 0} ms | ` +
          `${describeComparison(cmp)} | seed ${report.seed}`;
        console.log(summary);
        t.diagnostic(summary);
        const steps = attempts.map((a) => `run ${a.n}: ${stepTimes(a)}`).join('\n');
        t.diagnostic(`steps (s after each run's start):\n${steps}`);
        const context = `\n${summary}\nsteps:\n${steps}\ntimeline:\n${timeline.join('\n')}\nstate dir: ${stateDir}`;

        // ---- assertions
        assert.deepEqual(
          { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
          { lost: [], stale: [], resurrected: [], extra: [] },
          `the target differs from the oracle: ${describeComparison(cmp)}${context}`,
        );
        // Writers wait up to 120 s for an answer, far longer than the stop: every write was answered.
        assert.deepEqual(
          report.ambiguousOps.slice(0, 5).map((o) => `${o.kind} ${o.id}: ${o.error}`),
          [],
          `ambiguous writes${context}`,
        );
        assert.equal(report.inFlight, 0);
        assert.deepEqual(
          report.refusals
            .filter((r) => r.reason === 'other')
            .slice(0, 5)
            .map((r) => `${r.kind} ${r.id}: ${r.status} ${r.type}: ${r.message}`),
          [],
          `writes refused for unexpected reasons${context}`,
        );
        // Nothing blocks the application once the run that switched has ended (a second of slack: a refusal
        // answered just before the lift may be handled here after the exit of the run).
        assert.equal(
          report.refusals.filter((r) => r.reason === 'cluster_block_exception' && r.at > finalEnd + 1000)
            .length,
          0,
          `writes refused by a write block after the final run ended${context}`,
        );
        assert.ok(KILLS === 0 || kills >= 1, `no run was killed${context}`);
        for (const wk of workers)
          assert.ok(
            wk.result?.signal === 'SIGKILL' || wk.result?.code === 0,
            `worker ${wk.n}: ${wk.result?.signal ?? `exit ${wk.result?.code}`} ${wk.result?.stderr.slice(-1500)}${context}`,
          );
        if (WORKERS)
          assert.ok(
            workers.some((wk) => /"docs":[1-9]/.test(wk.result?.stdout ?? '')),
            `no worker copied a document${context}`,
          );
        assert.ok(STOP_MS === 0 || stoppedFor >= STOP_MS, 'the server was stopped');
        // The writers really raced the migration, on both indices, with every kind of write.
        assert.ok(
          (report.ackedByIndex[s.source] ?? 0) > 0 && (report.ackedByIndex[s.target] ?? 0) > 0,
          context,
        );
        const kinds: OpKind[] = ['index', 'update', 'delete', 'recreate'];
        if (kind === 'os3') kinds.push('script');
        for (const k of kinds)
          assert.ok(report.ackedByKind[k] >= 10, `${k}: ${report.ackedByKind[k]} acknowledged${context}`);

        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
        assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
        const settings = Object.values(await s.c.getSettings(s.source))[0]?.settings ?? {};
        assert.notEqual(String(settings['index.blocks.write']), 'true', 'the source is not write-blocked');
        const switched = capture.freezes.filter((f) => f.switched);
        assert.equal(switched.length, 1, `one switched freeze: ${JSON.stringify(capture.freezes)}${context}`);
        assert.equal(migration.phase, 'cut-over');
        assert.equal(migration.frozen, undefined, 'no block is recorded as possibly left on');
        assert.ok(
          audit.some((e) => e.event === 'aliases-switched'),
          'the audit log records the switch',
        );
        assert.equal(runReport?.phase, 'cut-over', final.stdout.slice(-500));
      });
    });
  }
