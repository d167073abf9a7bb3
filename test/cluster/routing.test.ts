/**
 * Client-side shard routing against every server of the matrix: for each document, the shard the router
 * computes must be the shard the server searched it on (preference=_shards:N), for default, explicit,
 * partitioned and shrunk routing setups and ids of every shape.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cluster } from '../../src/cluster/client.js';
import {
  defaultRoutingNumShards,
  routingTable,
  type ShardRouter,
  selfCheck,
  shardOfViaServer,
} from '../../src/cluster/routing.js';
import type { RequestOptions, Response } from '../../src/cluster/transport.js';
import { FLAVORS, MATRIX, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, type Docs, seed } from '../support/data.js';

const WORDS = [
  'élan',
  'straße',
  '中文文档',
  'Ελληνικά',
  'русский',
  'עברית',
  'a b+c/d?e',
  '😀',
  '👩‍👩‍👧‍👦',
  '𝄞music',
];

/** ~300 ids: ascii, numeric, BMP and non-BMP unicode, long; every seventh with a custom routing value. */
function makeDoc(
  i: number,
  partitioned = false,
): { id: string; doc: Record<string, unknown>; routing?: string } {
  const word = WORDS[i % WORDS.length]!;
  const id = [
    `doc-${i}`,
    String(i),
    `${word}-${i}`,
    `${'long-id-'.repeat(40)}${i}`,
    `${'😀'.repeat(50)}${i}`, // 200 UTF-8 bytes of surrogate pairs
  ][i % 5]!;
  const routing = partitioned || i % 7 === 0 ? `${WORDS[i % 3]}-r${i % 11}` : undefined;
  return { id, doc: { i }, routing };
}

/** The shard each document lives on, as the server says: a search restricted to one shard at a time. */
async function serverShards(c: Cluster, index: string, shards: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let n = 0; n < shards; n++) {
    const res = await c.search(index, { size: 1000, _source: false }, { preference: `_shards:${n}` });
    for (const h of res.hits.hits) {
      assert.ok(!out.has(h._id), `${h._id} found on two shards`);
      out.set(h._id, n);
    }
  }
  return out;
}

function assertAgrees(router: ShardRouter, docs: Docs, server: Map<string, number>): void {
  assert.equal(server.size, docs.size, 'every document was found on some shard');
  const wrong: string[] = [];
  for (const [id, d] of docs) {
    const computed = router.shardOf(id, d.routing);
    if (computed !== server.get(id))
      wrong.push(`${id} (routing ${d.routing}): ${computed} vs ${server.get(id)}`);
  }
  assert.deepEqual(wrong, []);
  assert.ok(new Set(server.values()).size === router.shards, 'documents reached every shard');
}

for (const kind of MATRIX) {
  describe(`shard routing on ${kind}`, () => {
    for (const [shards, explicit] of [
      [1, undefined],
      [3, undefined],
      [5, undefined],
      [3, 30],
    ] as const) {
      it(`${shards} shards${explicit ? `, number_of_routing_shards ${explicit}` : ''}: every doc lands where computed`, async () => {
        const c = clusterOf(testCluster(kind));
        const index = uniqueName(`routing-${shards}-${explicit ?? 'default'}`);
        const settings = {
          number_of_shards: shards,
          number_of_replicas: 0,
          number_of_routing_shards: explicit,
        };
        const docs = await seed(c, index, 300, (i) => makeDoc(i), { settings });
        const router = await routingTable(c, index);
        assert.equal(router.source, 'cluster-state');
        assert.equal(router.routingNumShards, explicit ?? defaultRoutingNumShards(shards));
        assertAgrees(router, docs, await serverShards(c, index, shards));

        const check = await selfCheck(c, index, 20);
        assert.equal(check.mismatches, 0, JSON.stringify(check.examples));
        assert.equal(check.checked, Math.min(300, 20 * shards));

        // _search_shards names the same shard, for ids and custom routing values alike.
        for (const i of [0, 1, 2, 3, 4, 7, 14]) {
          const { id, routing } = makeDoc(i);
          assert.equal(await shardOfViaServer(c, index, routing ?? id), router.shardOf(id, routing), id);
        }
        await c.deleteIndex(index);
        await c.close();
      });
    }

    it('a partitioned index (routing_partition_size 2) spreads one routing value, offset by the id', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('routing-partitioned');
      const docs = await seed(c, index, 300, (i) => makeDoc(i, true), {
        settings: { number_of_shards: 4, number_of_replicas: 0, routing_partition_size: 2 },
        mappings: { _routing: { required: true } },
      });
      const router = await routingTable(c, index);
      assert.equal(router.partitionSize, 2);
      assert.throws(() => router.shardOf('doc-1'), /routing value is required/);
      assertAgrees(router, docs, await serverShards(c, index, 4));
      assert.equal((await selfCheck(c, index)).mismatches, 0);
      await c.deleteIndex(index);
      await c.close();
    });

    it('without the cluster state, guesses from settings and the self-check catches a wrong guess', async () => {
      const c = clusterOf(testCluster(kind));
      // A user without the `monitor` privilege: the cluster state answers 403.
      const denied = new (class extends Cluster {
        override request<T>(opts: RequestOptions): Promise<Response<T>> {
          if (opts.path.startsWith('/_cluster/state'))
            return Promise.resolve({ status: 403, body: {} as T, headers: {} });
          return super.request<T>(opts);
        }
      })(c.transport);
      const index = uniqueName('routing-guess');
      await seed(c, index, 300, (i) => makeDoc(i), {
        settings: { number_of_shards: 3, number_of_replicas: 0, number_of_routing_shards: 30 },
      });
      const router = await routingTable(denied, index);
      const check = await selfCheck(denied, index, 50);
      if (FLAVORS[kind].distribution === 'opensearch') {
        // OpenSearch keeps an explicit number_of_routing_shards in the index settings.
        assert.equal(router.source, 'setting');
        assert.equal(router.routingNumShards, 30);
        assert.equal(check.mismatches, 0);
      } else {
        // Elasticsearch drops it from the settings (include_defaults even shows number_of_shards).
        assert.equal(router.source, 'default');
        assert.equal(router.routingNumShards, 768);
        assert.ok(check.mismatches > 0, `${check.mismatches} of ${check.checked} disagree`);
      }
      await c.deleteIndex(index);
      await c.close();
    });

    it('a shrunk index keeps its source’s routing shards, which only the cluster state tells', async () => {
      const c = clusterOf(testCluster(kind));
      const source = uniqueName('routing-shrink-src');
      const target = uniqueName('routing-shrink-dst');
      const docs = await seed(c, source, 300, (i) => makeDoc(i), {
        settings: { number_of_shards: 6, number_of_replicas: 0 },
      });
      await c.putSettings(source, { 'index.blocks.write': true });
      await c.request({
        method: 'POST',
        path: `/${source}/_shrink/${target}`,
        body: {
          settings: {
            'index.number_of_shards': 2,
            'index.number_of_replicas': 0,
            'index.blocks.write': null,
          },
        },
      });
      await c.health(target, { wait_for_status: 'green', timeout: '30s' });
      const router = await routingTable(c, target);
      // 6 shards route over 768; a fresh 2-shard index would use 1024 and place documents elsewhere.
      assert.equal(router.routingNumShards, 768);
      assert.notEqual(defaultRoutingNumShards(2), 768);
      assertAgrees(router, docs, await serverShards(c, target, 2));
      await c.deleteIndex(target);
      await c.deleteIndex(source);
      await c.close();
    });
  });
}
