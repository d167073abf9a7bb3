/**
 * The target's document count under a hold without refreshing it there: a count taken before the hold while the
 * runner's one writer had no bulk in flight, plus what that writer's acknowledged items changed since
 * (`CountTally` in writer.ts). A refresh under the hold was its longest wait (a node refreshes one shard at a time
 * on two cores, after the source's: ~140 ms of a 300-400 ms hold, docs/benchmarks.md). The figure is the one a
 * refresh would show as long as only this writer changes the target and none of its answers was lost; when that
 * cannot be told, there is no figure and the caller refreshes and counts as before.
 */
import type { CountTally } from '../copy/writer.js';

export interface CountBase {
  count: number;
  tally: CountTally;
}

/**
 * `refreshAndCount` refreshes the target and counts it. The base is kept only if no bulk of the writer was in
 * flight when it started and none was sent or lost until the count came back: then the count holds exactly the
 * items tallied before it.
 */
export async function takeCountBase(
  refreshAndCount: () => Promise<number>,
  tally: () => CountTally,
): Promise<CountBase | undefined> {
  const before = tally();
  const count = await refreshAndCount();
  const after = tally();
  if (before.inFlight > 0 || after.sent !== before.sent || after.unsure !== before.unsure) return undefined;
  return { count, tally: before };
}

/** The target's count now, from the base and the tally; undefined when a bulk is in flight or an answer was lost. */
export function countFromTally(base: CountBase | undefined, now: CountTally): number | undefined {
  if (!base || now.inFlight > 0 || now.unsure !== base.tally.unsure) return undefined;
  return base.count + now.net - base.tally.net;
}
