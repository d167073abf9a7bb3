/**
 * Reads one source shard in `_seq_no` order. A slice is exactly one primary shard (PIT `slice` with
 * max = number of shards selects whole shards; scroll uses `preference=_shards:N`), so `_seq_no` is unique within
 * it and a checkpoint "everything up to seq_no S is on the target" stays valid across PITs, scrolls, crashes and
 * expired contexts: a document changed since carries a higher `_seq_no` and is simply read again.
 */
import type { Capabilities } from '../cluster/capabilities.js';
import type { Cluster, Hit, SearchResponse } from '../cluster/client.js';
import { ClusterError } from '../cluster/errors.js';
import { TRANSPORT_RETRY, withRetry } from '../cluster/retry.js';
import type { PitRegistry } from '../store/pit-registry.js';
import type { DateWindow } from '../store/state.js';

export class IncompletePageError extends Error {
  override readonly name = 'IncompletePageError';
}

export function isContextMissing(e: unknown): boolean {
  if (!(e instanceof ClusterError)) return false;
  if (e.type === 'search_context_missing_exception') return true;
  if (e.rootCause?.some((c) => c.type === 'search_context_missing_exception')) return true;
  return e.status === 404 && /search context|point in time|pit/i.test(e.reason);
}

/** An id-and-version page (no documents): the fields the proof and the id scans read, and the PIT's id. */
const ID_PAGE_FIELDS =
  'pit_id,_shards,hits.hits._id,hits.hits._routing,hits.hits._seq_no,hits.hits._primary_term,hits.hits._version';

function checkShards(res: SearchResponse, what: string): void {
  if (res._shards.failed > 0) {
    // An incomplete page would silently skip documents; never continue past one.
    throw new IncompletePageError(
      `${what}: ${res._shards.failed} of ${res._shards.total} shards failed: ${JSON.stringify(res._shards.failures ?? []).slice(0, 300)}`,
    );
  }
}

/** One PIT shared by every slice; renewed once (not once per slice) when it expired. */
export class PitSession {
  private id?: string;
  private generation = 0;
  private opening?: Promise<void>;
  renewals = 0;

  constructor(
    private readonly cluster: Cluster,
    readonly index: string,
    readonly keepAlive: string,
    /** where this migration's open PITs are recorded, and which of its clusters this one is */
    private readonly registry?: { pits: PitRegistry; side: string },
  ) {}

  async current(): Promise<{ id: string; generation: number }> {
    if (!this.id) {
      // Cleared on failure too: a rejected open must not poison every later attempt (retries open again).
      this.opening ??= this.closeLeftBehind()
        .then(() => this.cluster.openPit(this.index, this.keepAlive))
        .then(
          (id) => {
            this.id = id;
            this.generation++;
            this.opening = undefined;
            this.registry?.pits.opened({
              side: this.registry.side,
              index: this.index,
              id,
              keepAlive: this.keepAlive,
            });
          },
          (e: unknown) => {
            this.opening = undefined;
            throw e;
          },
        );
      await this.opening;
    }
    return { id: this.id!, generation: this.generation };
  }

  /**
   * PITs a process of this migration opened on this cluster and left when it died (kill -9): closed before this
   * one opens, instead of holding segments until their keep-alive runs out. Only one process of a migration runs
   * (the lock), so none of them is in use.
   */
  private async closeLeftBehind(): Promise<void> {
    const r = this.registry;
    if (!r || this.generation > 0) return;
    for (const left of r.pits.leftBehind().filter((x) => x.side === r.side)) {
      await this.cluster.closePit(left.id).catch(() => undefined);
      r.pits.closed(left.id);
    }
  }

  /** Called by a slice that saw its PIT vanish; only the first caller of a generation reopens. */
  async renew(seenGeneration: number): Promise<void> {
    if (seenGeneration === this.generation && this.id) {
      this.registry?.pits.closed(this.id);
      this.id = undefined;
      this.renewals++;
    }
    await this.current();
  }

  /** The cluster may hand back a new id for the same PIT; the newest one must be used. */
  update(id: string | undefined, generation: number): void {
    if (id && generation === this.generation) {
      if (this.id && id !== this.id) this.registry?.pits.replaced(this.id, id);
      this.id = id;
    }
  }

  async close(): Promise<void> {
    const id = this.id;
    this.id = undefined;
    if (!id) return;
    // Forgotten only once closed: a PIT the cluster did not confirm closing is left to the next process.
    await this.cluster.closePit(id).then(
      () => this.registry?.pits.closed(id),
      () => undefined,
    );
  }
}

export interface ReaderOptions {
  batchDocs: number;
  /** the page size now, when it can change while the copy runs (the operator's `batch N`); PIT pages only */
  pageSize?: () => number;
  keepAlive: string;
  /** ask for _version too (versioning: source-version) */
  withVersion: boolean;
  /** false: ids, routing and _seq_no only (verification of the target side) */
  withSource?: boolean;
  /** each hit's `_source` left unparsed as `_raw` (PIT pages; the copy without a transform) */
  lean?: boolean;
  signal?: AbortSignal;
  onContextLost?: (slice: number) => void;
  /** read only this `_seq_no` range of the shard, and this time window of it (a stream of the copy's plan,
   * ranges.ts); default: all of it */
  range?: { from: number; to: number | null; window?: DateWindow };
  /** the copy's slice number, when the shard is read in ranges (messages name it) */
  slice?: number;
}

/**
 * The bounds of a page: `_seq_no` above `after` (or from the range's start) and below the range's end, inside the
 * stream's time window. The window is a filter, so the order (and the checkpoint) stays `_seq_no` within it.
 */
function streamQuery(after: number | null, range?: ReaderOptions['range']): unknown {
  const from = range?.from ?? 0;
  const bound: Record<string, number> = after === null ? { gte: from } : { gt: after };
  if (range?.to !== undefined && range.to !== null) bound.lt = range.to;
  const seq =
    after === null && from === 0 && bound.lt === undefined ? undefined : { range: { _seq_no: bound } };
  const w = range?.window;
  if (!w) return seq ?? { match_all: {} };
  const filter: unknown[] = seq ? [seq] : [];
  if ('missing' in w) return { bool: { filter, must_not: [{ exists: { field: w.field } }] } };
  const dates: Record<string, number | string> = { format: 'epoch_millis' };
  if (w.gte !== null) dates.gte = w.gte;
  if (w.lt !== null) dates.lt = w.lt;
  // Both ends open: every document with the field (a plan of one window).
  filter.push(
    w.gte === null && w.lt === null ? { exists: { field: w.field } } : { range: { [w.field]: dates } },
  );
  return { bool: { filter } };
}

export interface SliceReader {
  readonly slice: number;
  /** the next page of documents with `_seq_no` > after, in `_seq_no` order; [] at the end */
  next(after: number | null): Promise<Hit[]>;
  close(): Promise<void>;
}

export class PitSliceReader implements SliceReader {
  constructor(
    private readonly cluster: Cluster,
    private readonly pit: PitSession,
    readonly slice: number,
    private readonly slices: number,
    private readonly opts: ReaderOptions,
  ) {}

  async next(after: number | null): Promise<Hit[]> {
    return withRetry(
      async () => {
        const { id, generation } = await this.pit.current();
        const body: Record<string, unknown> = {
          size: this.opts.pageSize?.() ?? this.opts.batchDocs,
          pit: { id, keep_alive: this.opts.keepAlive },
          sort: [{ _seq_no: 'asc' }],
          seq_no_primary_term: true,
          track_total_hits: false,
          version: this.opts.withVersion || undefined,
          _source: this.opts.withSource === false ? false : undefined,
        };
        if (this.slices > 1) body.slice = { id: this.slice, max: this.slices };
        if (after !== null) body.search_after = [after];
        // A range of the shard: its bounds as a query (search_after moves within them).
        const r = this.opts.range;
        if (r && (r.from > 0 || r.to !== null || r.window)) body.query = streamQuery(null, r);
        let res: SearchResponse;
        try {
          // Without documents (the proof's id and version pages) the scanner reads the same answer JSON.parse
          // would, from bytes: no page-sized string left to a full collection (search-page.ts).
          // Those pages also leave out what no one reads (_index, _score and sort on every hit): a third of their
          // bytes and an array per hit. Never with documents: filtering makes the server re-parse every _source.
          res =
            this.opts.withSource === false
              ? await this.cluster.searchLean(undefined, body, this.opts.signal, {
                  filter_path: ID_PAGE_FIELDS,
                })
              : this.opts.lean
                ? await this.cluster.searchLean(undefined, body, this.opts.signal)
                : await this.cluster.search(undefined, body, undefined, this.opts.signal);
        } catch (e) {
          if (isContextMissing(e)) {
            // keep_alive was outlived (a long pause): a new PIT and the same checkpoint lose nothing.
            this.opts.onContextLost?.(this.slice);
            await this.pit.renew(generation);
          }
          throw e;
        }
        checkShards(res, `slice ${this.opts.slice ?? this.slice}`);
        this.pit.update(res.pit_id, generation);
        // A filtered answer without hits has no `hits` at all.
        return res.hits?.hits ?? [];
      },
      (e) => isContextMissing(e) || e instanceof IncompletePageError,
      TRANSPORT_RETRY,
      { signal: this.opts.signal },
    );
  }

  async close(): Promise<void> {}
}

/**
 * Fallback for clusters without PIT. A scroll page cannot be re-read once the scroll moved on, so any failure
 * (or a request for a position other than where the scroll stands) starts a fresh scroll from the checkpoint.
 */
export class ScrollSliceReader implements SliceReader {
  private scrollId?: string;
  private position: number | null | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly index: string,
    readonly slice: number,
    private readonly opts: ReaderOptions,
  ) {}

  async next(after: number | null): Promise<Hit[]> {
    return withRetry(
      async () => {
        let res: SearchResponse;
        try {
          if (this.scrollId && this.position === after) {
            res = await this.cluster.scroll(this.scrollId, this.opts.keepAlive);
          } else {
            await this.close();
            res = await this.cluster.search(
              this.index,
              {
                size: this.opts.batchDocs,
                sort: [{ _seq_no: 'asc' }],
                seq_no_primary_term: true,
                version: this.opts.withVersion || undefined,
                query: streamQuery(after, this.opts.range),
              },
              { scroll: this.opts.keepAlive, preference: `_shards:${this.slice}` },
              this.opts.signal,
            );
          }
          checkShards(res, `slice ${this.slice}`);
        } catch (e) {
          this.scrollId = undefined;
          if (isContextMissing(e)) this.opts.onContextLost?.(this.slice);
          throw e;
        }
        this.scrollId = res._scroll_id;
        const hits = res.hits.hits;
        this.position = hits.length ? (hits[hits.length - 1]!._seq_no ?? null) : after;
        return hits;
      },
      (e) =>
        isContextMissing(e) || e instanceof IncompletePageError || (e instanceof ClusterError && e.transient),
      TRANSPORT_RETRY,
      { signal: this.opts.signal },
    );
  }

  async close(): Promise<void> {
    const id = this.scrollId;
    this.scrollId = undefined;
    if (id) await this.cluster.clearScroll(id).catch(() => undefined);
  }
}

export function usesPit(caps: Capabilities): boolean {
  return caps.pit !== null;
}
