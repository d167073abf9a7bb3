/**
 * The freeze guard process (started by freeze-guard.ts): a write block cutover set on an index is lifted at the
 * freeze's deadline (budget + margin) or at once when the runner is gone (stdin closed without "done"), whoever
 * the runner was and however it died. "done" means the runner lifted the block itself: the guard then exits
 * without touching the cluster. It reads its whole configuration, credentials included, from one stdin line.
 */
import { createInterface } from 'node:readline';
import { Cluster } from '../cluster/client.js';
import { withRetry } from '../cluster/retry.js';
import { AuditLog } from '../store/audit.js';
import { liftWriteBlock } from './freeze.js';
import type { GuardConfig } from './freeze-guard.js';

let config: GuardConfig | undefined;
let cluster: Cluster | undefined;
let audit: AuditLog | undefined;
let lifting = false;

function record(event: string, fields: Record<string, unknown>): void {
  try {
    audit?.record({ event, index: config?.index, runnerPid: config?.parentPid, ...fields });
  } catch {
    // The audit trail is a record, never a reason not to lift the block.
  }
}

function arm(line: string): void {
  config = JSON.parse(line) as GuardConfig;
  // A request that hangs must not eat the retry window: each try is short, the window long.
  cluster = new Cluster({
    ...config.cluster,
    requestTimeoutMs: Math.min(config.cluster.requestTimeoutMs ?? 10_000, 10_000),
  });
  audit = config.auditPath ? new AuditLog(config.auditPath) : undefined;
  const after = config.budgetMs + config.marginMs;
  record('freeze-guard-started', { liftsAfterMs: after });
  setTimeout(
    () => void lift(`the freeze outlasted its budget of ${config!.budgetMs} ms by ${config!.marginMs} ms`),
    after,
  );
  process.stdout.write('ready\n');
}

async function lift(reason: string): Promise<void> {
  if (lifting || !config || !cluster) return;
  lifting = true;
  const c = cluster;
  const index = config.index;
  let tries = 0;
  try {
    // The one retry policy, with the guard's long window: everything is worth another try while writes are refused.
    await withRetry(
      () => {
        tries++;
        return liftWriteBlock(c, index);
      },
      () => true,
      { initialMs: 250, maxMs: 5_000, budgetMs: config.retryForMs },
    );
    record('freeze-guard-lifted', { reason, tries });
    process.exit(0);
  } catch (e) {
    record('freeze-guard-failed', { reason, tries, error: (e as Error).message });
    process.exit(1);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!config) {
    try {
      arm(line);
    } catch {
      process.exit(2);
    }
    return;
  }
  // The runner lifted the block: anything this guard did now could only touch the next freeze.
  if (line.trim() === 'done') process.exit(0);
});
lines.on('close', () => {
  if (!config) process.exit(2);
  void lift('the cutover process is gone (it closed the guard pipe without "done")');
});
