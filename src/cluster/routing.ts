/**
 * Which primary shard holds a document, computed client-side exactly as Elasticsearch (IndexRouting,
 * formerly OperationRouting.generateShardId) and OpenSearch (OperationRouting.generateShardId) do, so the
 * engine can group documents per shard without a round trip each. A self-check against the server lets the
 * engine fall back to `shardOfViaServer` whenever the two disagree.
 */
import type { Cluster } from './client.js';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * ES `Murmur3HashFunction.hash(String)`: Lucene's murmurhash3_x86_32 (seed 0) over the UTF-16 code units,
 * low byte first; not over UTF-8. Two code units make one 4-byte block, so no byte buffer is needed.
 */
export function murmur3Hash(routing: string): number {
  const n = routing.length;
  let h = 0;
  for (let i = 0; i + 1 < n; i += 2) {
    let k = routing.charCodeAt(i) | (routing.charCodeAt(i + 1) << 16);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (n & 1) {
    let k = Math.imul(routing.charCodeAt(n - 1), C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const floorMod = (a: number, n: number) => ((a % n) + n) % n;

export interface RoutingParams {
  shards: number;
  routingNumShards: number;
  /** index.routing_partition_size; > 1 spreads one routing value over that many shards, keyed by `id` */
  partitionSize?: number;
  /** the document _id; required when partitionSize > 1 */
  id?: string;
}

/** The primary shard of `routing` (the _id, or the custom routing value when there is one). */
export function shardOf(routing: string, p: RoutingParams): number {
  const partitionSize = p.partitionSize ?? 1;
  let offset = 0;
  if (partitionSize > 1) {
    // ES: a partitioned index needs both the routing value and the id, the id picking the partition.
    if (p.id === undefined) throw new Error('a partitioned index (routing_partition_size > 1) needs the _id');
    offset = floorMod(murmur3Hash(p.id), partitionSize);
  }
  // Java int addition: wraps before the floorMod, and routingNumShards need not be a power of two.
  const hash = (murmur3Hash(routing) + offset) | 0;
  return Math.floor(floorMod(hash, p.routingNumShards) / Math.floor(p.routingNumShards / p.shards));
}

/**
 * MetadataCreateIndexService.calculateNumRoutingShards for indices created on 7.0+ (and all of OpenSearch):
 * the largest shards * 2^k <= 1024, with k >= 1 so every index can be split at least once.
 */
export function defaultRoutingNumShards(shards: number): number {
  const log2Shards = 32 - Math.clz32(shards - 1); // ceil(log2), as Java's numberOfLeadingZeros gives it
  return shards * 2 ** Math.max(1, 10 - log2Shards);
}

export interface ShardRouter {
  /** the concrete index name */
  index: string;
  shards: number;
  routingNumShards: number;
  partitionSize: number;
  /**
   * Where routingNumShards came from. Only 'cluster-state' is authoritative: Elasticsearch 7.17/8/9 drop an
   * explicit number_of_routing_shards from the index settings, and a shrunk/split index inherits its
   * source's value, so 'setting' and 'default' are best guesses that `selfCheck` should confirm.
   */
  source: 'cluster-state' | 'setting' | 'default';
  shardOf(id: string, routing?: string): number;
}

/** Reads what routing depends on and returns a router for one concrete index. */
export async function routingTable(cluster: Cluster, index: string): Promise<ShardRouter> {
  const all = await cluster.getSettings(index, { flat: true });
  const names = Object.keys(all);
  if (names.length !== 1) throw new Error(`routing: ${index} resolves to ${names.length} indices, not one`);
  const name = names[0]!;
  const s = all[name]!.settings;
  const shards = Number(s['index.number_of_shards']);
  const partitionSize = Number(s['index.routing_partition_size'] ?? 1);
  const routingPath = s['index.routing_path'];
  // time_series (and logsdb routed on sort fields) hash chosen _source fields, which a client cannot see.
  if (s['index.mode'] === 'time_series' || (Array.isArray(routingPath) ? routingPath.length : routingPath))
    throw new Error(
      `routing: ${name} routes on _source fields (index.routing_path); not computable client-side`,
    );

  let source: ShardRouter['source'] = 'cluster-state';
  // The only place every version exposes the effective value. It needs the `monitor` cluster privilege,
  // which a restricted user or a managed service may deny: then guess, and let the self-check judge.
  const state = await cluster.request<{
    metadata?: { indices?: Record<string, { routing_num_shards?: number }> };
  }>({
    method: 'GET',
    path: `/_cluster/state/metadata/${encodeURIComponent(name)}`,
    query: { filter_path: 'metadata.indices.*.routing_num_shards' },
    idempotent: true,
    okStatuses: 'all',
  });
  let routingNumShards =
    state.status === 200 ? state.body.metadata?.indices?.[name]?.routing_num_shards : undefined;
  if (routingNumShards === undefined && s['index.number_of_routing_shards'] !== undefined) {
    routingNumShards = Number(s['index.number_of_routing_shards']);
    source = 'setting';
  }
  if (routingNumShards === undefined) {
    // Before 7.0 the default was the shard count itself.
    const created = Number(s['index.version.created']);
    routingNumShards = created > 0 && created < 7_000_099 ? shards : defaultRoutingNumShards(shards);
    source = 'default';
  }
  if (!(shards >= 1 && routingNumShards % shards === 0 && partitionSize >= 1))
    throw new Error(
      `routing: unexpected settings for ${name}: shards ${shards}, routing shards ${routingNumShards}, partition ${partitionSize}`,
    );
  const p = { shards, routingNumShards, partitionSize };
  return {
    index: name,
    ...p,
    source,
    shardOf: (id, routing) => {
      if (partitionSize > 1 && routing === undefined)
        throw new Error(
          `routing: ${name} is partitioned (routing_partition_size ${partitionSize}); a routing value is required`,
        );
      return shardOf(routing ?? id, { ...p, id });
    },
  };
}

export interface SelfCheckResult {
  checked: number;
  mismatches: number;
  /** the first few disagreements, for the log */
  examples: Array<{ id: string; routing?: string; server: number; computed: number }>;
}

/**
 * Samples each shard via `preference=_shards:N` and counts the hits the router does not place on N.
 * Takes the sample size, or a router already built (then 20 per shard) so its exact state is what is checked.
 */
export async function selfCheck(
  cluster: Cluster,
  index: string,
  samplePerShard: number | ShardRouter = 20,
): Promise<SelfCheckResult> {
  const router = typeof samplePerShard === 'number' ? await routingTable(cluster, index) : samplePerShard;
  const size = typeof samplePerShard === 'number' ? samplePerShard : 20;
  const out: SelfCheckResult = { checked: 0, mismatches: 0, examples: [] };
  for (let n = 0; n < router.shards; n++) {
    const res = await cluster.search(
      router.index,
      { size, _source: false, query: { match_all: {} } },
      { preference: `_shards:${n}` },
    );
    if (res._shards.failed > 0) throw new Error(`routing self-check: shard ${n} of ${router.index} failed`);
    for (const h of res.hits.hits) {
      out.checked++;
      const computed = router.shardOf(h._id, h._routing);
      if (computed === n) continue;
      out.mismatches++;
      if (out.examples.length < 5) out.examples.push({ id: h._id, routing: h._routing, server: n, computed });
    }
  }
  return out;
}

/**
 * The server's own answer for one routing value (or an _id without custom routing): slow, authoritative.
 * Refuses what _search_shards would misread: commas split the value in two, and a partitioned index
 * answers with several shards.
 */
export async function shardOfViaServer(
  cluster: Cluster,
  index: string,
  routingOrId: string,
): Promise<number> {
  if (routingOrId.includes(','))
    throw new Error('routing: _search_shards splits routing values on commas; cannot ask for this one');
  const r = await cluster.request<{ shards: Array<Array<{ shard: number; primary: boolean }>> }>({
    method: 'GET',
    path: `/${encodeURIComponent(index)}/_search_shards`,
    query: { routing: routingOrId },
    idempotent: true,
  });
  const groups = r.body.shards;
  if (groups.length !== 1 || !groups[0]?.[0])
    throw new Error(`routing: _search_shards on ${index} named ${groups.length} shards, not one`);
  return groups[0][0].shard;
}
