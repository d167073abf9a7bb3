/**
 * Fault injection for tests: CUTOVER_FAILPOINTS="name:N,..." makes the process SIGKILL itself the N-th time it
 * passes `name`: a real kill -9 at an exact moment (between a bulk and its checkpoint, inside the alias switch)
 * that random timing would rarely hit. "name:sleepMS" makes every pass through a delay point of that name take
 * MS longer: a slow server at an exact place (the id scan of a large index) without a large index. Inert unless
 * the variable is set.
 */
import { sleep } from '../cluster/retry.js';

const spec = new Map<string, number>();
const delays = new Map<string, number>();
for (const part of (process.env.CUTOVER_FAILPOINTS ?? '').split(',')) {
  const [name, n] = part.split(':');
  if (!name) continue;
  if (n?.startsWith('sleep')) delays.set(name.trim(), Number(n.slice(5)));
  else spec.set(name.trim(), Number(n ?? 1));
}

export async function delaypoint(name: string, signal?: AbortSignal): Promise<void> {
  const ms = delays.get(name);
  if (ms) await sleep(ms, signal);
}
const hits = new Map<string, number>();

/** Whether `name` is set to kill: lets a caller reach the exact moment first (an answer on the wire). */
export function armed(name: string): boolean {
  return spec.has(name);
}

export function failpoint(name: string): void {
  const at = spec.get(name);
  if (at === undefined) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === at) process.kill(process.pid, 'SIGKILL');
}
