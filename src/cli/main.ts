#!/usr/bin/env node
/**
 * The `cutover` command: parse, call the library (src/index.ts), format. Every error leaves with the exit code
 * it carries (docs/cli.md), as one line on stderr, or as one JSON object with --json.
 */
import { Command, Option } from 'commander';
import { onClusterNotice } from '../cluster/notices.js';
import { redactUrlsIn } from '../cluster/redact.js';
import { EXIT, EXIT_MEANING, type ExitCode, exitCodeOf } from '../store/errors.js';
import { registerCommands } from './commands.js';

// A reader that stops early (`cutover status x | head -1`) is not an error: further output is dropped and the
// command ends as it would have, never in the middle of a cluster operation (a freeze must still be lifted).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
  throw e;
});

onClusterNotice((message) => process.stderr.write(`cutover: ${message}\n`));

const program = new Command('cutover')
  .description('Zero-downtime reindexing and migration for Elasticsearch and OpenSearch')
  .version('0.1.0')
  .addOption(new Option('--json', 'machine-readable output').default(false))
  .showHelpAfterError();

registerCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const code = exitCodeOf(e) as ExitCode;
  // Last line of defence: whatever produced the message, no URL userinfo reaches the terminal.
  const msg = redactUrlsIn(e instanceof Error ? e.message : String(e));
  if (program.opts().json)
    process.stderr.write(
      `${JSON.stringify({ error: msg, kind: e instanceof Error ? e.name : 'Error', exitCode: code, meaning: EXIT_MEANING[code] })}\n`,
    );
  else process.stderr.write(`cutover: ${msg}\n`);
  if (code === EXIT.failed && e instanceof Error && process.env.CUTOVER_DEBUG)
    process.stderr.write(`${e.stack}\n`);
  process.exit(code);
});
