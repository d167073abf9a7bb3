/**
 * Across clusters and versions: an Elasticsearch 7.17 source, an Elasticsearch 8.19 target on another cluster.
 * The aliases are created on the target cluster with the options they had on the source and removed from the
 * source; live writes through the source's write alias during the copy all reach the target; translations of
 * the body for 8.x are listed by plan; a body 8.x refuses is refused by plan (exit 2) with nothing created; and a
 * narrowed type is checked on every document, not on a sample.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import type { Cluster } from '../../src/cluster/client.js';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, readAll, seed } from '../support/data.js';
import {
  compare,
  describeComparison,
  expectedState,
  isExact,
  sourcesOf,
  startWriters,
  writerClusterOf,
} from '../support/writers.js';

const es7 = testCluster('es7');
const es8 = testCluster('es8');

function specFile(spec: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-cross-'));
  const path = join(dir, 'spec.yaml');
  writeFileSync(path, YAML.stringify({ stateDir: './state', ...spec }));
  return path;
}

const doc = (i: number) => ({ id: `d${i}`, doc: { title: `document ${i}`, n: i, tag: `t${i % 5}` } });

async function aliasesOn(c: Cluster, name: string): Promise<Record<string, Record<string, unknown>>> {
  const found = await c.getAlias(name);
  return Object.fromEntries(Object.entries(found).map(([ix, v]) => [ix, v.aliases[name] ?? {}]));
}

describe('Elasticsearch 7.17 -> Elasticsearch 8.19 on another cluster', () => {
  it('switches with aliases created on the target cluster, live writes through the source alias all arrive', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const wc = writerClusterOf(es7);
    const source = uniqueName('xc-src');
    const target = `${source}-v2`;
    const read = `${source}-read`;
    const write = `${source}-write`;
    const filtered = `${source}-t1`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await dst.deleteIndex(target).catch(() => undefined);
      await src.request({
        method: 'PUT',
        path: '/_cluster/settings',
        body: { persistent: { 'action.auto_create_index': null } },
      });
      await Promise.all([src.close(), dst.close(), wc.close()]);
    });
    const seeded = await seed(src, source, 2000, doc, {
      settings: { number_of_shards: 3, number_of_replicas: 0 },
      mappings: { properties: { title: { type: 'text' }, n: { type: 'long' }, tag: { type: 'keyword' } } },
      aliases: {
        [read]: {},
        [write]: { is_write_index: true },
        [filtered]: { filter: { term: { tag: 't1' } }, index_routing: 'r1', search_routing: 'r1,r2' },
      },
    });
    // What the plan recommends: writers left on the source must not auto-create an index named like the alias.
    await src.request({
      method: 'PUT',
      path: '/_cluster/settings',
      body: { persistent: { 'action.auto_create_index': `-${write},+*` } },
    });
    const spec = specFile({
      name: 'xc1',
      source: { cluster: { url: es7.url }, index: read },
      target: { cluster: { url: es8.url }, index: target },
      aliases: { read: [read, filtered], write },
      copy: { batchDocs: 200, concurrency: 2 },
      capture: { strategy: 'seqno' },
      // Generous: a freeze that finds deletes pending scans ids under it, slow on a loaded 2-core machine.
      cutover: { freezeBudgetMs: 10_000 },
    });

    const plan = await runCli(['plan', spec]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(
      plan.stdout,
      /source Elasticsearch 7\.17\.\d+ -> target Elasticsearch 8\.\d+\.\d+: major upgrade/,
    );
    assert.match(
      plan.stdout,
      /two _aliases requests on two clusters: first add .* on http:\/\/127\.0\.0\.1:\d+\/? to /,
    );
    assert.doesNotMatch(plan.stdout, /one _aliases request/);
    assert.match(plan.stdout, /alias names free on/);

    const w = startWriters({
      cluster: wc,
      alias: write,
      writers: 3,
      ratePerWriter: 10,
      ids: 150,
      seedIds: [...seeded.keys()].filter((_, i) => i % 10 === 3),
      seed: 14,
    });
    const run = await startCli(['--json', 'run', spec]).done;
    const report = await w.stop();
    if (process.env.CUTOVER_XC_DEBUG) console.error(run.stderr);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(report.acked > 50, `writers acknowledged ${report.acked} writes`);
    assert.equal(report.ambiguous, 0);

    // Aliases on the target cluster, with the options they had; gone from the source.
    assert.deepEqual(await aliasesOn(dst, read), { [target]: {} });
    assert.deepEqual(await aliasesOn(dst, write), { [target]: { is_write_index: true } });
    assert.deepEqual(await aliasesOn(dst, filtered), {
      [target]: { filter: { term: { tag: 't1' } }, index_routing: 'r1', search_routing: 'r1,r2' },
    });
    for (const a of [read, write, filtered]) assert.deepEqual(await aliasesOn(src, a), {}, a);

    // Every acknowledged write of the writers is on the target, id by id.
    const cmp = compare(expectedState(report, [source]), sourcesOf(await readAll(dst, target)), {
      seeded: sourcesOf(seeded),
    });
    assert.ok(isExact(cmp), describeComparison(cmp));
    // After the switch the writers' writes through the source alias were refused, never landed elsewhere.
    assert.equal(await src.indexExists(write), false);
    const quiet = await runCli(['--json', 'source-writes', spec, '--seconds', '1']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(JSON.parse(quiet.stdout).operations, 0);
  });

  it('finishes a switch killed between its two requests, and rolls back onto the source cluster', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-kill');
    const target = `${source}-v2`;
    const read = `${source}-read`;
    const write = `${source}-write`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await dst.deleteIndex(target).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    await seed(src, source, 300, doc, {
      settings: { number_of_shards: 2, number_of_replicas: 0 },
      aliases: { [read]: { is_hidden: true }, [write]: { is_write_index: true } },
    });
    const spec = specFile({
      name: 'xc5',
      source: { cluster: { url: es7.url }, index: source },
      target: { cluster: { url: es8.url }, index: target },
      aliases: { read: [read], write },
      capture: { strategy: 'seqno' },
      cutover: { freezeBudgetMs: 10_000 },
    });
    const killed = await runCli(['run', spec], { CUTOVER_FAILPOINTS: 'aliases.between-clusters:1' });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    // Killed inside the freeze, after the add on the target cluster and before the removal from the source.
    assert.deepEqual(Object.keys(await aliasesOn(dst, write)), [target]);
    assert.deepEqual(Object.keys(await aliasesOn(src, write)), [source]);

    const again = await runCli(['run', spec]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /finished that before lifting the write block/);
    assert.deepEqual(await aliasesOn(dst, read), { [target]: { is_hidden: true } });
    assert.deepEqual(await aliasesOn(dst, write), { [target]: { is_write_index: true } });
    assert.deepEqual(await aliasesOn(src, read), {});
    assert.deepEqual(await aliasesOn(src, write), {});
    const settings = Object.values(await src.getSettings(source))[0]!.settings;
    assert.equal(settings['index.blocks.write'], undefined, 'the write block is lifted');

    const back = await runCli(['rollback', spec]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(await aliasesOn(src, read), { [source]: { is_hidden: true } });
    assert.deepEqual(await aliasesOn(src, write), { [source]: { is_write_index: true } });
    assert.deepEqual(await aliasesOn(dst, read), {});
    assert.deepEqual(await aliasesOn(dst, write), {});
  });

  it('manual mode prints the steps; source-writes sees writes still reaching the old index', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-man');
    const target = `${source}-v2`;
    const write = `${source}-write`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await dst.deleteIndex(target).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    await seed(src, source, 200, doc, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      aliases: { [write]: { is_write_index: true } },
    });
    const spec = specFile({
      name: 'xc6',
      source: { cluster: { url: es7.url }, index: source },
      target: { cluster: { url: es8.url }, index: target },
      aliases: { write },
      capture: { strategy: 'none' },
      cutover: { mode: 'manual' },
    });
    const run = await runCli(['run', spec]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /manual step 1: `cutover cutover .*spec\.yaml` proves the copy again, then switches/,
    );
    assert.match(
      run.stderr,
      new RegExp(`manual step 2: point the application at ${es8.url}/? \\(write through ${write}`),
    );
    assert.match(run.stderr, /manual step 3: `cutover source-writes /);
    const cut = await runCli(['cutover', spec]);
    assert.equal(cut.code, 0, cut.stderr);
    assert.deepEqual(Object.keys(await aliasesOn(dst, write)), [target]);
    // A client that still writes to the old index by its concrete name: the check says so (exit 3).
    let writing = true;
    const loop = (async () => {
      for (let i = 0; writing; i++) {
        await src.request({ method: 'PUT', path: `/${source}/_doc/late-${i}`, body: { n: i } });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const busy = await runCli(['--json', 'source-writes', spec, '--seconds', '2']);
    writing = false;
    await loop;
    assert.equal(busy.code, 3, busy.stderr);
    assert.ok(JSON.parse(busy.stdout).operations > 0, busy.stdout);
    const quiet = await runCli(['source-writes', spec, '--seconds', '1']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout, /0 write\(s\) on .* the source receives no writes/);
  });

  it('translates what 8.x refuses (_field_names, soft deletes off) and lists it in plan', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-fn');
    const target = `${source}-v2`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await dst.deleteIndex(target).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    const seeded = await seed(src, source, 500, doc, {
      settings: { number_of_shards: 2, number_of_replicas: 0, 'index.soft_deletes.enabled': false },
      mappings: {
        _field_names: { enabled: false },
        properties: { title: { type: 'text' }, n: { type: 'long' }, tag: { type: 'keyword' } },
      },
    });
    const spec = specFile({
      name: 'xc2',
      source: { cluster: { url: es7.url }, index: source },
      target: { cluster: { url: es8.url }, index: target },
      capture: { strategy: 'none' },
    });
    const plan = await runCli(['plan', spec]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(
      plan.stdout,
      /mapping translation: dropped _field_names\.enabled=false \(refused by Elasticsearch 8/,
    );
    assert.match(
      plan.stdout,
      /dropped index\.soft_deletes\.enabled=false \(refused by Elasticsearch 8\).*soft deletes on/,
    );
    const run = await runCli(['run', spec]);
    assert.equal(run.code, 0, run.stderr);
    const got = await readAll(dst, target);
    assert.equal(got.size, seeded.size);
    for (const [id, d] of seeded) assert.deepEqual(got.get(id)?.source, d.source, id);
    const mapping = Object.values(await dst.getMapping(target))[0]!.mappings as Record<string, unknown>;
    assert.equal(mapping._field_names, undefined);
  });

  it('refuses in plan a body 8.x will not take, naming the field and the fix; nothing is created', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-boost');
    const target = `${source}-v2`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    await seed(src, source, 50, doc, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: { properties: { title: { type: 'text', boost: 2 }, n: { type: 'long' } } },
    });
    const spec = specFile({
      name: 'xc3',
      source: { cluster: { url: es7.url }, index: source },
      target: { cluster: { url: es8.url }, index: target },
      capture: { strategy: 'none' },
    });
    for (const cmd of ['plan', 'run']) {
      const r = await runCli([cmd, spec]);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      const text = r.stdout + r.stderr;
      assert.match(text, /refuses the target index: Unknown parameter \[boost\] on mapper \[title\]/);
      assert.match(text, /target\.mappingOverrides: \{"properties":\{"title":\{"boost":null\}\}\}/);
      assert.equal(await dst.indexExists(target), false);
      assert.equal(await dst.indexExists(`${target}-cutover-sample`), false);
    }
  });

  it('finds the one long value above 2^31 among 20,000 documents when the field becomes an integer', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-viol');
    const target = `${source}-v2`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    await seed(
      src,
      source,
      20_000,
      (i) => (i === 13_579 ? { id: `d${i}`, doc: { title: 'big', n: 3_000_000_000, tag: 't' } } : doc(i)),
      {
        settings: { number_of_shards: 2, number_of_replicas: 0 },
        mappings: { properties: { title: { type: 'text' }, n: { type: 'long' }, tag: { type: 'keyword' } } },
      },
    );
    const spec = specFile({
      name: 'xc4',
      source: { cluster: { url: es7.url }, index: source },
      target: {
        cluster: { url: es8.url },
        index: target,
        mappingOverrides: { properties: { n: { type: 'integer' } } },
      },
      capture: { strategy: 'none' },
    });
    const plan = await runCli(['--json', 'plan', spec]);
    assert.equal(plan.code, 2, plan.stderr);
    const out = JSON.parse(plan.stdout) as {
      findings: Array<{ check: string; severity: string; message: string }>;
    };
    const v = out.findings.filter((f) => f.check === 'violators');
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.equal(v[0]!.severity, 'block');
    assert.match(
      v[0]!.message,
      /^n \(long -> integer\): 1 source document\(s\) hold values the target refuses .*first ids: "d13579"$/,
    );
    assert.equal(await dst.indexExists(target), false);
  });

  it('finds keyword values that will not parse as the new numeric type, by their distinct values', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-kw');
    const target = `${source}-v2`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    // '' is no value for a numeric field (accepted); ' 12' and '0x10' are refused, as the target would refuse them.
    const bad: Record<number, string> = { 77: 'n/a', 1234: ' 12', 2999: '0x10', 500: '' };
    await seed(src, source, 3000, (i) => ({ id: `k${i}`, doc: { code: bad[i] ?? String(i * 7) } }), {
      settings: { number_of_shards: 2, number_of_replicas: 0 },
      mappings: { properties: { code: { type: 'keyword' } } },
    });
    const spec = specFile({
      name: 'xc7',
      source: { cluster: { url: es7.url }, index: source },
      target: {
        cluster: { url: es8.url },
        index: target,
        mappingOverrides: { properties: { code: { type: 'long' } } },
      },
      capture: { strategy: 'none' },
      copy: { sampleSize: 0 },
    });
    const plan = await runCli(['--json', 'plan', spec]);
    assert.equal(plan.code, 2, plan.stderr);
    const out = JSON.parse(plan.stdout) as { findings: Array<{ check: string; message: string }> };
    const v = out.findings.filter((f) => f.check === 'violators');
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.match(v[0]!.message, /^code \(keyword -> long\): 3 source document\(s\)/);
    for (const id of ['k77', 'k1234', 'k2999']) assert.match(v[0]!.message, new RegExp(`"${id}"`));
    assert.doesNotMatch(v[0]!.message, /"k500"/);
  });
});

describe('date values the new format refuses, judged by the target cluster on every distinct value', () => {
  it('keyword -> date with a format (7.17 -> 8.19): every refused value found, named with its ids; nothing left on the target', async (t) => {
    const src = clusterOf(es7);
    const dst = clusterOf(es8);
    const source = uniqueName('xc-kd');
    const target = `${source}-v2`;
    t.after(async () => {
      await src.deleteIndex(source).catch(() => undefined);
      await Promise.all([src.close(), dst.close()]);
    });
    // One value in another order, one with a time the new format has no room for, one that is no date.
    const bad: Record<number, string> = { 311: '02/01/2024', 1888: '2024-01-02T10:00:00Z', 2950: 'soon' };
    const day = (i: number) =>
      new Date(Date.UTC(2024, 0, 1) + (i % 700) * 86_400_000).toISOString().slice(0, 10);
    await seed(src, source, 3000, (i) => ({ id: `k${i}`, doc: { when: bad[i] ?? day(i) } }), {
      settings: { number_of_shards: 2, number_of_replicas: 0 },
      mappings: { properties: { when: { type: 'keyword' } } },
    });
    const spec = specFile({
      name: 'xc8',
      source: { cluster: { url: es7.url }, index: source },
      target: {
        cluster: { url: es8.url },
        index: target,
        mappingOverrides: { properties: { when: { type: 'date', format: 'yyyy-MM-dd' } } },
      },
      capture: { strategy: 'none' },
      copy: { sampleSize: 0 },
    });
    const plan = await runCli(['--json', 'plan', spec]);
    assert.equal(plan.code, 2, plan.stderr);
    const out = JSON.parse(plan.stdout) as {
      findings: Array<{ check: string; message: string; severity: string }>;
    };
    const v = out.findings.filter((f) => f.check === 'violators' && f.severity !== 'ok');
    assert.equal(v.length, 1, JSON.stringify(v));
    assert.match(v[0]!.message, /^when \(keyword -> date "yyyy-MM-dd"\): 3 source document\(s\)/);
    for (const id of Object.keys(bad)) assert.match(v[0]!.message, new RegExp(`"k${id}"`));
    for (const value of Object.values(bad)) assert.ok(v[0]!.message.includes(JSON.stringify(value)), value);
    assert.equal(await dst.indexExists(target), false);
    assert.equal(await dst.indexExists(`${target}-cutover-sample`), false, 'the scratch index is gone');
  });
});

for (const kind of (['os3', 'es8'] as const).filter((k) => EXPECTED.includes(k)))
  describe(`date -> date with another format on ${kind}`, () => {
    it(
      kind === 'os3'
        ? 'reads the texts the application sent from _source (painless) and names the ones the new format refuses'
        : 'without painless on the source, names the field as not checked exactly (the sample decides)',
      async (t) => {
        const server = testCluster(kind);
        const c = clusterOf(server);
        const source = uniqueName('dd');
        const target = `${source}-v2`;
        t.after(async () => {
          await c.deleteIndex(source).catch(() => undefined);
          await c.close();
        });
        const bad: Record<number, string | number> = { 40: '2024-03-04T05:06:07Z', 900: 1_700_000_000_000 };
        await seed(
          c,
          source,
          1500,
          (i) => ({ id: `t${i}`, doc: { at: bad[i] ?? `2024-${String((i % 12) + 1).padStart(2, '0')}-15` } }),
          {
            settings: { number_of_shards: 2, number_of_replicas: 0 },
            mappings: { properties: { at: { type: 'date' } } },
          },
        );
        const spec = specFile({
          name: 'dd1',
          source: { cluster: { url: server.url }, index: source },
          target: {
            index: target,
            mappingOverrides: { properties: { at: { type: 'date', format: 'yyyy-MM-dd' } } },
          },
          capture: { strategy: 'none' },
          copy: { sampleSize: 0 },
        });
        const plan = await runCli(['--json', 'plan', spec]);
        assert.equal(
          plan.code,
          kind === 'os3' ? 2 : 0,
          `${plan.stdout.slice(0, 1500)}\n${plan.stderr.slice(-1500)}`,
        );
        // A refused plan lists its findings; one that passes lists them among the facts.
        const out = JSON.parse(plan.stdout) as {
          findings?: Array<{ check: string; message: string; severity: string }>;
          facts?: { findings: Array<{ check: string; message: string; severity: string }> };
        };
        const v = (out.findings ?? out.facts?.findings ?? []).filter((f) => f.check === 'violators');
        if (kind === 'os3') {
          assert.equal(plan.code, 2, plan.stderr);
          assert.equal(v.length, 1, JSON.stringify(v));
          assert.match(
            v[0]!.message,
            /^at \(date "strict_date_optional_time\|\|epoch_millis" -> date "yyyy-MM-dd"\): 2 source document\(s\)/,
          );
          assert.match(v[0]!.message, /"t40"/);
          assert.match(v[0]!.message, /"t900"/);
        } else {
          assert.equal(plan.code, 0, plan.stderr);
          assert.equal(v.length, 1, JSON.stringify(v));
          assert.equal(v[0]!.severity, 'info');
          assert.match(
            v[0]!.message,
            /^at \(date .* -> date "yyyy-MM-dd"\): .*painless.* not checked exactly/,
          );
        }
        assert.equal(await c.indexExists(target), false);
      },
    );
  });

if (EXPECTED.includes('es8'))
  describe('date -> date_nanos on es8', () => {
    it('finds the instants date_nanos cannot hold (before 1970), by query on every document', async (t) => {
      const server = testCluster('es8');
      const c = clusterOf(server);
      const source = uniqueName('dn');
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.close();
      });
      const old: Record<number, string> = { 17: '1969-12-31T23:59:59Z', 1203: '1900-01-01' };
      await seed(
        c,
        source,
        2000,
        (i) => ({ id: `n${i}`, doc: { at: old[i] ?? `2020-01-${String((i % 28) + 1).padStart(2, '0')}` } }),
        {
          settings: { number_of_shards: 2, number_of_replicas: 0 },
          mappings: { properties: { at: { type: 'date' } } },
        },
      );
      const spec = specFile({
        name: 'dn1',
        source: { cluster: { url: server.url }, index: source },
        target: { index: `${source}-v2`, mappingOverrides: { properties: { at: { type: 'date_nanos' } } } },
        capture: { strategy: 'none' },
        copy: { sampleSize: 0 },
      });
      const plan = await runCli(['--json', 'plan', spec]);
      assert.equal(plan.code, 2, plan.stderr);
      const out = JSON.parse(plan.stdout) as { findings: Array<{ check: string; message: string }> };
      const v = out.findings.filter((f) => f.check === 'violators');
      assert.equal(v.length, 1, JSON.stringify(v));
      assert.match(v[0]!.message, /^at \(date -> date_nanos\): 2 source document\(s\)/);
      assert.match(v[0]!.message, /"n17"/);
      assert.match(v[0]!.message, /"n1203"/);
      assert.equal(await c.indexExists(`${source}-v2`), false);
    });
  });
