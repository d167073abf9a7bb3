/**
 * The write proxy in front of a real cluster: the application's writes go through it with the official REST
 * semantics, and the journal holds exactly the ids written, where they landed. Holds queue writes (asserted by
 * the proxy's state, not by timing) and release them all; the deadline releases them when nobody does; the control
 * port wants its token; after a switch, the old concrete name is routed; a proxy killed with SIGKILL leaves a
 * journal whose entries read back intact, followed by a reconcile marker.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import YAML from 'yaml';
import { JournalAccounting } from '../../src/capture/journal-accounting.js';
import type { Cluster } from '../../src/cluster/client.js';
import { sleep } from '../../src/cluster/retry.js';
import { routingTable } from '../../src/cluster/routing.js';
import { controlToken, HoldRefused, ProxyControl } from '../../src/proxy/control.js';
import { FileJournalReader, FileJournalWriter } from '../../src/proxy/file-journal.js';
import { type DocEntry, JOURNAL_START, type JournalEntry, JournalFailed } from '../../src/proxy/journal.js';
import { openProxy } from '../../src/proxy/open.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { resolveSpec } from '../../src/spec/load.js';
import { StateStore } from '../../src/store/state.js';
import { EXPECTED, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf } from '../support/data.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const payload =
    body === undefined
      ? undefined
      : Buffer.isBuffer(body) || typeof body === 'string'
        ? body
        : JSON.stringify(body);
  const r = await request(`${base}${path}`, {
    method: method as 'GET',
    headers: { 'content-type': 'application/json', ...headers },
    body: payload,
  });
  const text = await r.body.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { text };
  }
  return { status: r.statusCode, body: parsed, headers: r.headers };
}

const ndjson = (lines: unknown[]) => `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;

/**
 * The journal as the proxy left it. A proxy answers before its entry is durable: with `proxy`, once every write
 * answered so far is journaled (what a hold waits for).
 */
async function journalOf(path: string, proxy?: RunningProxy): Promise<JournalEntry[]> {
  await proxy?.settled();
  return (await new FileJournalReader(path).read(JOURNAL_START, 1_000_000)).entries;
}

const docs = (entries: JournalEntry[]) =>
  entries.filter((e): e is DocEntry & JournalEntry => e.kind === 'doc');

/** Wait for a state of the proxy (never for time): fails with `what` if it does not come. */
async function until(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`never happened: ${what}`);
}

/** A source index behind read/write aliases, another index, and a proxy opened from a spec, as `cutover proxy` does. */
async function setup(kind: 'es8' | 'os3', spec: Record<string, unknown> = {}) {
  const t = testCluster(kind);
  const c = clusterOf(t);
  const source = uniqueName('px');
  const other = `${source}-other`;
  const target = `${source}-v2`;
  const readAlias = `${source}-read`;
  const writeAlias = `${source}-write`;
  const settings = { number_of_shards: 2, number_of_replicas: 0 };
  await c.createIndex(source, {
    settings,
    aliases: { [readAlias]: {}, [writeAlias]: { is_write_index: true } },
  });
  await c.createIndex(other, { settings });
  const dir = mkdtempSync(join(tmpdir(), 'cutover-proxy-'));
  const input = {
    name: 'm1',
    source: { cluster: { url: t.url }, index: readAlias },
    target: { index: target },
    aliases: { read: [readAlias], write: writeAlias },
    capture: { strategy: 'proxy' },
    proxy: { listen: '127.0.0.1:0', control: '127.0.0.1:0', ...spec },
    stateDir: './state',
  };
  const specPath = join(dir, 'spec.yaml');
  writeFileSync(specPath, YAML.stringify(input));
  const loaded = resolveSpec(input, dir, specPath);
  const store = new StateStore(loaded.migrationDir);
  return { t, c, source, other, target, readAlias, writeAlias, dir, specPath, loaded, store };
}

async function dropIndices(c: Cluster, ...indices: string[]): Promise<void> {
  for (const i of indices) await c.deleteIndex(i).catch(() => undefined);
}

for (const kind of (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k))) {
  describe(`write proxy on ${kind}`, () => {
    let s: Awaited<ReturnType<typeof setup>>;
    let proxy: RunningProxy;
    let control: ProxyControl;
    let base: string;

    before(async () => {
      s = await setup(kind);
      proxy = await openProxy(s.loaded);
      base = proxy.dataUrl;
      control = new ProxyControl(proxy.info, controlToken(s.store.proxyTokenPath, false));
    });

    after(async () => {
      await proxy?.close();
      await dropIndices(s.c, s.source, s.other, s.target);
      await s.c.close();
    });

    it('journals every document written, id by id, where it landed; reads and other indices are not journaled', async () => {
      const w = s.writeAlias;
      const written = new Set<string>();
      const ok = (a: Answer, what: string) =>
        assert.ok(a.status < 300, `${what}: ${a.status} ${JSON.stringify(a.body)}`);

      ok(await call(base, 'PUT', `/${w}/_doc/a1`, { n: 1 }), 'index');
      written.add('a1');
      const auto = await call(base, 'POST', `/${w}/_doc`, { n: 2 });
      ok(auto, 'auto id');
      written.add(auto.body._id as string);
      ok(await call(base, 'PUT', `/${w}/_create/a2`, { n: 3 }), 'create');
      written.add('a2');
      ok(await call(base, 'POST', `/${w}/_update/a1`, { doc: { n: 10 } }), 'update');
      ok(await call(base, 'DELETE', `/${w}/_doc/a2`), 'delete');
      // Optimistic concurrency: works, and is counted (its values mean nothing on the new index).
      const cur = await call(base, 'GET', `/${w}/_doc/a1`);
      ok(
        await call(
          base,
          'PUT',
          `/${w}/_doc/a1?if_seq_no=${cur.body._seq_no}&if_primary_term=${cur.body._primary_term}`,
          {
            n: 11,
          },
        ),
        'if_seq_no write',
      );
      assert.equal(proxy.stats().optimisticConcurrencyWrites, 1);
      ok(
        await call(base, 'PUT', `/${w}/_doc/${encodeURIComponent('r 1/x')}?routing=k`, { n: 4 }),
        'routed id',
      );
      written.add('r 1/x');

      const gz = gzipSync(
        ndjson([
          { index: { _id: 'b1' } },
          { n: 5 },
          { index: { _id: 'b2', routing: 'k2' } },
          { n: 6 },
          { create: {} },
          { n: 7 },
          { update: { _id: 'b2', routing: 'k2' } },
          { doc: { n: 60 } },
          { delete: { _id: 'b1' } },
        ]),
      );
      const bulk = await call(base, 'POST', `/${w}/_bulk`, gz, {
        'content-type': 'application/x-ndjson',
        'content-encoding': 'gzip',
      });
      ok(bulk, 'gzip bulk');
      assert.equal(bulk.body.errors, false, JSON.stringify(bulk.body));
      const items = bulk.body.items as Array<Record<string, { _id: string }>>;
      written.add('b1').add('b2').add(items[2]!.create!._id);

      // A bulk naming the migrated index and another one: only the migrated index's ids are journaled.
      const mixed = await call(
        base,
        'POST',
        '/_bulk?refresh=true',
        ndjson([
          { index: { _index: w, _id: 'm1' } },
          { n: 8 },
          { index: { _index: s.other, _id: 'o1' } },
          { n: 9 },
        ]),
        { 'content-type': 'application/x-ndjson' },
      );
      assert.equal(mixed.body.errors, false, JSON.stringify(mixed.body));
      written.add('m1');

      if (kind === 'os3') {
        // The OpenSearch test server carries painless and the reindex module (the Elasticsearch zips do not).
        ok(
          await call(base, 'POST', `/${w}/_update/s1`, {
            script: { source: 'ctx._source.n += 1', lang: 'painless' },
            upsert: { n: 0 },
          }),
          'scripted upsert',
        );
        ok(
          await call(base, 'POST', `/${w}/_update/s1`, {
            script: { source: 'ctx._source.n += 1', lang: 'painless' },
            upsert: { n: 0 },
          }),
          'scripted update',
        );
        written.add('s1');
      }

      const before = await journalOf(s.store.journalPath, proxy);
      // Reads through every name, and writes to another index: none journaled.
      ok(await call(base, 'GET', `/${s.readAlias}/_doc/a1`), 'get');
      ok(await call(base, 'POST', `/${s.readAlias}/_search`, { query: { match_all: {} } }), 'search');
      ok(await call(base, 'POST', '/_mget', { docs: [{ _index: s.readAlias, _id: 'a1' }] }), 'mget');
      ok(await call(base, 'POST', `/${s.readAlias}/_count`, { query: { match_all: {} } }), 'count');
      ok(await call(base, 'PUT', `/${s.other}/_doc/o2`, { n: 1 }), 'other index');
      ok(
        await call(base, 'POST', `/${s.other}/_bulk`, ndjson([{ index: { _id: 'o3' } }, { n: 1 }]), {
          'content-type': 'application/x-ndjson',
        }),
        'other bulk',
      );
      const afterReads = await journalOf(s.store.journalPath, proxy);
      assert.equal(afterReads.length, before.length, 'reads or other-index writes were journaled');

      const got = docs(afterReads);
      assert.deepEqual([...new Set(got.map((e) => e.id))].sort(), [...written].sort());
      assert.ok(
        got.every((e) => e.index === s.source),
        `journaled where they landed: ${[...new Set(got.map((e) => e.index))]}`,
      );
      assert.equal(got.find((e) => e.id === 'r 1/x')?.routing, 'k');
      assert.ok(got.filter((e) => e.id === 'b2').every((e) => e.routing === 'k2'));
      assert.deepEqual(
        got.filter((e) => e.id === 'a1').map((e) => e.op),
        ['index', 'update', 'index'],
      );
      assert.equal(got.find((e) => e.id === 'a2' && e.op === 'delete')?.kind, 'doc');
      // Every document the index now holds was journaled.
      const inIndex = await s.c.search(s.source, { size: 100, query: { match_all: {} } });
      for (const h of inIndex.hits.hits)
        assert.ok(written.has(h._id), `${h._id} is in the index, not journaled`);
      assert.equal(proxy.stats().journaledDocs, got.length);

      // Each write's _seq_no is in its entry: routed to their shards, they account for every operation the
      // source's shards numbered (what lets a hold skip its safety-net round), and a write made around the proxy
      // leaves a gap.
      const router = await routingTable(s.c, s.source);
      const seqNos = (await s.c.shardSeqNos(s.source)).map((m) => m.maxSeqNo);
      const accounting = new JournalAccounting();
      for (const e of got) if (e.sn !== undefined) accounting.note(router.shardOf(e.id, e.routing), e.sn);
      assert.equal(seqNos.length, 2);
      assert.ok(
        seqNos.every((m) => m >= 1),
        `every shard was written: ${seqNos}`,
      );
      const all = accounting.check([-1, -1], seqNos);
      assert.ok(all.accounted, `not accounted: ${JSON.stringify(all)}`);
      const around = await call(s.t.url, 'PUT', `/${s.source}/_doc/around-1`, { n: 0 });
      ok(around, 'write around the proxy');
      ok(await call(s.t.url, 'DELETE', `/${s.source}/_doc/around-1`), 'delete around the proxy');
      const later = (await s.c.shardSeqNos(s.source)).map((m) => m.maxSeqNo);
      const gap = accounting.check([-1, -1], later);
      assert.equal(gap.accounted, false);
      assert.equal(gap.gaps, 2);
      assert.equal(gap.firstGap?.shard, router.shardOf('around-1'));
      assert.equal(gap.firstGap?.seqNo, around.body._seq_no);
    });

    it('passes the cluster headers through and answers sniffing with its own address', async () => {
      const r = await call(base, 'GET', `/${s.readAlias}/_search`);
      if (kind === 'es8') assert.equal(r.headers['x-elastic-product'], 'Elasticsearch');
      const nodes = await call(base, 'GET', '/_nodes/_all/http');
      const addrs = Object.values(
        nodes.body.nodes as Record<string, { http: { publish_address: string } }>,
      ).map((n) => n.http.publish_address);
      assert.deepEqual(
        addrs,
        addrs.map(() => new URL(base).host),
      );
      assert.ok(proxy.stats().sniffRequests >= 1);
    });

    it('a by-query is journaled as a reconcile marker, and a bulk whose response hides the items', async () => {
      const markers = () =>
        journalOf(s.store.journalPath, proxy).then((j) => j.filter((e) => e.kind === 'reconcile'));
      const n0 = (await markers()).length;
      const hidden = await call(
        base,
        'POST',
        `/${s.writeAlias}/_bulk?filter_path=-items`,
        ndjson([{ create: {} }, { n: 1 }]),
        { 'content-type': 'application/x-ndjson' },
      );
      assert.equal(hidden.status, 200);
      assert.equal(hidden.body.items, undefined);
      assert.equal((await markers()).length, n0 + 1);
      if (kind !== 'os3') return;
      // Only the OpenSearch test server has the reindex module (by-query).
      const r = await call(base, 'POST', `/${s.writeAlias}/_delete_by_query?refresh=true`, {
        query: { term: { n: 60 } },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const m = await markers();
      assert.equal(m.length, n0 + 2);
      assert.match(String((m.at(-1) as { why: string }).why), /delete_by_query/);
      // _reindex into the migrated index (through its write alias) is a marker; into another index it is not.
      const into = await call(base, 'POST', '/_reindex?refresh=true', {
        source: { index: s.other },
        dest: { index: s.writeAlias },
      });
      assert.equal(into.status, 200, JSON.stringify(into.body));
      const m2 = await markers();
      assert.equal(m2.length, n0 + 3);
      assert.match(String((m2.at(-1) as { why: string }).why), /_reindex on/);
      const away = await call(base, 'POST', '/_reindex?refresh=true', {
        source: { index: s.writeAlias },
        dest: { index: s.other },
      });
      assert.equal(away.status, 200, JSON.stringify(away.body));
      assert.equal(
        (await markers()).length,
        n0 + 3,
        'a reindex out of the migrated index writes nothing into it',
      );
      // A by-query run as a task: its marker names the task, which the runner waits for before it reconciles.
      const bg = await call(base, 'POST', `/${s.writeAlias}/_update_by_query?wait_for_completion=false`, {
        query: { match_all: {} },
      });
      assert.equal(bg.status, 200, JSON.stringify(bg.body));
      const task = String(bg.body.task);
      const last = (await markers()).at(-1) as { task?: string; why: string };
      assert.equal(last.task, task, last.why);
      await s.c.waitForTask(task);
      const done = await call(s.t.url, 'GET', `/_tasks/${task}`);
      assert.ok(done.status === 404 || done.body.completed === true, JSON.stringify(done.body));
    });

    it('holds writes in memory until released: none completes while held, all complete after, reads go on', async () => {
      const granted = await control.hold({ holdId: 'h1', budgetMs: 60_000 });
      const settled: string[] = [];
      const writes = Array.from({ length: 20 }, (_, i) =>
        (i % 4 === 0
          ? call(base, 'POST', `/${s.writeAlias}/_bulk`, ndjson([{ index: { _id: `hb${i}` } }, { i }]), {
              'content-type': 'application/x-ndjson',
            })
          : call(base, 'PUT', `/${s.writeAlias}/_doc/h${i}`, { i })
        ).then((a) => {
          settled.push(`h${i}`);
          return a;
        }),
      );
      await until(
        async () => (await control.status()).holding?.queued === 20,
        '20 writes queued by the hold',
      );
      // Reads and other indices are not held.
      assert.equal((await call(base, 'GET', `/${s.readAlias}/_search`)).status, 200);
      assert.ok((await call(base, 'PUT', `/${s.other}/_doc/during-hold`, { n: 1 })).status < 300);
      assert.deepEqual(settled, [], 'a write completed while held');
      assert.equal((await control.status()).holding?.queued, 20);
      await assert.rejects(control.hold({ holdId: 'h-other', budgetMs: 1000 }), /409/);

      const record = await control.release({ holdId: 'h1' });
      assert.equal(record.releasedBy, 'runner');
      assert.equal(record.heldRequests, 20);
      const answers = await Promise.all(writes);
      assert.deepEqual(
        answers.filter((a) => a.status >= 300).map((a) => a.status),
        [],
      );
      const held = docs(await journalOf(s.store.journalPath, proxy)).filter((e) => /^hb?\d+$/.test(e.id));
      assert.equal(held.length, 20);
      assert.ok(
        held.every((e) => e.seq > granted.journalEnd.seq),
        'every held write comes after the end the hold granted',
      );
      const st = proxy.stats();
      assert.ok(st.holds >= 1 && st.heldRequests >= 20 && st.longestHoldWaitMs > 0, JSON.stringify(st));
      assert.equal((await control.status()).holding, undefined);
    });

    it('releases by itself at the deadline when nobody releases', async () => {
      await control.hold({ holdId: 'h2', budgetMs: 3000 });
      const write = call(base, 'PUT', `/${s.writeAlias}/_doc/deadline1`, { n: 1 });
      await until(async () => (await control.status()).holding?.queued === 1, 'a write queued');
      assert.equal((await write).status, 201);
      assert.equal((await control.status()).holding, undefined);
      // The runner, back too late, learns how its hold ended.
      await assert.rejects(control.release({ holdId: 'h2' }), (e: Error) => {
        assert.ok(e instanceof HoldRefused, String(e));
        assert.match(e.message, /409/);
        assert.equal(e.record?.releasedBy, 'deadline');
        assert.equal(e.record?.heldRequests, 1);
        return true;
      });
    });

    it('a write refused by the source write block (the fence) is sent again until the block lifts: latency, not a 403', async () => {
      await s.c.putSettings(s.source, { 'index.blocks.write': true });
      let lifted = false;
      try {
        // The oracle: the block is real, a write straight to the cluster is refused.
        const direct = await call(s.t.url, 'PUT', `/${s.writeAlias}/_doc/blocked-direct`, { n: 0 });
        assert.equal(direct.status, 403, JSON.stringify(direct.body));
        const before = (await control.status()).stats.blockRetried;
        const single = call(base, 'PUT', `/${s.writeAlias}/_doc/blocked1`, { n: 1 });
        const bulk = call(
          base,
          'POST',
          '/_bulk',
          ndjson([
            { index: { _index: s.writeAlias, _id: 'blocked2' } },
            { n: 2 },
            { delete: { _index: s.writeAlias, _id: 'blocked-none' } },
          ]),
          { 'content-type': 'application/x-ndjson' },
        );
        await until(
          async () => (await control.status()).stats.blockRetried >= before + 2,
          'both writes met the block',
        );
        await s.c.putSettings(s.source, { 'index.blocks.write': false });
        lifted = true;
        const [a, b] = await Promise.all([single, bulk]);
        assert.equal(a.status, 201, JSON.stringify(a.body));
        assert.equal(b.status, 200);
        const items = b.body.items as Array<Record<string, { status: number }>>;
        assert.equal(items[0]!.index!.status, 201);
        assert.equal(items[1]!.delete!.status, 404);
        const got = await s.c.mget(s.source, [{ _id: 'blocked1' }, { _id: 'blocked2' }]);
        assert.deepEqual(
          got.docs.map((d) => d.found),
          [true, true],
        );
      } finally {
        if (!lifted) await s.c.putSettings(s.source, { 'index.blocks.write': false });
      }
    });

    it('a bulk refused in part by the write block has only its refused items sent again until the block lifts', async () => {
      const other = `${s.source}-partial`;
      await s.c.createIndex(other, { settings: { number_of_shards: 1, number_of_replicas: 0 } });
      await s.c.putSettings(s.source, { 'index.blocks.write': true });
      let lifted = false;
      try {
        const before = (await control.status()).stats.blockRetried;
        // One bulk: two items for the (blocked) migrated index, one for an index without a block.
        const bulk = call(
          base,
          'POST',
          '/_bulk',
          ndjson([
            { index: { _index: s.writeAlias, _id: 'part1' } },
            { n: 1 },
            { index: { _index: other, _id: 'part-other' } },
            { n: 2 },
            { index: { _index: s.writeAlias, _id: 'part2' } },
            { n: 3 },
          ]),
          { 'content-type': 'application/x-ndjson' },
        );
        await until(
          async () => (await control.status()).stats.blockRetried >= before + 1,
          'the refused items were retried',
        );
        await s.c.putSettings(s.source, { 'index.blocks.write': false });
        lifted = true;
        const b = await bulk;
        assert.equal(b.status, 200);
        assert.equal(b.body.errors, false, JSON.stringify(b.body));
        const items = b.body.items as Array<Record<string, { status: number; _id: string }>>;
        assert.deepEqual(
          items.map((i) => [i.index!._id, i.index!.status]),
          [
            ['part1', 201],
            ['part-other', 201],
            ['part2', 201],
          ],
        );
        // The item that was applied the first time was not sent again (it would answer 200, version 2).
        const got = await s.c.mget(other, [{ _id: 'part-other' }]);
        assert.equal(got.docs[0]!._version, 1);
        const mine = await s.c.mget(s.source, [{ _id: 'part1' }, { _id: 'part2' }]);
        assert.deepEqual(
          mine.docs.map((d) => d.found),
          [true, true],
        );
      } finally {
        if (!lifted) await s.c.putSettings(s.source, { 'index.blocks.write': false });
        await s.c.deleteIndex(other).catch(() => undefined);
      }
    });

    it('refuses control requests without the token; the data port cannot hold', async () => {
      assert.equal((await call(proxy.controlUrl, 'GET', '/v1/status')).status, 401);
      const wrong = { authorization: 'Bearer nope' };
      assert.equal((await call(proxy.controlUrl, 'GET', '/v1/status', undefined, wrong)).status, 401);
      assert.equal(
        (await call(proxy.controlUrl, 'POST', '/v1/hold', { holdId: 'x', budgetMs: 10_000 }, wrong)).status,
        401,
      );
      await call(base, 'POST', '/v1/hold', { holdId: 'y', budgetMs: 10_000 });
      assert.equal((await control.status()).holding, undefined);
    });

    it('after a switch, reports writes naming the old concrete index (concreteNames: report) and lets them land there', async () => {
      await s.c.createIndex(s.target, { settings: { number_of_shards: 1, number_of_replicas: 0 } });
      await control.hold({ holdId: 'switch', budgetMs: 20_000 });
      await s.c.updateAliases([
        { remove: { index: s.source, alias: s.writeAlias } },
        { add: { index: s.target, alias: s.writeAlias, is_write_index: true } },
      ]);
      await control.release({ holdId: 'switch', switchedTo: s.target });
      assert.equal((await control.status()).switchedTo, s.target);
      const viaAlias = await call(base, 'PUT', `/${s.writeAlias}/_doc/after1`, { n: 1 });
      assert.equal(viaAlias.body._index, s.target);
      const concrete = await call(base, 'PUT', `/${s.source}/_doc/after2`, { n: 2 });
      assert.equal(concrete.body._index, s.source);
      const st = proxy.stats();
      assert.equal(st.concreteNameWrites, 1);
      assert.equal(st.routedConcreteNameWrites, 0);
      const j = docs(await journalOf(s.store.journalPath, proxy));
      assert.equal(j.find((e) => e.id === 'after1')?.index, s.target);
      assert.equal(j.find((e) => e.id === 'after2')?.index, s.source);
    });
  });

  describe(`write proxy on ${kind}: after the switch`, () => {
    let s: Awaited<ReturnType<typeof setup>>;

    before(async () => {
      s = await setup(kind);
      await s.c.createIndex(s.target, { settings: { number_of_shards: 1, number_of_replicas: 0 } });
    });

    after(async () => {
      await dropIndices(s.c, s.source, s.other, s.target);
      await s.c.close();
    });

    it('routes writes naming the old concrete index to the new one (concreteNames: route), and remembers the switch', async () => {
      const journalPath = join(s.dir, 'route', 'journal.log');
      const switchStatePath = join(s.dir, 'route', 'switch.json');
      const opts = {
        upstream: { url: s.t.url },
        listen: '127.0.0.1:0',
        control: '127.0.0.1:0',
        migrated: { sourceIndex: s.source, names: [s.readAlias, s.writeAlias] },
        token: 'tok',
        holdBudgetDefaultMs: 5000,
        concreteNames: 'route' as const,
        log: () => {},
        switchStatePath,
      };
      let proxy = await startProxy({ ...opts, journal: await FileJournalWriter.open(journalPath, 'p1') });
      const control = new ProxyControl(proxy.info, 'tok');
      await control.hold({ holdId: 'sw', budgetMs: 20_000 });
      await s.c.updateAliases([
        { remove: { index: s.source, alias: s.writeAlias } },
        { add: { index: s.target, alias: s.writeAlias, is_write_index: true } },
      ]);
      const record = await control.release({ holdId: 'sw', switchedTo: s.target });
      assert.equal(record.switchedTo, s.target);
      await proxy.close();

      // A restarted proxy still knows the switch.
      proxy = await startProxy({ ...opts, journal: await FileJournalWriter.open(journalPath, 'p2') });
      try {
        assert.equal(proxy.status().switchedTo, s.target);
        const base = proxy.dataUrl;
        const one = await call(base, 'PUT', `/${s.source}/_doc/c1`, { n: 1 });
        assert.equal(one.body._index, s.target, JSON.stringify(one.body));
        const bulk = await call(
          base,
          'POST',
          '/_bulk',
          ndjson([
            { index: { _index: s.source, _id: 'c2' } },
            { n: 2 },
            { index: { _index: s.writeAlias, _id: 'c3' } },
            { n: 3 },
          ]),
          { 'content-type': 'application/x-ndjson' },
        );
        assert.equal(bulk.body.errors, false, JSON.stringify(bulk.body));
        const viaPath = await call(
          base,
          'POST',
          `/${s.source}/_bulk?refresh=true`,
          ndjson([{ index: { _id: 'c4' } }, { n: 4 }]),
          {
            'content-type': 'application/x-ndjson',
          },
        );
        assert.equal(viaPath.body.errors, false, JSON.stringify(viaPath.body));
        const st = proxy.stats();
        assert.equal(st.concreteNameWrites, 3);
        assert.equal(st.routedConcreteNameWrites, 3);
        assert.equal(await s.c.count(s.source), 0);
        assert.equal(await s.c.count(s.target), 4);
        const j = docs(await journalOf(journalPath, proxy));
        assert.deepEqual(j.map((e) => e.id).sort(), ['c1', 'c2', 'c3', 'c4']);
        assert.ok(j.every((e) => e.index === s.target));
      } finally {
        await proxy.close();
      }
    });

    it('a journal that cannot be made durable: no later write is taken, the proxy stops with the error, its journal life left open', async () => {
      const journalPath = join(s.dir, 'failing', 'journal.log');
      const journal = await FileJournalWriter.open(journalPath, 'p1');
      const proxy = await startProxy({
        upstream: { url: s.t.url },
        listen: '127.0.0.1:0',
        control: '127.0.0.1:0',
        migrated: { sourceIndex: s.other, names: [] },
        journal,
        token: 'tok',
        holdBudgetDefaultMs: 5000,
        concreteNames: 'report',
        log: () => {},
      });
      assert.ok((await call(proxy.dataUrl, 'PUT', `/${s.other}/_doc/f1`, { n: 1 })).status < 300);
      await proxy.settled();
      // The disk fills up: the journal's file now writes to /dev/full (ENOSPC), the real failure path.
      (journal as unknown as { fd: number }).fd = openSync('/dev/full', 'w');
      // The cluster applied f2 and the client has that answer; its entry is what cannot be made durable.
      const applied = await call(proxy.dataUrl, 'PUT', `/${s.other}/_doc/f2`, { n: 2 });
      assert.ok(applied.status < 300, `the cluster's answer: ${applied.status}`);
      const err = await proxy.closed;
      assert.ok(err instanceof JournalFailed, String(err));
      await assert.rejects(call(proxy.dataUrl, 'PUT', `/${s.other}/_doc/f3`, { n: 3 }));
      // No clean stop: the runner (or the next proxy) reconciles every id, so the answered f2 is not lost.
      const j = await journalOf(journalPath);
      assert.deepEqual(
        j.map((e) => e.kind),
        ['start', 'doc'],
      );
    });
  });

  describe(`write proxy on ${kind}: killed with SIGKILL`, () => {
    let s: Awaited<ReturnType<typeof setup>>;
    const children: ChildProcess[] = [];

    before(async () => {
      s = await setup(kind);
    });

    after(async () => {
      for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
      await dropIndices(s.c, s.source, s.other, s.target);
      await s.c.close();
    });

    /** `cutover proxy spec.yaml` as an operator starts it; resolves with its data URL once it says it listens. */
    function startCliProxy(): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null> }> {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'proxy', s.specPath], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr!.on('data', (d) => {
        stderr += d;
      });
      const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      return new Promise((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /proxy listening on (http:\/\/\S+) \(control on/.exec(out);
          if (m) resolve({ child, url: m[1]!, exit });
        });
        void exit.then((code) => reject(new Error(`proxy exited ${code} before listening: ${stderr}`)));
      });
    }

    it('the next proxy journals a reconcile marker after the last entry; the earlier entries read back intact', async () => {
      const first = await startCliProxy();
      const ids = ['k1', 'k2', 'k3', 'k4', 'k5'];
      for (const id of ids)
        assert.equal((await call(first.url, 'PUT', `/${s.writeAlias}/_doc/${id}`, { id })).status, 201);
      // Each entry is written just after its answer: the crash comes once all five are in the file.
      await until(
        async () => docs(await journalOf(s.store.journalPath)).length === ids.length,
        'five entries written',
      );
      first.child.kill('SIGKILL');
      await first.exit;
      const beforeRestart = await journalOf(s.store.journalPath);
      assert.deepEqual(
        beforeRestart.map((e) => e.kind),
        ['start', 'doc', 'doc', 'doc', 'doc', 'doc'],
      );

      const second = await startCliProxy();
      second.child.kill('SIGTERM');
      assert.equal(await second.exit, 0);
      const j = await journalOf(s.store.journalPath);
      assert.deepEqual(j.slice(0, beforeRestart.length), beforeRestart);
      assert.deepEqual(
        j.slice(beforeRestart.length).map((e) => e.kind),
        ['reconcile', 'start', 'stop'],
      );
      assert.deepEqual(
        docs(j).map((e) => e.id),
        ids,
      );
    });
  });
}

// The application moves with the proxy: the new index is on another cluster (here Elasticsearch 8 -> OpenSearch 3).
if (EXPECTED.includes('es8') && EXPECTED.includes('os3'))
  describe('write proxy moving the application to another cluster', () => {
    let s: Awaited<ReturnType<typeof setup>>;
    let to: Cluster;
    let toUrl: string;

    before(async () => {
      s = await setup('es8');
      const t = testCluster('os3');
      toUrl = t.url;
      to = clusterOf(t);
      // What the runner's switch leaves on the target cluster: the new index behind the same aliases.
      await to.createIndex(s.target, {
        settings: { number_of_shards: 1, number_of_replicas: 0 },
        aliases: { [s.readAlias]: {}, [s.writeAlias]: { is_write_index: true } },
      });
    });

    after(async () => {
      await dropIndices(s.c, s.source, s.other, s.target);
      await dropIndices(to, s.target, s.source);
      await s.c.close();
      await to.close();
    });

    it('at a release with cluster target, the held writes and every later request go to the target cluster; a rollback release brings them back', async () => {
      const input = {
        ...YAML.parse(readFileSync(s.specPath, 'utf8')),
        target: { index: s.target, cluster: { url: toUrl } },
      };
      const spec = resolveSpec(input, s.dir, s.specPath);
      let proxy = await openProxy(spec);
      const ctl = () => new ProxyControl(proxy.info, controlToken(s.store.proxyTokenPath, false));
      try {
        const before = await ctl().status();
        assert.equal(before.upstream, 'source');
        assert.deepEqual(before.moveTo, {
          url: `${toUrl.replace(/\/$/, '')}/`,
          auth: 'forward',
          check: 'ok',
        });
        assert.equal(
          (await call(proxy.dataUrl, 'PUT', `/${s.writeAlias}/_doc/m1?refresh=true`, { n: 1 })).status,
          201,
        );
        assert.equal(
          (await s.c.mget(s.source, [{ _id: 'm1' }])).docs[0]!.found,
          true,
          'before: on the source cluster',
        );

        await ctl().hold({ holdId: 'mv', budgetMs: 20_000 });
        const held = call(proxy.dataUrl, 'PUT', `/${s.writeAlias}/_doc/m2?refresh=true`, { n: 2 });
        await until(async () => (await ctl().status()).holding?.queued === 1, 'a write queued');
        const record = await ctl().release({ holdId: 'mv', switchedTo: s.target, cluster: 'target' });
        assert.equal(record.switchedTo, s.target);
        const h = await held;
        assert.equal(h.status, 201, JSON.stringify(h.body));
        assert.equal(h.body._index, s.target);
        assert.equal((await ctl().status()).upstream, 'target');
        // Reads go there too, and the held write is on the target cluster only.
        const read = await call(proxy.dataUrl, 'GET', `/${s.readAlias}/_doc/m2`);
        assert.equal(read.status, 200, JSON.stringify(read.body));
        assert.equal((await to.mget(s.target, [{ _id: 'm2' }])).docs[0]!.found, true);
        assert.equal((await s.c.mget(s.source, [{ _id: 'm2' }])).docs[0]!.found, false);
        // The old concrete name does not exist there: such a write is routed to the new index, never creating it.
        const concrete = await call(proxy.dataUrl, 'PUT', `/${s.source}/_doc/m3`, { n: 3 });
        assert.equal(concrete.body._index, s.target, JSON.stringify(concrete.body));
        assert.equal(
          (await to.request({ method: 'HEAD', path: `/${s.source}`, okStatuses: [404] })).status,
          404,
        );
        await proxy.close();
        // A proxy started again after the move stays on the target cluster.
        proxy = await openProxy(spec);
        assert.equal((await ctl().status()).upstream, 'target');
        assert.equal((await call(proxy.dataUrl, 'GET', `/${s.readAlias}/_doc/m3`)).status, 200);

        // A rollback releases its hold with rolledBack: the held write and every later request go back to the
        // source cluster, and the switch is forgotten, also by a proxy started after it.
        await ctl().hold({ holdId: 'back', budgetMs: 20_000 });
        const heldBack = call(proxy.dataUrl, 'PUT', `/${s.writeAlias}/_doc/m4?refresh=true`, { n: 4 });
        await until(async () => (await ctl().status()).holding?.queued === 1, 'a write queued');
        await ctl().release({ holdId: 'back', rolledBack: true });
        const hb = await heldBack;
        assert.equal(hb.status, 201, JSON.stringify(hb.body));
        assert.equal(hb.body._index, s.source);
        const back = await ctl().status();
        assert.equal(back.upstream, 'source');
        assert.equal(back.switchedTo, undefined);
        assert.equal((await s.c.mget(s.source, [{ _id: 'm4' }])).docs[0]!.found, true);
        assert.equal((await to.mget(s.target, [{ _id: 'm4' }])).docs[0]!.found, false);
        await proxy.close();
        proxy = await openProxy(spec);
        assert.equal((await ctl().status()).upstream, 'source');
        // Concrete old names are no longer routed: they name the index the aliases point at again.
        const named = await call(proxy.dataUrl, 'PUT', `/${s.source}/_doc/m5`, { n: 5 });
        assert.equal(named.body._index, s.source, JSON.stringify(named.body));
      } finally {
        await proxy.close();
      }
    });
  });
