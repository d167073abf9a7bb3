/**
 * The proxy process's heap grows to four times what survives a full collection before the next one starts,
 * instead of V8's own choice, which for this workload stayed near 1.1 times (docs/benchmarks.md).
 *
 * Measured (`--trace-gc`, `bench/proxy.ts` bulk part): the proxy holds little (~20 MB live) but streams every
 * request and answer through Buffers (a `_bulk` of 500 documents is ~1 MB of them); a full collection started about
 * every 200 ms, each freeing ~4 MB, and its concurrent marking took CPU from the cluster on the same machine. Most
 * likely V8 counts the Buffers allocated since the last full collection against a limit it kept a few MB above the
 * live heap; a larger young generation did not change it, a larger growth factor did. The factor applies to the
 * live heap, so memory stays bounded (peak RSS 117 -> 177 MB there); an operator's own `--heap-growing-percent`
 * wins.
 */
import { setFlagsFromString } from 'node:v8';

const FLAG = '--heap-growing-percent';
/** factor 1 + 300 / 100 */
const GROWING_PERCENT = 300;

/** Apply the proxy's heap growth, unless the process was started with its own; returns what was set. */
export function tuneProxyHeap(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string | undefined {
  const own = [...execArgv, ...nodeOptions.split(/\s+/)].some(
    (a) => a.startsWith(FLAG) || a.startsWith('--heap_growing_percent'),
  );
  if (own) return undefined;
  const flag = `${FLAG}=${GROWING_PERCENT}`;
  setFlagsFromString(flag);
  return flag;
}
