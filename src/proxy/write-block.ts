/**
 * A write refused by the source's write block (`index.blocks.write`, what the switch's fence sets for writers that
 * bypass the proxy) changed nothing: the block is checked before any document is touched. Such a write is safe to
 * send again, so the proxy retries it until the block is lifted instead of handing the application a 403. A bulk
 * refused in part (its shards met the block at different moments: a block being set or lifted) has only its
 * refused items sent again, each refused item having changed nothing.
 */

/** The block the freeze sets (`FORBIDDEN/8/index write (api)`); read-only blocks from a full disk are not it. */
const WRITE_BLOCK = /FORBIDDEN\/8\/index write/;

interface ErrorBody {
  type?: unknown;
  reason?: unknown;
  root_cause?: unknown;
}

function isWriteBlock(err: unknown): boolean {
  const e = err as ErrorBody | undefined;
  return (
    !!e && e.type === 'cluster_block_exception' && typeof e.reason === 'string' && WRITE_BLOCK.test(e.reason)
  );
}

/** True when the cluster refused the whole request because the index is write-blocked. */
export function refusedByWriteBlock(status: number, body: unknown): boolean {
  if (!body || typeof body !== 'object') return false;
  const b = body as { error?: unknown; errors?: unknown; items?: unknown };
  if (status === 403) return isWriteBlock(b.error);
  if (status !== 200 || b.errors !== true || !Array.isArray(b.items) || b.items.length === 0) return false;
  return b.items.every((item) => {
    const r = Object.values(item as Record<string, { status?: number; error?: unknown }>)[0];
    return r?.status === 403 && isWriteBlock(r.error);
  });
}

/** Pause before the next try: short at first (a fence lasts a few hundred ms), at most 500 ms. */
export function blockRetryDelayMs(attempt: number): number {
  return Math.min(500, 25 * 2 ** attempt);
}

/** Positions of a bulk answer's items refused by the write block (empty when none or not a bulk answer). */
export function blockedItems(body: unknown): number[] {
  const b = body as { items?: unknown } | undefined;
  if (!b || !Array.isArray(b.items)) return [];
  const out: number[] = [];
  b.items.forEach((item, i) => {
    const r = Object.values((item ?? {}) as Record<string, { status?: number; error?: unknown }>)[0];
    if (r?.status === 403 && isWriteBlock(r.error)) out.push(i);
  });
  return out;
}
