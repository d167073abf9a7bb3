/** The one retry policy of cutover: exponential backoff with full jitter, bounded by a time budget. */

export interface RetryPolicy {
  /** first delay, ms */
  initialMs: number;
  /** ceiling for one delay, ms */
  maxMs: number;
  /** total time allowed for retries of one operation, ms */
  budgetMs: number;
}

export const TRANSPORT_RETRY: RetryPolicy = { initialMs: 200, maxMs: 5_000, budgetMs: 20_000 };
/** Bulk items get at least 60 s: a cluster shedding load (429) often needs that long. */
export const ITEM_RETRY: RetryPolicy = { initialMs: 250, maxMs: 10_000, budgetMs: 90_000 };

export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt));
  // Full jitter keeps many slices that failed together from retrying together.
  return Math.max(10, Math.floor(random() * cap));
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Run `fn` until it succeeds, `retryable` says no, or the budget is spent; the last error is rethrown.
 * `onRetry` lets callers count and report retries.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  retryable: (err: unknown) => boolean,
  policy: RetryPolicy,
  opts: { signal?: AbortSignal; onRetry?: (err: unknown, attempt: number, delayMs: number) => void } = {},
): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const delay = backoffDelay(attempt, policy);
      if (!retryable(err) || Date.now() - started + delay > policy.budgetMs) throw err;
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, opts.signal);
    }
  }
}
