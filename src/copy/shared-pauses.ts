/**
 * One pause for a shared copy (copy.workers): whatever pauses the runner (the operator's control API or dashboard,
 * the throttle flag file, the watchdog on a red cluster, a panic) pauses every worker too. The runner publishes its
 * throttle's pauses to the bucket whenever they change, and each worker holds a pause of its own (`runner`) while
 * the published list is not empty, checked once a second, so a worker stops within a second and the page it has in
 * flight. Without it a pause stopped only the runner's slices.
 *
 * A pause stays until a runner lifts it: a runner killed while paused leaves its workers paused until the next
 * runner publishes what holds then (SliceBoard.publish writes it before the plan). A bucket that does not answer
 * changes nothing: a worker keeps its last state.
 */
import type { Throttle } from '../ops/throttle.js';
import type { SharedPauses, SliceBoard } from './slice-board.js';

/** The runner's pauses as the workers should see them (their own `runner` pause never goes back out). */
export function pausesOf(throttle: Throttle): SharedPauses['pausedBy'] {
  return throttle
    .view()
    .pausedBy.filter((p) => p.by !== 'runner')
    .map((p) => ({ by: p.by, why: p.why }));
}

/** The runner: publish every change of its pauses; a publish that failed is tried again each second. */
export function sharePauses(
  throttle: Throttle,
  board: SliceBoard,
  onError: (e: Error) => void,
): { stop(): Promise<void> } {
  let published = JSON.stringify(pausesOf(throttle));
  let chain: Promise<void> = Promise.resolve();
  const publish = () => {
    const now = pausesOf(throttle);
    const key = JSON.stringify(now);
    if (key === published) return;
    published = key;
    chain = chain
      .then(() => board.publishPauses(now))
      .catch((e: unknown) => {
        published = '';
        onError(e as Error);
      });
  };
  const off = throttle.onChange(publish);
  const retry = setInterval(publish, 1000);
  retry.unref();
  return {
    async stop() {
      off();
      clearInterval(retry);
      await chain;
    },
  };
}

/** A worker: hold a `runner` pause while the runner has any; the first look is done before this resolves. */
export async function followPauses(
  throttle: Throttle,
  board: SliceBoard,
  o: { onChange?: (paused: boolean, why: string) => void; onError?: (e: Error) => void; intervalMs?: number },
): Promise<{ stop(): void }> {
  // Said once per outage, not once a second while NATS does not answer.
  let failing = false;
  const look = async () => {
    let p: SharedPauses | undefined;
    try {
      p = await board.pauses();
    } catch (e) {
      if (!failing) o.onError?.(e as Error);
      failing = true;
      return;
    }
    failing = false;
    const list = p?.pausedBy ?? [];
    const held = throttle.view().pausedBy.some((x) => x.by === 'runner');
    if (list.length > 0 && !held) {
      const why = `the runner (${p!.by.host} pid ${p!.by.pid}) is paused: ${list.map((x) => `${x.by}: ${x.why}`).join('; ')}`;
      throttle.pause('runner', why);
      o.onChange?.(true, why);
    } else if (list.length === 0 && held) {
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
