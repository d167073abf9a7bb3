/**
 * One control for a shared copy (copy.workers): what the runner decides holds for every process.
 *   - Pauses: whatever pauses the runner (the operator's control API or dashboard, the throttle flag file, the
 *     watchdog on a red cluster, a panic) pauses every worker too: each holds a pause of its own (`runner`) while
 *     the published list is not empty.
 *   - Rate: the runner's ceiling (copy.maxDocsPerSecond, or the operator's `rate N`) is the whole copy's; every
 *     process, the runner included, takes `ceiling / processes`, where processes are those holding a slice not done
 *     (a dead holder counts until its slice is taken over, so the shares err low). The closed loop of each process
 *     moves its rate under its share.
 * The runner publishes its decision to the bucket whenever it changes (and the count of processes as its mirror of
 * the slices sees it, every 2 s); a worker looks once a second, so it follows within a second and the page it has
 * in flight. While the number of processes grows the sum of the shares may exceed the ceiling for that long.
 *
 * A decision stays until a runner changes it: a runner killed while paused leaves its workers paused until the
 * next runner publishes what holds then (SliceBoard.publish writes it before the plan). A bucket that does not
 * answer changes nothing: a worker keeps its last state.
 */
import type { Throttle } from '../ops/throttle.js';
import type { ControlDecision, SharedControl, SliceBoard } from './slice-board.js';

/** The runner's decision as the workers should see it (their own `runner` pause never goes back out). */
export function controlOf(throttle: Throttle, processes: number): ControlDecision {
  const v = throttle.view();
  return {
    pausedBy: v.pausedBy.filter((p) => p.by !== 'runner').map((p) => ({ by: p.by, why: p.why })),
    ceiling: v.ceiling,
    processes: Math.max(1, processes),
  };
}

function shareReason(ceiling: number, processes: number): string {
  return `copy.workers: ${processes} process(es) share the copy's ceiling of ${ceiling} docs/s`;
}

/**
 * The runner: take its own share and publish every change of its decision; a publish that failed is tried again
 * each second.
 */
export function shareControl(
  throttle: Throttle,
  board: SliceBoard,
  onError: (e: Error) => void,
): { stop(): Promise<void> } {
  let published = JSON.stringify(controlOf(throttle, board.copyingNow));
  let chain: Promise<void> = Promise.resolve();
  const publish = () => {
    const now = controlOf(throttle, board.copyingNow);
    throttle.setShare(now.processes, shareReason(now.ceiling, now.processes));
    const key = JSON.stringify(now);
    if (key === published) return;
    published = key;
    chain = chain
      .then(() => board.publishControl(now))
      .catch((e: unknown) => {
        published = '';
        onError(e as Error);
      });
  };
  const off = throttle.onChange(publish);
  // The count of processes comes from the runner's readings of the slices (its mirror, every 2 s).
  const tick = setInterval(publish, 1000);
  tick.unref();
  publish();
  return {
    async stop() {
      off();
      clearInterval(tick);
      await chain;
      throttle.setShare(1, 'the shared copy is over');
    },
  };
}

/** A worker: follow the runner's decision; the first look is done before this resolves. */
export async function followControl(
  throttle: Throttle,
  board: SliceBoard,
  o: {
    onChange?: (paused: boolean, why: string) => void;
    /** the ceiling or the number of processes sharing it changed: this process's part, and why */
    onShare?: (docsPerSecond: number, why: string) => void;
    onError?: (e: Error) => void;
    intervalMs?: number;
  },
): Promise<{ stop(): void }> {
  let shared = '';
  // Said once per outage, not once a second while NATS does not answer.
  let failing = false;
  const look = async () => {
    let c: SharedControl | undefined;
    try {
      c = await board.control();
    } catch (e) {
      if (!failing) o.onError?.(e as Error);
      failing = true;
      return;
    }
    failing = false;
    if (!c) return;
    const v = throttle.view();
    if (c.ceiling !== v.ceiling) throttle.setCeiling(c.ceiling, `the runner's ceiling for the whole copy`);
    throttle.setShare(c.processes, shareReason(c.ceiling, c.processes));
    if (c.ceiling > 0 && `${c.ceiling}/${c.processes}` !== shared) {
      shared = `${c.ceiling}/${c.processes}`;
      o.onShare?.(Math.max(1, Math.floor(c.ceiling / c.processes)), shareReason(c.ceiling, c.processes));
    }
    const held = v.pausedBy.some((x) => x.by === 'runner');
    if (c.pausedBy.length > 0 && !held) {
      const why = `the runner (${c.by.host} pid ${c.by.pid}) is paused: ${c.pausedBy.map((x) => `${x.by}: ${x.why}`).join('; ')}`;
      throttle.pause('runner', why);
      o.onChange?.(true, why);
    } else if (c.pausedBy.length === 0 && held) {
      throttle.resume('runner', 'lifted: the runner resumed');
      o.onChange?.(false, 'the runner resumed');
    }
  };
  await look();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const loop = () => {
    timer = setTimeout(async () => {
      await look();
      if (!stopped) loop();
    }, o.intervalMs ?? 1000);
    timer.unref();
  };
  loop();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
