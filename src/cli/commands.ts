/** Each subcommand: parse flags into spec fields, call the library, print, and let main.ts map errors to exit codes. */
import { type Command, Option } from 'commander';
import type { CaptureState } from '../capture/live.js';
import { writeBlockStatus } from '../cutover/block-status.js';
import { createReporter } from '../ops/progress.js';
import { buildReport, formatReport } from '../ops/report.js';
import { readJson, writeJsonAtomic } from '../plan/atomic-file.js';
import { EXIT, PreflightError } from '../plan/errors.js';
import { Migration } from '../plan/migrator.js';
import { jsonSchema } from '../spec/json-schema.js';
import { loadSpec } from '../spec/load.js';
import { formatFindings } from '../verify/preflight.js';
import { formatProof } from '../verify/proof.js';

type Raw = Record<string, unknown>;

import { resolve as resolvePath } from 'node:path';

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
  { flag: '--transform <file>', path: ['transform'], parse: String, help: 'transform' },
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
    // A path typed on the command line means the operator's working directory, not the spec's.
    parse: (v) => resolvePath(v),
    help: 'cutover.postponeFlagFile: while it exists, keep catching up and do not switch',
  },
  {
    flag: '--revert-window-minutes <m>',
    path: ['cutover', 'revertWindowMinutes'],
    parse: Number,
    help: 'cutover.revertWindowMinutes',
  },
  { flag: '--state-dir <dir>', path: ['stateDir'], parse: String, help: 'stateDir' },
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

function abortOnSignals(): AbortController {
  const ac = new AbortController();
  const stop = (sig: string) => {
    if (ac.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write(
      `\ncutover: ${sig}: stopping now (requests in flight are abandoned; checkpoints hold only acknowledged work), \`run\` resumes; press again to exit at once\n`,
    );
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return ac;
}

async function runAndReport(
  m: Migration,
  cmd: Command,
  opts: Record<string, unknown>,
  cutoverNow: boolean,
): Promise<void> {
  const json = globalJson(cmd);
  const reporter = createReporter({ tty: !!process.stderr.isTTY && !json });
  const ac = abortOnSignals();
  let outcome: string;
  try {
    outcome = await m.run(
      { reporter, signal: ac.signal, takeOverLock: !!opts.takeOverLock, cutoverNow, force: !!opts.force },
      cutoverNow ? 'cutover' : 'run',
    );
  } finally {
    const report = buildReport(
      m.state(),
      m.store.deadLetterPath,
      readJson<CaptureState>(m.store.capturePath),
      readJson<CaptureState>(m.store.revertPath),
    );
    if (m.state().sourceIndex) writeJsonAtomic(m.store.reportPath, report);
    if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`\n${formatReport(report)}\n`);
  }
  if (!json)
    process.stdout.write(
      outcome === 'cut-over'
        ? '\nDone: aliases point at the target.\n'
        : '\nCopied and verified; run `cutover cutover <spec>` to switch the aliases.\n',
    );
}

export function registerCommands(program: Command): void {
  withSpecFlags(
    program
      .command('plan <spec>')
      .description('print the ordered steps and what each will change; changes nothing'),
  ).action(async (spec: string, opts: Raw, cmd: Command) => {
    await withMigration(spec, opts, async (m) => {
      const { facts, steps } = await m.plan({ force: !!opts.force });
      if (globalJson(cmd)) {
        process.stdout.write(`${JSON.stringify({ migration: m.spec.name, facts, steps }, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `Plan for migration "${m.spec.name}": ${m.spec.source.index} (${m.source.displayUrl}) -> ${m.spec.target.index} (${m.target.displayUrl})\n`,
      );
      if (facts) {
        process.stdout.write(
          `  source index ${facts.sourceIndex} on ${facts.source}: ${facts.docs} documents, ${facts.shards} primary shard(s)\n` +
            `  aliases to move: ${facts.aliases.map((a) => `${a.alias}${a.isWriteIndex ? ' (write index)' : ''}`).join(', ') || 'none'}\n` +
            `  target ${m.spec.target.index} on ${facts.target}${facts.targetReused ? ' (exists, mappings match: reused)' : ' (will be created)'}\n` +
            `\nPreflight:\n${formatFindings(facts.findings)}\n`,
        );
      }
      steps.forEach((s, i) => {
        process.stdout.write(`\n${i + 1}. ${s.title}${s.done ? '  [done]' : ''}\n`);
        for (const c of s.changes) process.stdout.write(`   - ${c}\n`);
      });
    });
  });

  withSpecFlags(
    program.command('run <spec>').description('execute the migration, or resume it where it stopped'),
  )
    .option('--take-over-lock', 'take over the lock of a migration whose process died')
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, (m) => runAndReport(m, cmd, opts, false));
    });

  withSpecFlags(
    program
      .command('cutover <spec>')
      .description('switch the aliases of a migration waiting for a manual cutover'),
  )
    .option('--take-over-lock', 'take over the lock of a migration whose process died')
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, async (m) => {
        const st = m.state();
        // Everything up to the switch must be done; a failed proof at a previous cutover attempt is retried.
        if (!st.completed.gate || st.phase === 'rolled-back' || st.phase === 'cleaned-up') {
          throw new PreflightError(
            `migration ${m.spec.name} is "${st.phase}" and not ready to switch (steps done: ${Object.keys(st.completed).join(', ') || 'none'}); finish \`cutover run\` first`,
          );
        }
        await runAndReport(m, cmd, opts, true);
      });
    });

  withSpecFlags(
    program
      .command('verify <spec>')
      .description('compare source and target document by document; changes nothing'),
  )
    .addOption(new Option('--mode <mode>', 'overrides verify.mode (full | sample)'))
    .addOption(new Option('--sample-rate <r>', 'overrides verify.sampleRate'))
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, async (m) => {
        const r = await m.verify();
        if (globalJson(cmd)) process.stdout.write(`${JSON.stringify(r)}\n`);
        else process.stdout.write(`${formatProof(r)}\n  report         ${m.store.proofPath}\n`);
        if (!r.passed) process.exitCode = EXIT.gateRefused;
      });
    });

  program
    .command('status <spec>')
    .description('show where the migration stands')
    .action(async (spec: string, opts: Raw, cmd: Command) => {
      await withMigration(spec, opts, async (m) => {
        const s = m.state();
        const report = buildReport(s, m.store.deadLetterPath);
        const writeBlocks = await writeBlockStatus({
          source: m.source,
          target: m.target,
          state: s,
          targetIndex: m.spec.target.index,
          specPath: spec,
          lockPath: m.store.lockPath,
        });
        if (globalJson(cmd)) {
          process.stdout.write(
            `${JSON.stringify({ ...report, completed: s.completed, lastError: s.lastError, writeBlocks })}\n`,
          );
          return;
        }
        for (const note of writeBlocks.flatMap((b) => b.notes)) process.stdout.write(`!! ${note}\n`);
        process.stdout.write(
          `${formatReport(report)}\n  steps done  ${Object.keys(s.completed).join(', ') || 'none'}\n`,
        );
        if (s.lastError) process.stdout.write(`  last error  ${s.lastError.step}: ${s.lastError.message}\n`);
      });
    });

  program
    .command('rollback <spec>')
    .description('move the aliases back to the source index in one request (the target is kept)')
    .option('--take-over-lock', 'take over the lock of a migration whose process died')
    .action(async (spec: string, opts: Raw) => {
      await withMigration(spec, opts, async (m) => {
        const reporter = createReporter({ tty: false });
        const r = await m.rollback({ takeOverLock: !!opts.takeOverLock, reporter });
        process.stdout.write(
          r === 'aliases-restored'
            ? `aliases point at ${m.state().sourceIndex} again\n`
            : 'aliases were not moved; nothing to switch back\n',
        );
      });
    });

  program
    .command('cleanup <spec>')
    .description('delete the old index, after the retention window, when confirmed by name')
    .addOption(new Option('--confirm-delete <index>', 'the exact name of the old index to delete'))
    .action(async (spec: string, opts: Raw) => {
      await withMigration(spec, opts, async (m) => {
        const deleted = await m.cleanup(opts.confirmDelete as string | undefined);
        process.stdout.write(`deleted old index ${deleted}\n`);
      });
    });

  program
    .command('schema')
    .description('print the JSON Schema of the migration spec')
    .action(() => {
      process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
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
