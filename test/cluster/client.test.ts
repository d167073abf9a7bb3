/** The one cluster client against every server of the matrix: detection, aliases, bulk errors, PIT, scroll. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PresenceWatcher } from '../../src/capture/journal-sync.js';
import { ClusterError } from '../../src/cluster/errors.js';
import { routingTable } from '../../src/cluster/routing.js';
import type { DeadLetter } from '../../src/copy/dead-letters.js';
import { isContextMissing, PitSession, PitSliceReader, ScrollSliceReader } from '../../src/copy/reader.js';
import type { DocRef } from '../../src/copy/slice-copier.js';
import { BulkWriter, type WriteOp } from '../../src/copy/writer.js';
import { SourceCountWatch } from '../../src/cutover/source-count.js';
import { countFromTally, takeCountBase } from '../../src/cutover/target-count.js';
import { FLAVORS, MATRIX, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, seed } from '../support/data.js';

for (const kind of MATRIX) {
  describe(`cluster client on ${kind}`, () => {
    it('detects distribution, version and capabilities', async () => {
      const c = clusterOf(testCluster(kind));
      const caps = await c.capabilities();
      assert.equal(caps.distribution, FLAVORS[kind].distribution);
      assert.equal(caps.major, FLAVORS[kind].major);
      assert.equal(caps.pit, caps.distribution === 'opensearch' ? 'opensearch' : 'es');
      assert.equal(caps.seqNoPrimaryTerm, true);
      // The ES 8/9 integ-test zips have no reindex module; the OpenSearch one does, and the 7.17 one gets it from
      // Maven (src/local/reindex-module.ts).
      assert.equal(caps.reindex, caps.distribution === 'opensearch' || caps.major === 7);
      await c.close();
    });

    it('switches an alias atomically: a concurrent reader never sees zero or two indices', async () => {
      const c = clusterOf(testCluster(kind));
      const a = uniqueName('swap-a');
      const b = uniqueName('swap-b');
      const alias = `${a}-alias`;
      await c.createIndex(a, {
        settings: { number_of_shards: 1, number_of_replicas: 0 },
        aliases: { [alias]: {} },
      });
      await c.createIndex(b, { settings: { number_of_shards: 1, number_of_replicas: 0 } });
      await c.bulk(
        `{"index":{"_index":"${a}","_id":"only-a"}}\n{"side":"a"}\n{"index":{"_index":"${b}","_id":"only-b"}}\n{"side":"b"}\n`,
        { refresh: true },
      );
      let stop = false;
      const seen = { reads: 0, bad: [] as string[] };
      const reader = (async () => {
        while (!stop) {
          const [res, aliases] = await Promise.all([c.search(alias, { size: 5 }), c.getAlias(alias)]);
          seen.reads++;
          const n = res.hits.hits.length;
          const indices = Object.keys(aliases).length;
          if (n !== 1 || indices !== 1) seen.bad.push(`hits=${n} indices=${indices}`);
        }
      })();
      let from = a;
      let to = b;
      for (let i = 0; i < 20; i++) {
        await c.updateAliases([{ remove: { index: from, alias } }, { add: { index: to, alias } }]);
        [from, to] = [to, from];
      }
      stop = true;
      await reader;
      assert.ok(seen.reads > 5, `reader observed ${seen.reads} times`);
      assert.deepEqual(seen.bad, []);
      await c.close();
    });

    it('surfaces bulk per-item errors with type and reason, and request errors as typed errors', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('bulkerr');
      await c.createIndex(index, {
        settings: { number_of_shards: 1, number_of_replicas: 0 },
        mappings: { dynamic: 'strict', properties: { n: { type: 'integer' } } },
      });
      const letters: DeadLetter[] = [];
      const w = new BulkWriter(c, index, {
        deadLetters: { add: (l) => letters.push(...l) },
        maxBytes: 1 << 20,
      });
      const res = await w.write([
        { kind: 'index', id: 'ok', version: 5, doc: { n: 1 } },
        { kind: 'index', id: 'not-a-number', version: 5, doc: { n: 'abc' } },
        { kind: 'index', id: 'unknown-field', version: 5, doc: { n: 1, extra: true } },
      ]);
      assert.equal(res.written, 1);
      assert.equal(res.deadLetters, 2);
      const byId = Object.fromEntries(letters.map((l) => [l.id, l]));
      assert.match(byId['not-a-number']!.type, /(mapper|document)_parsing_exception/);
      assert.match(byId['not-a-number']!.reason, /\[n\]/);
      assert.equal(byId['unknown-field']!.type, 'strict_dynamic_mapping_exception');
      assert.equal(byId['unknown-field']!.status, 400);

      // Same version again is a conflict ("already there"), an older one too; a newer one wins.
      const again = await w.write([
        { kind: 'index', id: 'ok', version: 5, doc: { n: 2 } },
        { kind: 'index', id: 'ok', version: 4, doc: { n: 3 } },
      ]);
      assert.equal(again.conflicts, 2);
      const newer = await w.write([{ kind: 'index', id: 'ok', version: 6, doc: { n: 4 } }]);
      assert.equal(newer.written, 1);
      const got = await c.mget(index, ['ok']);
      assert.deepEqual(got.docs[0]?._source, { n: 4 });

      await assert.rejects(c.createIndex(index, {}), (e: unknown) => {
        assert.ok(e instanceof ClusterError);
        assert.equal(e.status, 400);
        assert.equal(e.type, 'resource_already_exists_exception');
        return true;
      });
      await c.close();
    });

    it('a versioned delete of an absent document leaves a tombstone that refuses older copies', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('tomb');
      await c.createIndex(index, {
        settings: { number_of_shards: 1, number_of_replicas: 0, 'index.gc_deletes': '1h' },
      });
      const w = new BulkWriter(c, index, {
        deadLetters: { add: () => assert.fail('no dead letters expected') },
        maxBytes: 1 << 20,
      });
      const del = await w.write([{ kind: 'delete', id: 'never-copied', version: 10 }]);
      assert.equal(del.deleted, 1, 'a 404 on a versioned delete counts as applied');
      const stale = await w.write([
        { kind: 'index', id: 'never-copied', version: 5, doc: { resurrected: true } },
      ]);
      assert.equal(stale.conflicts, 1, 'the older copy is refused by the tombstone');
      const recreated = await w.write([
        { kind: 'index', id: 'never-copied', version: 11, doc: { recreated: true } },
      ]);
      assert.equal(recreated.written, 1, 'a newer re-creation wins');
      assert.deepEqual((await c.mget(index, ['never-copied'])).docs[0]?._source, { recreated: true });
      await c.close();
    });

    it("the writer's count tally follows the index's refreshed count through creates, updates, deletes, tombstones and conflicts", async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('tally');
      await c.createIndex(index, { settings: { number_of_shards: 2, number_of_replicas: 0 } });
      const w = new BulkWriter(c, index, {
        deadLetters: { add: () => assert.fail('no dead letters expected') },
        maxBytes: 1 << 20,
      });
      const counted = async () => {
        await c.refresh(index);
        return c.count(index);
      };
      const base = await takeCountBase(counted, () => w.tally);
      assert.ok(base, 'nothing in flight: a base');
      const steps: WriteOp[][] = [
        Array.from({ length: 30 }, (_, i) => ({ kind: 'index', id: `d${i}`, version: 5, doc: { i } })),
        // updates (same ids, newer), stale copies (conflicts), deletes of present and absent ids
        [
          ...Array.from({ length: 10 }, (_, i) => ({
            kind: 'index' as const,
            id: `d${i}`,
            version: 6,
            doc: { i, v: 6 },
          })),
          { kind: 'index', id: 'd20', version: 4, doc: { stale: true } },
          ...Array.from({ length: 8 }, (_, i) => ({ kind: 'delete' as const, id: `d${i + 10}`, version: 7 })),
          { kind: 'delete', id: 'never-there', version: 3 },
        ],
        // re-created over tombstones, and a delete refused by a newer version
        [
          { kind: 'index', id: 'd10', version: 8, doc: { back: true } },
          { kind: 'index', id: 'never-there', version: 4, doc: { late: true } },
          { kind: 'delete', id: 'd0', version: 2 },
        ],
      ];
      for (const ops of steps) {
        await w.write(ops);
        const fromTally = countFromTally(base, w.tally);
        assert.equal(fromTally, await counted(), 'the tally gives what a refresh shows');
      }
      assert.equal(countFromTally(base, w.tally), 30 - 8 + 2);
      // A bulk whose answer was lost leaves no figure: the caller refreshes instead.
      const lost = new AbortController();
      lost.abort(new Error('cut'));
      await assert.rejects(w.write([{ kind: 'index', id: 'x', version: 1, doc: {} }], lost.signal));
      assert.equal(countFromTally(base, w.tally), undefined);
      await c.close();
    });

    it("the source's count from a point in time and the journal's ids follows its refreshed count (source-count.ts)", async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('srccount');
      // No periodic refresh: only the test's own refreshes decide what a count sees.
      await seed(
        c,
        index,
        40,
        (i) => ({ id: `d${i}`, doc: { i }, routing: i % 5 === 0 ? `r${i % 3}` : undefined }),
        {
          settings: { number_of_shards: 3, number_of_replicas: 0, refresh_interval: -1 },
        },
      );
      const journal = { seq: 7, watched: undefined as PresenceWatcher | undefined };
      const j = {
        journalEnd: async () => ({ seq: journal.seq }),
        watch: (w: PresenceWatcher | undefined) => {
          journal.watched = w;
        },
      };
      const w = await SourceCountWatch.start(j, await routingTable(c, index));
      assert.equal(w.from, 7);
      assert.equal(journal.watched, w);
      await w.snapshot(c, index);
      const counted = async () => {
        await c.refresh(index);
        return c.count(index);
      };
      // What a sync does for each journaled batch: the entries, then what a realtime _mget finds for them.
      const apply = async (ndjson: string, refs: DocRef[]) => {
        const r = await c.bulk(ndjson);
        assert.ok(r.items.length > 0);
        for (const ref of refs) w.entry(ref);
        const got = await c.mget(index, refs, { source: false });
        for (const [i, ref] of refs.entries()) w.found(ref, got.docs[i]!.found);
      };
      const line = (op: string, id: string, routing?: string, doc?: unknown) =>
        `${JSON.stringify({ [op]: { _index: index, _id: id, ...(routing ? { routing } : {}) } })}\n${doc ? `${JSON.stringify(doc)}\n` : ''}`;
      // creates, updates, deletes of present and absent ids, a routed document and its id under default routing
      await apply(
        [
          ...Array.from({ length: 6 }, (_, i) => line('index', `n${i}`, undefined, { n: i })),
          line('index', 'd1', undefined, { v: 2 }),
          line('delete', 'd2'),
          line('delete', 'd3'),
          line('delete', 'ghost'),
          line('delete', 'd5', 'r2'),
          line('index', 'd10', undefined, { unrouted: true }),
        ].join(''),
        [
          ...Array.from({ length: 6 }, (_, i) => ({ _id: `n${i}` })),
          { _id: 'd1' },
          { _id: 'd2' },
          { _id: 'd3' },
          { _id: 'ghost' },
          { _id: 'd5', routing: 'r2' },
          { _id: 'd10' },
        ],
      );
      // Counted before any refresh since the point in time: the figure must be what a refresh then shows.
      const first = await w.count(c);
      assert.equal(first, await counted(), 'the figure is what a refresh shows');
      // A later batch: a re-creation, a delete of a document created above, an update of a routed one.
      await apply(
        line('index', 'd2', undefined, { back: true }) +
          line('delete', 'n0') +
          line('index', 'd0', 'r0', { v: 3 }),
        [{ _id: 'd2' }, { _id: 'n0' }, { _id: 'd0', routing: 'r0' }],
      );
      assert.equal(await w.count(c), await counted());
      // An entry read without its _mget answer yet: no figure, the caller refreshes instead.
      w.entry({ _id: 'n1' });
      assert.equal(await w.count(c), undefined);
      await w.close(c);
      assert.equal(journal.watched, undefined, 'closing stops the watch');
      await c.close();
    });

    it('an _mget document the server could not read is an error, never "not found" (all three ways of reading)', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('mgeterr');
      // Routing required: a document asked for without one is answered with an error inside a 200.
      await c.createIndex(index, {
        settings: { number_of_shards: 1, number_of_replicas: 0 },
        mappings: { _routing: { required: true } },
      });
      await c.bulk(`${JSON.stringify({ index: { _index: index, _id: 'a', routing: 'r' } })}\n{"n":1}\n`, {
        refresh: true,
      });
      assert.equal(
        (await c.mget(index, [{ _id: 'a', routing: 'r' }], { source: false })).docs[0]?.found,
        true,
      );
      for (const read of [
        () => c.mget(index, [{ _id: 'a', routing: 'r' }, { _id: 'a' }]),
        () => c.mget(index, [{ _id: 'a', routing: 'r' }, { _id: 'a' }], { source: false }),
        () => c.mgetLean(index, [{ _id: 'a', routing: 'r' }, { _id: 'a' }]),
      ])
        await assert.rejects(read(), (e: unknown) => {
          assert.ok(e instanceof ClusterError, String(e));
          // Elasticsearch 7.17 reports this one as a null_pointer_exception: still an error inside a 200.
          assert.match(e.type, kind === 'es7' ? /routing_missing|null_pointer/ : /routing_missing/);
          assert.match(e.message, /document a could not be read/);
          return true;
        });
      await c.deleteIndex(index);
      await c.close();
    });

    it('opens a PIT, pages every shard slice in _seq_no order, closes it', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('pit');
      await seed(c, index, 1234, (i) => ({ id: `p${i}`, doc: { i } }));
      const pit = new PitSession(c, index, '1m');
      const ids = new Set<string>();
      for (let slice = 0; slice < 3; slice++) {
        const reader = new PitSliceReader(c, pit, slice, 3, {
          batchDocs: 100,
          keepAlive: '1m',
          withVersion: false,
        });
        let after: number | null = null;
        let last = -1;
        for (;;) {
          const hits = await reader.next(after);
          if (hits.length === 0) break;
          for (const h of hits) {
            assert.ok(h._seq_no! > last, 'seq_no strictly increasing within a slice');
            last = h._seq_no!;
            assert.ok(!ids.has(h._id), `duplicate ${h._id}`);
            ids.add(h._id);
          }
          after = last;
        }
      }
      assert.equal(ids.size, 1234);

      // The engine's checkpoints rely on a PIT slice (max = shards) being exactly one shard.
      for (let slice = 0; slice < 3; slice++) {
        const { id: pitId } = await pit.current();
        const viaSlice = await c.search(undefined, {
          size: 2000,
          pit: { id: pitId },
          slice: { id: slice, max: 3 },
          _source: false,
          sort: [{ _seq_no: 'asc' }],
        });
        const viaShard = await c.search(
          index,
          { size: 2000, _source: false },
          { preference: `_shards:${slice}` },
        );
        assert.deepEqual(
          viaSlice.hits.hits.map((h) => h._id).sort(),
          viaShard.hits.hits.map((h) => h._id).sort(),
          `slice ${slice} is shard ${slice}`,
        );
      }
      const { id } = await pit.current();
      await pit.close();
      await assert.rejects(
        c.search(undefined, { pit: { id }, size: 1 }),
        (e: unknown) => isContextMissing(e) || (e instanceof ClusterError && e.status === 404),
      );
      await c.close();
    });

    it('sends gzip-compressed bulk bodies and reads cluster state calls', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('gzip');
      let nd = '';
      for (let i = 0; i < 50; i++) nd += `{"index":{"_index":"${index}","_id":"g${i}"}}\n{"i":${i}}\n`;
      const r = await c.bulk(nd, { gzip: true, refresh: true });
      assert.equal(r.errors, false);
      assert.equal(await c.count(index), 50);
      const pools = await c.threadPools('write');
      assert.ok(pools.length >= 1 && pools.every((p) => p.name === 'write' && /^\d+$/.test(p.rejected)));
      const tasks = await c.tasks({ actions: '*search*', detailed: false });
      assert.equal(typeof tasks.nodes, 'object');
      const stats = await c.nodesStats('jvm');
      const node = Object.values(stats.nodes)[0] as { jvm?: { mem?: { heap_used_percent?: number } } };
      assert.equal(typeof node.jvm?.mem?.heap_used_percent, 'number');
      const settings = await c.clusterSettings();
      assert.equal(typeof settings.persistent, 'object');
      const health = await c.health(index, { wait_for_status: 'yellow', timeout: '10s' });
      assert.ok(['green', 'yellow'].includes(health.status));
      await c.close();
    });

    it('opens a PIT again after a failed open instead of repeating the failure', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('late');
      const pit = new PitSession(c, index, '1m');
      await assert.rejects(pit.current(), (e: unknown) => e instanceof ClusterError && e.status === 404);
      await c.createIndex(index, { settings: { number_of_shards: 1, number_of_replicas: 0 } });
      const { id } = await pit.current();
      assert.ok(id.length > 0);
      await pit.close();
      await c.close();
    });

    it('reads through scroll per shard with the scroll id in the body', async () => {
      const c = clusterOf(testCluster(kind));
      const index = uniqueName('scroll');
      await seed(c, index, 700, (i) => ({ id: `s${i}`, doc: { i } }));
      const ids = new Set<string>();
      for (let slice = 0; slice < 3; slice++) {
        const reader = new ScrollSliceReader(c, index, slice, {
          batchDocs: 50,
          keepAlive: '1m',
          withVersion: false,
        });
        let after: number | null = null;
        for (;;) {
          const hits = await reader.next(after);
          if (hits.length === 0) break;
          for (const h of hits) ids.add(h._id);
          after = hits[hits.length - 1]!._seq_no!;
        }
        await reader.close();
      }
      assert.equal(ids.size, 700);
      await c.close();
    });
  });
}
