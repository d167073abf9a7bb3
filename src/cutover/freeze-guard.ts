/**
 * The application never depends on the runner staying alive: before cutover sets a write block, it starts a
 * guard, a separate detached process that lifts the block when the freeze outlasts its budget (plus a margin) or
 * when this process dies (its end of the guard's stdin pipe closes without "done"), whichever comes first. The
 * guard is told "done" only after this process lifted the block itself.
 *
 * The cluster connection, credentials included, goes to the guard as one JSON line on that pipe, never in argv
 * (visible in `ps`) nor in its environment (variables holding a secret are left out of it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig } from '../cluster/transport.js';
import { clusterConfig, type LoadedSpec } from '../spec/load.js';

/**
 * Past the budget, before the guard lifts. The runner gives up on its own before the budget ends, so the guard
 * acts only on a runner that is stuck; the margin keeps an alias request the runner sent just in time from
 * racing the guard's lift.
 */
export const GUARD_MARGIN_MS = 2_000;
/** How long the guard keeps trying to lift a block the cluster refuses to lift (down, overloaded). */
export const GUARD_RETRY_FOR_MS = 120_000;
const READY_TIMEOUT_MS = 30_000;
const EXIT_WAIT_MS = 5_000;

/** What the caller of freezeAndSwitch knows: how to reach the frozen index's cluster, where the audit goes. */
export interface GuardSpec {
  cluster: ClusterConfig;
  auditPath?: string;
}

/** The one line the guard reads on its stdin. */
export interface GuardConfig extends GuardSpec {
  index: string;
  budgetMs: number;
  marginMs: number;
  retryForMs: number;
  parentPid: number;
}

export interface FreezeGuard {
  readonly pid: number;
  /** The block is lifted: the guard stops without touching anything; resolves once it has exited. */
  done(): Promise<void>;
  /** This process could not lift the block: the guard lifts it now (and keeps trying), detached from us. */
  handOver(): void;
}

/** The guard of a freeze on the migration's `side` index, connected as the main process is. */
export function guardFor(spec: LoadedSpec, side: 'source' | 'target', auditPath?: string): GuardSpec {
  const onTarget = side === 'target' && spec.target.cluster;
  const cluster = onTarget
    ? clusterConfig(spec.target.cluster!, 'target.cluster')
    : clusterConfig(spec.source.cluster, 'source.cluster');
  return { cluster, auditPath };
}

/** The compiled guard next to this file, or under tsx its TypeScript source run through tsx. */
function entry(): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('./freeze-guard-main.js', import.meta.url));
  if (existsSync(js)) return { file: js, execArgv: [] };
  const ts = fileURLToPath(new URL('./freeze-guard-main.ts', import.meta.url));
  if (existsSync(ts)) return { file: ts, execArgv: ['--import', import.meta.resolve('tsx')] };
  throw new Error(`freeze guard: neither ${js} nor ${ts} exists; reinstall cutover`);
}

function secretsOf(c: ClusterConfig): string[] {
  const out: string[] = [];
  const a = c.auth;
  if (a && 'password' in a) out.push(a.password);
  if (a && 'apiKey' in a) out.push(a.apiKey);
  if (a && 'bearer' in a) out.push(a.bearer);
  try {
    const u = new URL(c.url);
    if (u.password) out.push(u.password, decodeURIComponent(u.password));
  } catch {}
  return out.filter(Boolean);
}

/** The parent's environment (proxies, NODE_EXTRA_CA_CERTS act the same) without any variable holding a secret. */
function guardEnv(c: ClusterConfig): NodeJS.ProcessEnv {
  const secrets = new Set(secretsOf(c));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || secrets.has(v)) continue;
    env[k] = v;
  }
  // Fault injection is for the runner; the guard is what a killed runner relies on.
  delete env.CUTOVER_FAILPOINTS;
  return env;
}

/** Start the guard and wait until it holds the connection: no block is set before that. */
export async function startFreezeGuard(
  spec: GuardSpec,
  index: string,
  budgetMs: number,
  opts: { marginMs?: number; retryForMs?: number } = {},
): Promise<FreezeGuard> {
  const { file, execArgv } = entry();
  const config: GuardConfig = {
    ...spec,
    index,
    budgetMs,
    marginMs: opts.marginMs ?? GUARD_MARGIN_MS,
    retryForMs: opts.retryForMs ?? GUARD_RETRY_FOR_MS,
    parentPid: process.pid,
  };
  // detached: its own session, so neither the runner's death nor a Ctrl-C to its terminal reaches it.
  const child = spawn(process.execPath, [...execArgv, file, index], {
    detached: true,
    stdio: ['pipe', 'pipe', 'ignore'],
    env: guardEnv(spec.cluster),
  });
  // The guard may be gone when told "done" (it lifted at the deadline): a write to its closed pipe is no error.
  child.stdin!.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
  });
  child.stdin!.write(`${JSON.stringify(config)}\n`);
  await ready(child, index);
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  let told = false;
  return {
    pid: child.pid!,
    async done() {
      if (told) return;
      told = true;
      child.stdin!.end('done\n');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), EXIT_WAIT_MS);
      });
      // A guard of this freeze must never outlive it: it could lift the block of the next one.
      if ((await Promise.race([exited, late])) === 'late') child.kill('SIGKILL');
      clearTimeout(timer);
    },
    handOver() {
      if (told) return;
      told = true;
      child.stdin!.end();
    },
  };
}

function ready(child: ChildProcess, index: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`freeze guard for ${index} did not start (${why}); no write block was set`));
    };
    const timer = setTimeout(() => fail(`no answer in ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`it exited with ${signal ?? `code ${code}`}`);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!out.includes('ready\n')) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout!.off('data', onData);
      resolve();
    };
    child.once('error', (e) => fail(e.message));
    child.once('exit', onExit);
    child.stdout!.on('data', onData);
  });
}

/** The guard's lift of a freeze on `index` begun at `since` (ISO), from the audit trail: when, and why. */
export function guardLiftOf(
  auditPath: string,
  index: string,
  since: string | undefined,
): { at: string; reason: string } | undefined {
  let text: string;
  try {
    text = readFileSync(auditPath, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').reverse()) {
    if (!line.includes('"freeze-guard-lifted"')) continue;
    const e = JSON.parse(line) as { at: string; index?: string; reason?: string };
    if (e.index === index && (!since || e.at >= since)) return { at: e.at, reason: e.reason ?? '' };
  }
  return undefined;
}
