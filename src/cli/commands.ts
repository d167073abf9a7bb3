/** Each subcommand: parse flags into spec fields, call the library, print, and let main.ts map errors to exit codes. */
import { resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { type Command, Option } from 'commander';
import {
  control,
  createReporter,
  describeSourceWrites,
  EXIT,
  formatDoctor,
  formatFindings,
  formatProof,
  formatReport,
  jsonSchema,
  LockError,
  loadSpec,
  Migration,
  openProxy,
  PreflightError,
  PreflightRefused,
  type RunResult,
  runWorker,
  tuneProxyHeap,
  watchMigration,
  watchProxy,
} from '../index.js';

type Raw = Record<string, unknown>;

/** Every tuning flag is a spec field; the flag wins over the file. */
const SPEC_FLAGS: Array<{ flag: string; path: string[]; parse: (v: string) => unknown; help: string }> = [
  { flag: '--batch-docs <n>', path: ['copy', 'batchDocs'], parse: Number, help: 'copy.batchDocs' },
  { flag: '--batch-bytes <n>', path: ['copy', 'batchBytes'], parse: Number, help: 'copy.batchBytes' },
  { flag: '--concurrency <n>', path: ['copy', 'concurrency'], parse: Number, help: 'copy.concurrency' },
  {
    flag: '--max-docs-per-second <n>',
    path: ['copy', 'maxDocsPerSecond'],
    parse: Number,
    help: 'copy.maxDocsPerSecond',
  },
  { flag: '--keep-alive <d>', path: ['copy', 'keepAlive'], parse: String, help: 'copy.keepAlive' },
  {
    flag: '--max-dead-letters <n>',
    path: ['copy', 'maxDeadLetters'],
    parse: Number,
    help: 'copy.maxDeadLetters',
  },
  { flag: '--sample-size <n>', path: ['copy', 'sampleSize'], parse: Number, help: 'copy.sampleSize' },
  {
    flag: '--versioning <mode>',
    path: ['copy', 'versioning'],
    parse: String,
    help: 'copy.versioning (seqno | source-version)',
  },
  {
    flag: '--transform <file>',
    path: ['transform'],
    // Paths typed on the command line mean the operator's working directory, not the spec's.
    parse: (v) => resolvePath(v),
    help: 'transform',
  },
  {
    flag: '--cutover-mode <mode>',
    path: ['cutover', 'mode'],
    parse: String,
    help: 'cutover.mode (auto | manual)',
  },
  {
    flag: '--retention-hours <h>',
    path: ['cutover', 'retentionHours'],
    parse: Number,
    help: 'cutover.retentionHours',
  },
  {
    flag: '--capture <strategy>',
    path: ['capture', 'strategy'],
    parse: String,
    help: 'capture.strategy (none | seqno | timestamp | append-only)',
  },
  {
    flag: '--max-lag-seconds <s>',
    path: ['capture', 'maxLagSeconds'],
    parse: Number,
    help: 'capture.maxLagSeconds',
  },
  {
    flag: '--freeze-budget-ms <ms>',
    path: ['cutover', 'freezeBudgetMs'],
    parse: Number,
    help: 'cutover.freezeBudgetMs',
  },
  {
    flag: '--postpone-cutover-flag-file <path>',
    path: ['cutover', 'postponeFlagFile'],
    parse: (v) => resolvePath(v),
    help: 'cutover.postponeFlagFile: while it exists, keep catching up and do not switch',
  },
  {
    flag: '--revert-window-minutes <m>',
    path: ['cutover', 'revertWindowMinutes'],
    parse: Number,
    help: 'cutover.revertWindowMinutes',
  },
  { flag: '--state-dir <dir>', path: ['stateDir'], parse: (v) => resolvePath(v), help: 'stateDir' },
];

function camel(flag: string): string {
  return flag
    .replace(/^--/, '')
    .split(' ')[0]!
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function applyFlags(raw: Raw, opts: Record<string, unknown>): void {
  for (const f of SPEC_FLAGS) {
    const v = opts[camel(f.flag)];
    if (v === undefined) continue;
    let node = raw;
    for (const k of f.path.slice(0, -1)) {
      node[k] ??= {};
      node = node[k] as Raw;
    }
    node[f.path[f.path.length - 1]!] = f.parse(String(v));
  }
  if (opts.mode !== undefined || opts.sampleRate !== undefined) {
    raw.verify ??= {};
    if (opts.mode !== undefined) (raw.verify as Raw).mode = String(opts.mode);
    if (opts.sampleRate !== undefined) (raw.verify as Raw).sampleRate = Number(opts.sampleRate);
  }
  if (opts.reuseTarget) {
    raw.target ??= {};
    (raw.target as Raw).reuse = true;
  }
}

function withSpecFlags(cmd: Command): Command {
  for (const f of SPEC_FLAGS) cmd.option(f.flag, `overrides ${f.help}`);
  return cmd
    .option('--reuse-target', 'overrides target.reuse: accept an existing target with matching mappings')
    .option(
      '--force',
      'go on despite preflight findings that are not about safety (never: missing privileges, data that cannot be copied)',
    );
}

/** `--state-dir` on every command that reads a migration: a run started with it can be followed and undone. */
function withStateDir(cmd: Command): Command {
  return cmd.option('--state-dir <dir>', 'overrides stateDir (where the migration state lives)');
}

function open(specPath: string, opts: Record<string, unknown>): Migration {
  return new Migration(loadSpec(specPath, (raw) => applyFlags(raw, opts)));
}

async function withMigration<T>(
  specPath: string,
  opts: Record<string, unknown>,
  fn: (m: Migration) => Promise<T>,
): Promise<T> {
  const m = open(specPath, opts);
  try {
    return await fn(m);
  } finally {
    await m.close();
  }
}

function globalJson(cmd: Command): boolean {
  return !!cmd.optsWithGlobals().json;
}

/** y/N on the terminal; anything but y or yes is no. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * The first SIGINT/SIGTERM stops the run at the next safe point (checkpoints hold only acknowledged work) and
 * exits 130; a second one exits at once.
 */
function abortOnSignals(): AbortController {
  const ac = new AbortController();
  const stop = (sig: string) => {
    if (ac.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write(
      `\ncutover: ${sig}: stopping now (requests in flight are abandoned; checkpoints hold only acknowledged work), \`run\` resumes; press again to exit at once\n`,
    );
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return ac;
}

/** Run or cut over, then print the report: also after a failure, but not when another process holds the lock. */
async function runAndReport(
  m: Migration,
  cmd: Command,
  opts: Record<string, unknown>,
  go: (o: Parameters<Migration['run']>[0]) => Promise<RunResult>,
): Promise<void> {
  const json = globalJson(cmd);
  const progress = createReporter({ tty: !!process.stderr.isTTY && !json });
  const ac = abortOnSignals();
  const watch = await watchMigration(m, cmd.name() === 'cutover' ? 'cutover' : 'run', progress, {
    listen: opts.listen as string | undefined,
    throttleFlag: opts.throttleFlagFile ? resolvePath(String(opts.throttleFlagFile)) : undefined,
    panicFlag: opts.panicFlagFile ? resolvePath(String(opts.panicFlagFile)) : undefined,
    panic: (why) => {
      process.stderr.write(
        `\ncutover: ${why}: stopping now (any freeze or hold is lifted, checkpoints kept), \`run\` resumes\n`,
      );
      ac.abort(new Error(why));
    },
  });
  if (watch.url)
    progress.info(
      `status server on ${watch.url} (dashboard, /metrics, /api/status; control token in ${m.store.statusTokenPath})${watch.fellBack ? '; the default port was taken' : ''}`,
      { statusUrl: watch.url },
    );
  let result: RunResult | undefined;
  try {
    result = await go({
      reporter: watch.reporter,
      signal: ac.signal,
      takeOverLock: !!opts.takeOverLock,
      force: !!opts.force,
      retryDeadLetters: !!opts.retryDeadLetters,
    });
  } catch (e) {
    if (!(e instanceof LockError) && m.state().sourceIndex) printReport(m, json);
    throw e;
  } finally {
    await watch.close();
  }
  printReport(m, json, result);
}

/** The status server and flag files of the long-running commands (`run`, `cutover`). */
function withWatchFlags(cmd: Command): Command {
  return cmd
    .option(
      '--listen <host:port>',
      'status server (dashboard, /metrics, /api/status, control): HOST:PORT, or off (default 127.0.0.1:9252, any free port when taken)',
    )
    .option('--throttle-flag-file <path>', 'while this file exists the copy is paused')
    .option('--panic-flag-file <path>', 'when this file appears the run stops at once, as on panic');
}

function printReport(m: Migration, json: boolean, result?: RunResult): void {
  const report = m.saveReport();
  if (json)
    out(JSON.stringify(result ? { ...report, outcome: result.outcome, message: result.message } : report));
  else {
    out(`\n${formatReport(report)}`);
    if (result) out(`\n${result.message[0]!.toUpperCase()}${result.message.slice(1)}.`);
  }
}

export function registerCommands(program: Command): void {
  withSpecFlags(
    program
      .command('plan <spec>')
      .description('print the ordered steps and what each will change; changes nothing'),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const json = globalJson(cmd);
      let plan: Awaited<ReturnType<Migration['plan']>>;
      try {
        plan = await m.plan({ force: !!opts.force });
      } catch (e) {
        // A refusal is the plan's answer: as data on stdout too, so a script sees every finding.
        if (json && e instanceof PreflightRefused)
          out(
            JSON.stringify(
              { migration: m.spec.name, refused: true, error: e.message, findings: e.findings },
              null,
              2,
            ),
          );
        throw e;
      }
      const { facts, sample, steps, capture } = plan;
      if (json) {
        out(
          JSON.stringify({ migration: m.spec.name, refused: false, capture, facts, sample, steps }, null, 2),
        );
        return;
      }
      out(
        `Plan for migration "${m.spec.name}": ${m.spec.source.index} (${m.source.displayUrl}) -> ${m.spec.target.index} (${m.target.displayUrl})`,
      );
      out(`  live writes: capture.strategy ${capture}`);
      if (facts) {
        out(
          `  source index ${facts.sourceIndex} on ${facts.source}: ${facts.docs} documents, ${facts.shards} primary shard(s)\n` +
            `  aliases to move: ${facts.aliases.map((a) => `${a.alias}${a.isWriteIndex ? ' (write index)' : ''}`).join(', ') || 'none'}\n` +
            `  target ${m.spec.target.index} on ${facts.target}${facts.targetReused ? ' (exists, mappings match: reused)' : ' (will be created)'}\n` +
            `\nPreflight:\n${formatFindings(facts.findings)}`,
        );
      }
      if (sample)
        out(`\nSample (\`run\` takes it again before creating the target):\n${formatFindings([sample])}`);
      steps.forEach((s, i) => {
        out(`\n${i + 1}. ${s.title}${s.done ? '  [done]' : ''}`);
        for (const c of s.changes) out(`   - ${c}`);
      });
    });
  });

  withWatchFlags(
    withSpecFlags(
      program.command('run <spec>').description('execute the migration, or resume it where it stopped'),
    ),
  )
    .option('--take-over-lock', 'take over the lock of a migration whose process died on another host')
    .option(
      '--retry-dead-letters',
      'copy the dead-lettered documents again (after fixing the mapping or transform) before going on',
    )
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, (m) => runAndReport(m, cmd, opts, (o) => m.run(o)));
    });

  withSpecFlags(
    program
      .command('worker <spec>')
      .description(
        'copy slices of a migration `cutover run` shares (copy.workers): run it on any machine, as many as you like; it ends when every slice is done',
      ),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    const json = globalJson(cmd);
    const loaded = loadSpec(spec, (raw) => applyFlags(raw, opts));
    const progress = createReporter({ tty: !!process.stderr.isTTY && !json });
    const ac = abortOnSignals();
    const r = await runWorker(loaded, { reporter: progress, signal: ac.signal });
    if (json) out(JSON.stringify(r));
    else out(r.message);
  });

  withWatchFlags(
    withSpecFlags(
      program
        .command('cutover <spec>')
        .description('switch the aliases of a migration waiting for a manual cutover'),
    ),
  )
    .option('--take-over-lock', 'take over the lock of a migration whose process died on another host')
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, async (m) => {
        // Refused before anything runs, so no report of a migration that was not touched.
        const why = m.notReadyToSwitch();
        if (why) throw new PreflightError(why);
        await runAndReport(m, cmd, opts, (o) => m.cutover(o));
      });
    });

  withSpecFlags(
    program
      .command('verify <spec>')
      .description('compare source and target document by document; changes nothing'),
  )
    .addOption(new Option('--mode <mode>', 'overrides verify.mode (versions | full | sample)'))
    .addOption(new Option('--sample-rate <r>', 'overrides verify.sampleRate'))
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, async (m) => {
        const r = await m.verify({ signal: abortOnSignals().signal });
        if (globalJson(cmd)) out(JSON.stringify(r));
        else out(`${formatProof(r)}\n  report         ${m.store.proofPath}`);
        if (!r.passed) process.exitCode = EXIT.gateRefused;
      });
    });

  withStateDir(program.command('status <spec>').description('show where the migration stands')).action(
    async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, async (m) => {
        const st = await m.status();
        if (globalJson(cmd)) {
          const { report, ...rest } = st;
          out(JSON.stringify({ ...report, ...rest }));
          return;
        }
        for (const w of st.warnings) out(`!! ${w}`);
        out(formatReport(st.report));
        out(`  steps done  ${st.completed.join(', ') || 'none'}`);
        if (st.running) out(`  running     ${st.running}`);
        if (st.lastError) out(`  last error  ${st.lastError.step}: ${st.lastError.message}`);
      });
    },
  );

  withStateDir(
    program
      .command('source-writes <spec>')
      .description(
        'after a manual cutover across clusters: is the old index still written to? (exit 3 while it is)',
      )
      .addOption(new Option('--seconds <n>', 'how long to watch the counters').default('5')),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const w = await m.sourceWrites(Number(opts.seconds), abortOnSignals().signal);
      out(globalJson(cmd) ? JSON.stringify(w) : describeSourceWrites(w, m.source.displayUrl));
      if (w.operations > 0 || w.strays.length > 0) process.exitCode = EXIT.gateRefused;
    });
  });

  withStateDir(
    program
      .command('rollback <spec>')
      .description('move the aliases back to the source index in one request (the target is kept)')
      .option('--take-over-lock', 'take over the lock of a migration whose process died on another host'),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const reporter = createReporter({ tty: false });
      const r = await m.rollback({ takeOverLock: !!opts.takeOverLock, reporter });
      out(globalJson(cmd) ? JSON.stringify(r) : r.message);
    });
  });

  withStateDir(
    program
      .command('cleanup <spec>')
      .description('delete the old index, after the retention window, when confirmed by name')
      .addOption(new Option('--confirm-delete <index>', 'the exact name of the old index to delete')),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const deleted = await m.cleanup(opts.confirmDelete as string | undefined);
      out(globalJson(cmd) ? JSON.stringify({ deleted }) : `deleted old index ${deleted}`);
    });
  });

  withStateDir(
    program
      .command('proxy <spec>')
      .description(
        'serve the write proxy: the application talks to it instead of the cluster; every write to the migrated index is journaled before it is answered',
      )
      .option('--listen <host:port>', 'overrides proxy.listen (port 0: any free port)')
      .option('--control <host:port>', 'overrides proxy.control')
      .option(
        '--status-listen <host:port>',
        'status server (dashboard, /metrics, /api/status): HOST:PORT, or off (default 127.0.0.1:9252, any free port when taken)',
      ),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    const json = globalJson(cmd);
    const loaded = loadSpec(spec, (raw) => applyFlags(raw, opts));
    // Logs go to stderr; they never carry a body, a header value, a query string or a credential.
    const log = (msg: string, fields: Record<string, unknown> = {}) =>
      process.stderr.write(
        json
          ? `${JSON.stringify({ at: new Date().toISOString(), msg, ...fields })}\n`
          : `cutover proxy: ${msg}${Object.entries(fields)
              .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join('')}\n`,
      );
    // This process is the proxy alone: its collector is tuned for streaming Buffers (proxy/heap.ts).
    tuneProxyHeap();
    const proxy = await openProxy(loaded, {
      listen: opts.listen as string | undefined,
      control: opts.control as string | undefined,
      log,
    });
    // Before the ready line: whoever reads it may signal at once.
    let signalled = false;
    const stop = (sig: string) => {
      if (signalled) process.exit(EXIT.interrupted);
      signalled = true;
      log(`${sig}: closing (in-flight writes finish and are journaled; a hold is released)`);
      void proxy.close();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    const journal = proxy.journalWhere;
    const m = new Migration(loaded);
    const watch = await watchProxy(m, () => proxy.status(), {
      listen: opts.statusListen as string | undefined,
    }).catch(async (e: unknown) => {
      await proxy.close();
      throw e;
    });
    if (json)
      out(
        JSON.stringify({
          event: 'ready',
          id: proxy.info.id,
          listen: proxy.dataUrl,
          control: proxy.controlUrl,
          status: watch.url,
          journal,
        }),
      );
    else
      out(
        `proxy listening on ${proxy.dataUrl} (control on ${proxy.controlUrl}, journal ${journal}${watch.url ? `, status on ${watch.url}` : ''})`,
      );
    const failed = await proxy.closed;
    await watch.close();
    await m.close();
    if (failed) throw failed;
  });

  withStateDir(
    program
      .command('ctl <spec> <action> [value]')
      .description(
        'steer a running migration through its status server: pause | resume | rate N|unlimited | batch N | postpone | unpostpone | panic | status',
      )
      .option('--proxy', "talk to `cutover proxy`'s status server instead of the run's"),
  ).action(async (spec: string, action: string, value: string | undefined, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const r = await control(m, opts.proxy ? 'proxy' : 'run', action, value);
      if (globalJson(cmd) || action === 'status') out(JSON.stringify(r, null, action === 'status' ? 2 : 0));
      else out(String(r.message));
    });
  });

  withStateDir(
    program
      .command('doctor <spec>')
      .description(
        "what is wrong around a migration: both clusters' health (with the allocation explain of unassigned shards), long-running reindex/bulk/search tasks, open search contexts; exit 3 when a problem is found",
      )
      .option('--older-than <min>', 'list tasks running longer than this many minutes', '10')
      .option('--cancel <task>', 'cancel this task (NODE_ID:NUMBER), after confirmation')
      .option('--yes', 'with --cancel: do not ask (needed without a terminal)'),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const json = globalJson(cmd);
      if (opts.cancel !== undefined) {
        const id = String(opts.cancel);
        const t = await m.task(id);
        if (!opts.yes) {
          if (!process.stdin.isTTY || !process.stderr.isTTY)
            throw new PreflightError(
              `doctor --cancel ${id}: no terminal to confirm on; pass --yes to cancel without asking`,
            );
          const ok = await confirm(
            `cancel ${t.side} task ${id} (${t.action}, running ${Math.round(t.runningSeconds / 60)} min)? [y/N] `,
          );
          if (!ok) {
            out(json ? JSON.stringify({ cancelled: false, task: id }) : 'not cancelled');
            return;
          }
        }
        const msg = await m.cancelTask(id);
        out(json ? JSON.stringify({ cancelled: true, task: id, message: msg }) : msg);
        return;
      }
      const older = Number(opts.olderThan);
      if (!Number.isFinite(older) || older < 0)
        throw new PreflightError(`--older-than: a number of minutes >= 0, got "${String(opts.olderThan)}"`);
      const r = await m.doctor({ olderThanMinutes: older });
      out(json ? JSON.stringify(r) : `Doctor for migration "${m.spec.name}":\n${formatDoctor(r)}`);
      if (!r.healthy) process.exitCode = EXIT.gateRefused;
    });
  });

  program
    .command('schema')
    .description('print the JSON Schema of the migration spec')
    .action(() => {
      out(JSON.stringify(jsonSchema(), null, 2));
    });

  program
    .command('demo')
    .description('start a local Elasticsearch, create an index behind aliases, and migrate it')
    .option('--docs <n>', 'documents in the demo index', '20000')
    .option('--kind <kind>', 'local server: es8 | es9 | os3', 'es8')
    .action(async (opts: Raw) => {
      const { runDemo } = await import('../demo/demo.js');
      await runDemo({ docs: Number(opts.docs), kind: opts.kind as 'es8' });
    });
}
