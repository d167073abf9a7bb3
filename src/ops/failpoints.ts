/**
 * Crash injection for the kill -9 tests: CUTOVER_FAILPOINTS="name:N,..." makes the process SIGKILL itself the
 * N-th time it passes `name`. A real kill -9 at an exact moment (between a bulk and its checkpoint, inside the
 * alias switch) that random timing would rarely hit. Inert unless the variable is set.
 */
const spec = new Map<string, number>();
for (const part of (process.env.CUTOVER_FAILPOINTS ?? '').split(',')) {
  const [name, n] = part.split(':');
  if (name) spec.set(name.trim(), Number(n ?? 1));
}
const hits = new Map<string, number>();

export function failpoint(name: string): void {
  const at = spec.get(name);
  if (at === undefined) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === at) process.kill(process.pid, 'SIGKILL');
}
