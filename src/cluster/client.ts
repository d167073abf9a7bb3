/**
 * Typed calls over the one Transport. Only what cutover needs, shaped for Elasticsearch 7.17/8/9 and
 * OpenSearch 2/3 alike; differences (PIT API, version discovery) are resolved here, not by callers.
 */
import { type Capabilities, capabilitiesFor, type Distribution } from './capabilities.js';
import { ClusterError } from './errors.js';
import type { Hit, SearchResponse } from './hits.js';
import { scanSearchPage, UnreadableSearchPage } from './search-page.js';
import {
  type ClusterConfig,
  type Query,
  type RequestOptions,
  type Response,
  Transport,
} from './transport.js';

export type { Hit, SearchResponse } from './hits.js';

export interface BulkItemResult {
  _index: string;
  _id: string;
  status: number;
  _version?: number;
  _seq_no?: number;
  result?: string;
  error?: { type: string; reason: string; caused_by?: { type?: string; reason?: string } };
}

export interface BulkResponse {
  took: number;
  errors: boolean;
  items: Array<Record<string, BulkItemResult>>;
}

export type AliasAction =
  | { add: { index: string; alias: string; is_write_index?: boolean; routing?: string; filter?: unknown } }
  | { remove: { index: string; alias: string } }
  | { remove_index: { index: string } };

export interface IndexAliases {
  [index: string]: {
    aliases: Record<string, { is_write_index?: boolean; filter?: unknown; routing?: string }>;
  };
}

export interface ClusterHealth {
  status: 'green' | 'yellow' | 'red';
  relocating_shards: number;
  initializing_shards: number;
  unassigned_shards: number;
  number_of_nodes: number;
  timed_out?: boolean;
}

export class Cluster {
  readonly transport: Transport;
  private caps?: Promise<Capabilities>;

  constructor(config: ClusterConfig | Transport) {
    this.transport = config instanceof Transport ? config : new Transport(config);
  }

  get displayUrl(): string {
    return this.transport.displayUrl;
  }

  request<T = unknown>(opts: RequestOptions): Promise<Response<T>> {
    return this.transport.request<T>(opts);
  }

  /**
   * Wait until a task (a by-query started with wait_for_completion=false) has finished. A task the cluster no
   * longer knows (404) has finished too: its node forgot it, and nothing it did is still to come.
   */
  async waitForTask(id: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const r = await this.request<{ completed?: boolean }>({
        method: 'GET',
        path: `/_tasks/${encodeURIComponent(id)}`,
        query: { wait_for_completion: 'true', timeout: '30s' },
        idempotent: true,
        okStatuses: [404, 408],
        signal,
      });
      if (r.status === 404 || r.body.completed === true) return;
    }
  }

  // ---- the server's own reindex ------------------------------------------------------------------------
  /** Start `_reindex` as a background task; its id (node:number). */
  async startReindex(body: unknown, query: Query): Promise<string> {
    const r = await this.request<{ task?: string }>({
      method: 'POST',
      path: '/_reindex',
      body,
      query: { ...query, wait_for_completion: 'false' },
    });
    if (!r.body.task)
      throw new Error(`_reindex answered without a task id: ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body.task;
  }

  /** A task as the cluster knows it now; undefined when it forgot it (404: its node restarted). */
  async task<S = unknown, R = unknown>(
    id: string,
  ): Promise<
    | { completed: boolean; task?: { status?: S }; response?: R; error?: { type?: string; reason?: string } }
    | undefined
  > {
    const r = await this.request<{
      completed: boolean;
      task?: { status?: S };
      response?: R;
      error?: { type?: string; reason?: string };
    }>({ method: 'GET', path: `/_tasks/${encodeURIComponent(id)}`, idempotent: true, okStatuses: [404] });
    return r.status === 404 ? undefined : r.body;
  }

  /** New pace of a running reindex, in documents per second (-1: unlimited). */
  async rethrottleReindex(id: string, docsPerSecond: number): Promise<void> {
    await this.request({
      method: 'POST',
      path: `/_reindex/${encodeURIComponent(id)}/_rethrottle`,
      query: { requests_per_second: String(docsPerSecond) },
      idempotent: true,
      okStatuses: [404],
    });
  }

  async cancelTask(id: string): Promise<void> {
    await this.request({
      method: 'POST',
      path: `/_tasks/${encodeURIComponent(id)}/_cancel`,
      idempotent: true,
      okStatuses: [404],
    });
  }

  private async get<T>(path: string, query?: Query, okStatuses?: number[]): Promise<T> {
    return (await this.request<T>({ method: 'GET', path, query, idempotent: true, okStatuses })).body;
  }

  /** Distribution, version and features; cached. `GET /` may be absent (integ-test zips), so fall back to nodes info. */
  capabilities(): Promise<Capabilities> {
    this.caps ??= this.detect();
    return this.caps;
  }

  private async detect(): Promise<Capabilities> {
    const nodes = await this.get<{
      nodes: Record<
        string,
        { version: string; distribution?: string; build_flavor?: string; modules?: Array<{ name: string }> }
      >;
    }>('/_nodes/_local', { filter_path: 'nodes.*.version,nodes.*.distribution,nodes.*.modules.name' });
    const node = Object.values(nodes.nodes ?? {})[0];
    if (!node) throw new Error('cannot detect cluster version: _nodes/_local returned no node');
    let distribution: Distribution = 'elasticsearch';
    let version = node.version;
    const root = await this.request<{ version?: { number?: string; distribution?: string } }>({
      method: 'GET',
      path: '/',
      idempotent: true,
      okStatuses: [400, 403, 404, 405],
    }).catch(() => undefined);
    if (root?.status === 200 && root.body.version?.number) {
      version = root.body.version.number;
      if (root.body.version.distribution === 'opensearch') distribution = 'opensearch';
    }
    // OpenSearch 1.x+ reports "distribution" only via GET /; its node modules also give it away.
    const modules = (node.modules ?? []).map((m) => m.name);
    if (node.distribution === 'opensearch' || modules.some((m) => m.startsWith('opensearch')))
      distribution = 'opensearch';
    return capabilitiesFor(distribution, version, modules);
  }

  // ---- indices ---------------------------------------------------------------------------------
  /** GET rather than HEAD: a refusal (401/403) then comes with the server's reason instead of an empty body. */
  async indexExists(index: string): Promise<boolean> {
    const r = await this.request({
      method: 'GET',
      path: `/${enc(index)}`,
      query: { filter_path: '*.settings.index.uuid' },
      idempotent: true,
      okStatuses: [404],
    });
    return r.status === 200;
  }

  async createIndex(
    index: string,
    body: { settings?: unknown; mappings?: unknown; aliases?: unknown },
  ): Promise<void> {
    await this.request({ method: 'PUT', path: `/${enc(index)}`, body });
  }

  async getIndex(index: string): Promise<
    Record<
      string,
      {
        settings: { index: Record<string, unknown> };
        mappings: Record<string, unknown>;
        aliases: Record<string, unknown>;
      }
    >
  > {
    return this.get(`/${enc(index)}`);
  }

  async deleteIndex(index: string): Promise<void> {
    await this.request({ method: 'DELETE', path: `/${enc(index)}`, idempotent: true });
  }

  async getMapping(index: string): Promise<Record<string, { mappings: Record<string, unknown> }>> {
    return this.get(`/${enc(index)}/_mapping`);
  }

  async putMapping(index: string, mappings: unknown): Promise<void> {
    await this.request({ method: 'PUT', path: `/${enc(index)}/_mapping`, body: mappings, idempotent: true });
  }

  async getSettings(
    index: string,
    opts: { flat?: boolean; includeDefaults?: boolean } = {},
  ): Promise<Record<string, { settings: Record<string, unknown>; defaults?: Record<string, unknown> }>> {
    return this.get(`/${enc(index)}/_settings`, {
      flat_settings: opts.flat ?? true,
      include_defaults: opts.includeDefaults || undefined,
    });
  }

  /**
   * Write-block an index with the add-index-block API (`index.blocks.write`, lifted like any setting). Unlike the
   * setting alone, the API answers only once every shard accounts for the block and every write admitted before it
   * has completed: a write past the block check but not yet given its `_seq_no` cannot land after a drain that saw
   * every shard settled. `confirmed` is false when a shard did not verify the block. A cluster without the API
   * (Elasticsearch before 7.9) gets the setting, and `verified` says the writes in flight were not waited for.
   */
  async addWriteBlock(index: string): Promise<{ confirmed: boolean; verified: boolean }> {
    if (!(await this.capabilities()).writeBlockApi) {
      await this.putSettings(index, { 'index.blocks.write': true });
      return { confirmed: true, verified: false };
    }
    const r = await this.request<{
      acknowledged?: boolean;
      shards_acknowledged?: boolean;
      indices?: Array<{ name?: string; blocked?: boolean }>;
    }>({ method: 'PUT', path: `/${enc(index)}/_block/write`, idempotent: true });
    const b = r.body;
    return {
      verified: true,
      confirmed:
        b.acknowledged === true &&
        b.shards_acknowledged !== false &&
        (b.indices ?? []).every((i) => i.blocked !== false),
    };
  }

  async putSettings(index: string, settings: Record<string, unknown>): Promise<void> {
    await this.request({ method: 'PUT', path: `/${enc(index)}/_settings`, body: settings, idempotent: true });
  }

  // ---- aliases -----------------------------------------------------------------------------------
  /** Indices an alias points at; an empty object when the alias does not exist. */
  async getAlias(alias: string): Promise<IndexAliases> {
    const r = await this.request<IndexAliases>({
      method: 'GET',
      path: `/_alias/${enc(alias)}`,
      idempotent: true,
      okStatuses: [404],
    });
    return r.status === 404 ? {} : r.body;
  }

  async getIndexAliases(index: string): Promise<IndexAliases> {
    return this.get(`/${enc(index)}/_alias`);
  }

  /** One request: Elasticsearch applies all actions atomically. */
  async updateAliases(actions: AliasAction[]): Promise<void> {
    await this.request({ method: 'POST', path: '/_aliases', body: { actions } });
  }

  // ---- documents ---------------------------------------------------------------------------------
  async bulk(
    ndjson: string | Buffer,
    opts: { refresh?: boolean | 'wait_for'; gzip?: boolean; signal?: AbortSignal } = {},
  ): Promise<BulkResponse> {
    const r = await this.request<BulkResponse>({
      method: 'POST',
      path: '/_bulk',
      body: ndjson,
      ndjson: true,
      gzip: opts.gzip,
      query: {
        refresh: opts.refresh === undefined ? undefined : String(opts.refresh),
        filter_path:
          'took,errors,items.*._id,items.*._index,items.*.status,items.*.error,items.*._version,items.*._seq_no,items.*.result',
      },
      signal: opts.signal,
    });
    return r.body;
  }

  async mget<S = Record<string, unknown>>(
    index: string,
    ids: Array<string | { _id: string; routing?: string }>,
    opts: { source?: boolean; signal?: AbortSignal } = {},
  ): Promise<{ docs: Array<Hit<S> & { found: boolean }> }> {
    const docs = ids.map((d) => (typeof d === 'string' ? { _id: d } : d));
    // Without sources (existence and versions, thousands at a time in the proof) read from bytes: the same
    // answer, no page-sized string (search-page.ts).
    if (opts.source === false)
      return (await this.mgetLean(index, docs, opts.signal, { _source: false })) as {
        docs: Array<Hit<S> & { found: boolean }>;
      };
    const r = await this.request<{ docs: Array<Hit<S> & { found: boolean }> }>({
      method: 'POST',
      path: `/${enc(index)}/_mget`,
      body: { docs },
      idempotent: true,
      signal: opts.signal,
    });
    return { docs: docsRead(index, r.body.docs) };
  }

  async count(index: string, query?: unknown): Promise<number> {
    const r = await this.request<{ count: number; _shards: { failed: number } }>({
      method: 'POST',
      path: `/${enc(index)}/_count`,
      body: query ? { query } : undefined,
      idempotent: true,
    });
    if (r.body._shards.failed > 0)
      throw new Error(`_count on ${index} had ${r.body._shards.failed} failed shards`);
    return r.body.count;
  }

  async refresh(index: string): Promise<void> {
    await this.request({ method: 'POST', path: `/${enc(index)}/_refresh`, idempotent: true });
  }

  // ---- search ------------------------------------------------------------------------------------
  async search<S = Record<string, unknown>>(
    index: string | undefined,
    body: unknown,
    query?: Query,
    signal?: AbortSignal,
  ): Promise<SearchResponse<S>> {
    const path = index === undefined ? '/_search' : `/${enc(index)}/_search`;
    return (
      await this.request<SearchResponse<S>>({ method: 'POST', path, body, query, idempotent: true, signal })
    ).body;
  }

  /** A search whose hits carry `_raw`, their `_source` unparsed (search-page.ts). */
  async searchLean(
    index: string | undefined,
    body: unknown,
    signal?: AbortSignal,
    query?: Query,
  ): Promise<SearchResponse> {
    const path = index === undefined ? '/_search' : `/${enc(index)}/_search`;
    const r = await this.request<Buffer>({
      method: 'POST',
      path,
      body,
      query,
      idempotent: true,
      signal,
      raw: true,
    });
    return scanSearchPage(r.body);
  }

  /** `_mget` whose found documents carry `_raw`, their `_source` unparsed (search-page.ts). */
  async mgetLean(
    index: string,
    ids: Array<{ _id: string; routing?: string }>,
    signal?: AbortSignal,
    query?: Query,
  ): Promise<{ docs: Array<Hit & { found: boolean }> }> {
    const r = await this.request<Buffer>({
      method: 'POST',
      path: `/${enc(index)}/_mget`,
      body: { docs: ids },
      query,
      idempotent: true,
      signal,
      raw: true,
    });
    const page = scanSearchPage(r.body);
    if (!page.docs) throw new UnreadableSearchPage('an _mget answer without docs');
    return { docs: docsRead(index, page.docs) };
  }

  /** Open a point in time on `index`; the PIT API differs between Elasticsearch and OpenSearch. */
  async openPit(index: string, keepAlive: string): Promise<string> {
    const caps = await this.capabilities();
    if (caps.pit === 'es') {
      const r = await this.request<{ id: string }>({
        method: 'POST',
        path: `/${enc(index)}/_pit`,
        query: { keep_alive: keepAlive },
      });
      return r.body.id;
    }
    if (caps.pit === 'opensearch') {
      const r = await this.request<{ pit_id: string }>({
        method: 'POST',
        path: `/${enc(index)}/_search/point_in_time`,
        query: { keep_alive: keepAlive },
      });
      return r.body.pit_id;
    }
    throw new Error(`${caps.distribution} ${caps.version} has no point-in-time API`);
  }

  async closePit(id: string): Promise<void> {
    const caps = await this.capabilities();
    const opts: RequestOptions =
      caps.pit === 'opensearch'
        ? { method: 'DELETE', path: '/_search/point_in_time', body: { pit_id: [id] }, okStatuses: [404] }
        : { method: 'DELETE', path: '/_pit', body: { id }, okStatuses: [404] };
    await this.request({ ...opts, idempotent: true });
  }

  /** Scroll ids grow with the shard count: always sent in the body. A scroll page cannot be re-read, so no retry here. */
  async scroll<S = Record<string, unknown>>(scrollId: string, keepAlive: string): Promise<SearchResponse<S>> {
    return (
      await this.request<SearchResponse<S>>({
        method: 'POST',
        path: '/_search/scroll',
        body: { scroll: keepAlive, scroll_id: scrollId },
      })
    ).body;
  }

  async clearScroll(scrollId: string): Promise<void> {
    await this.request({
      method: 'DELETE',
      path: '/_search/scroll',
      body: { scroll_id: scrollId },
      okStatuses: [404],
      idempotent: true,
    });
  }

  // ---- cluster -----------------------------------------------------------------------------------
  async health(index?: string, query?: Query): Promise<ClusterHealth> {
    return this.get(index ? `/_cluster/health/${enc(index)}` : '/_cluster/health', query, [408]);
  }

  async clusterSettings(): Promise<{
    persistent: Record<string, unknown>;
    transient: Record<string, unknown>;
  }> {
    return this.get('/_cluster/settings', { flat_settings: true });
  }

  async putClusterSettings(body: {
    persistent?: Record<string, unknown>;
    transient?: Record<string, unknown>;
  }): Promise<void> {
    await this.request({ method: 'PUT', path: '/_cluster/settings', body, idempotent: true });
  }

  async threadPools(
    pools = 'write,search',
  ): Promise<Array<{ node_name: string; name: string; active: string; queue: string; rejected: string }>> {
    return this.get(`/_cat/thread_pool/${pools}`, {
      format: 'json',
      h: 'node_name,name,active,queue,rejected',
    });
  }

  async tasks(query: Query = {}): Promise<{ nodes: Record<string, { tasks: Record<string, unknown> }> }> {
    return this.get('/_tasks', query);
  }

  async nodesStats(
    metrics = 'jvm,fs,breaker,indices',
  ): Promise<{ nodes: Record<string, Record<string, unknown>> }> {
    return this.get(`/_nodes/stats/${metrics}`);
  }

  /**
   * Per primary shard: max_seq_no, local and global checkpoint. Every operation on a shard (index, delete, no-op)
   * raises max_seq_no, so an unchanged max_seq_no means an unchanged shard.
   */
  async shardSeqNos(
    index: string,
  ): Promise<Array<{ maxSeqNo: number; localCheckpoint: number; globalCheckpoint: number }>> {
    const r = await this.get<{
      indices: Record<
        string,
        {
          shards: Record<
            string,
            Array<{
              routing: { primary: boolean };
              seq_no: { max_seq_no: number; local_checkpoint: number; global_checkpoint: number };
            }>
          >;
        }
      >;
    }>(`/${enc(index)}/_stats/docs`, {
      level: 'shards',
      filter_path: 'indices.*.shards.*.routing.primary,indices.*.shards.*.seq_no',
    });
    const shards = Object.values(r.indices ?? {})[0]?.shards ?? {};
    const out: Array<{ maxSeqNo: number; localCheckpoint: number; globalCheckpoint: number }> = [];
    for (const [n, copies] of Object.entries(shards)) {
      const p = copies.find((c) => c.routing.primary);
      if (!p) throw new Error(`${index} shard ${n} has no started primary`);
      out[Number(n)] = {
        maxSeqNo: p.seq_no.max_seq_no,
        localCheckpoint: p.seq_no.local_checkpoint,
        globalCheckpoint: p.seq_no.global_checkpoint,
      };
    }
    return out;
  }

  /**
   * Delete operations the index's primaries have processed (`_stats` indexing.delete_total): a counter that moves
   * whenever a document may have been deleted (also for deletes of missing ids, so it can only over-report).
   */
  async deleteTotal(index: string): Promise<number> {
    const r = await this.get<{
      indices?: Record<string, { primaries?: { indexing?: { delete_total?: number } } }>;
    }>(`/${enc(index)}/_stats/indexing`, { filter_path: 'indices.*.primaries.indexing.delete_total' });
    const n = Object.values(r.indices ?? {})[0]?.primaries?.indexing?.delete_total;
    if (typeof n !== 'number') throw new Error(`cannot read indexing.delete_total of ${index}`);
    return n;
  }

  /** Primary shard count of an index, from its settings. */
  async primaryShards(index: string): Promise<number> {
    const s = await this.getSettings(index);
    const first = Object.values(s)[0];
    const n = Number(first?.settings['index.number_of_shards']);
    if (!Number.isInteger(n) || n < 1) throw new Error(`cannot read number_of_shards of ${index}`);
    return n;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** Index names go into URL paths; encode everything but the comma used for multi-index targets. */
function enc(name: string): string {
  return encodeURIComponent(name).replace(/%2C/gi, ',');
}

export { ClusterError };

/**
 * An `_mget` answers 200 with a per-document `error` where it could not read one (a shard unavailable, a routing
 * required and missing). That document has no `found`: read as "not found" it would be deleted from the target by
 * a reconcile or called missing by the proof. Refused instead, as the whole request would have been.
 */
function docsRead<D extends { _id: string; found?: boolean }>(index: string, docs: D[]): D[] {
  for (const d of docs) {
    const err = (d as { error?: { type?: string; reason?: string } | string }).error;
    if (err === undefined) continue;
    const type = typeof err === 'string' ? 'error' : (err.type ?? 'error');
    const reason = typeof err === 'string' ? err : (err.reason ?? '');
    throw new ClusterError(
      // A shard that is not there now may be soon: transient, as the same failure of a whole request is.
      /unavailable|no_shard|timeout/.test(type) ? 503 : 500,
      type,
      `document ${d._id} could not be read: ${reason}`,
      'POST',
      `/${index}/_mget`,
    );
  }
  return docs;
}
