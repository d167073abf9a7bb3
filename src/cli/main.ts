#!/usr/bin/env node
/** The `cutover` command: thin glue over the library (src/index.ts). Exit codes: docs/cli.md. */
import { Command, Option } from 'commander';
import { ClusterError, TransportError } from '../cluster/errors.js';
import { onClusterNotice } from '../cluster/notices.js';
import { redactUrlsIn } from '../cluster/redact.js';
import { EXIT, GateError, PreflightError } from '../plan/errors.js';
import { LockError } from '../plan/lock.js';
import { SpecError } from '../spec/load.js';
import { registerCommands } from './commands.js';

function exitCodeFor(e: unknown): number {
  if (e instanceof SpecError || e instanceof PreflightError) return EXIT.badInput;
  if (e instanceof GateError) return EXIT.gateRefused;
  if (e instanceof LockError) return EXIT.locked;
  if (e instanceof ClusterError || e instanceof TransportError) return EXIT.cluster;
  return EXIT.failed;
}

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
  const code = exitCodeFor(e);
  // Last line of defence: whatever produced the message, no URL userinfo reaches the terminal.
  const msg = redactUrlsIn(e instanceof Error ? e.message : String(e));
  process.stderr.write(`cutover: ${msg}\n`);
  if (code === EXIT.failed && e instanceof Error && process.env.CUTOVER_DEBUG)
    process.stderr.write(`${e.stack}\n`);
  process.exit(code);
});
