/**
 * cutover.revertTransform: when the migration changes the document shape (`price` becomes `price_cents`, an
 * integer), the application writes the new shape after the switch, and the reverse sync of the revert window must
 * turn those writes back into the old shape on the old index. After a rollback inside the window the old index
 * holds, id by id, the seeded documents the application never touched and the application's later writes mapped
 * back; nothing in the new shape leaks into it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import type { Cluster } from '../../src/cluster/client.js';
import { ClusterError } from '../../src/cluster/errors.js';
import { runCli, startCli } from '../support/cli.js';
import { testCluster, uniqueName } from '../support/clusters.js';
import { canon, clusterOf, readAll, seed } from '../support/data.js';
import { aliasTargets } from '../support/scenario.js';

type Doc = Record<string, unknown>;

const FORWARD = `export default function ({ price, ...rest }) {
  return { ...rest, price_cents: Math.round(price * 100) };
}
`;
const BACK = `export default function ({ price_cents, ...rest }) {
  return { ...rest, price: price_cents / 100 };
}
`;
const back = ({ price_cents, ...rest }: Doc): Doc => ({ ...rest, price: (price_cents as number) / 100 });

/**
 * The application after the switch: new code writing the new shape through the write alias (index, partial
 * update, delete; existing and new ids), sequentially, so its log is the exact last state of each id. It stops at
 * the first write that lands on the old index: after the rollback the old code takes over.
 */
function newApplication(c: Cluster, writeAlias: string, ids: number, stop: () => boolean) {
  const log = new Map<string, { doc: Doc | null; index: string }>();
  const st = {
    acked: 0,
    attempts: 0,
    refusedByFreeze: 0,
    onIndex: new Set<string>(),
    failures: [] as string[],
  };
  const done = (async () => {
    for (let n = 1; !stop(); n++) {
      st.attempts++;
      const id = Math.random() < 0.75 ? `d${Math.floor(Math.random() * ids)}` : `new-${n % 100}`;
      const roll = Math.random();
      try {
        let index: string;
        if (roll < 0.4) {
          const doc = { title: `written ${n}`, n, price_cents: (n * 37) % 100_000 };
          const r = await c.request<{ _index: string }>({
            method: 'PUT',
            path: `/${writeAlias}/_doc/${id}`,
            body: doc,
          });
          index = r.body._index;
          log.set(id, { doc, index });
        } else if (roll < 0.75) {
          const r = await c.request<{ _index: string; get?: { _source: Doc } }>({
            method: 'POST',
            path: `/${writeAlias}/_update/${id}`,
            body: { doc: { price_cents: (n * 53) % 100_000 }, _source: true },
            okStatuses: [404],
          });
          if (r.status === 404) continue;
          index = r.body._index;
          log.set(id, { doc: r.body.get!._source, index });
        } else {
          const r = await c.request<{ _index: string }>({
            method: 'DELETE',
            path: `/${writeAlias}/_doc/${id}`,
            okStatuses: [404],
          });
          if (r.status === 404) continue;
          index = r.body._index;
          log.set(id, { doc: null, index });
        }
        st.acked++;
        st.onIndex.add(index);
        if (st.onIndex.size > 1) return;
      } catch (e) {
        if (e instanceof ClusterError && e.type === 'cluster_block_exception') st.refusedByFreeze++;
        else st.failures.push(`${id}: ${(e as Error).message}`);
      }
      await sleep(3);
    }
  })();
  return { log, st, done };
}

describe('revert transform on es8', () => {
  it('copies writes made on the new index back in the old shape, and a rollback keeps every one', async () => {
    const t = testCluster('es8');
    const c = clusterOf(t);
    const source = uniqueName('price');
    const readAlias = `${source}-read`;
    const writeAlias = `${source}-write`;
    const target = `${source}-v2`;
    const count = 1000;
    // Prices in whole cents, so price -> price_cents -> price is exact.
    const seeded = await seed(
      c,
      source,
      count,
      (i) => ({ id: `d${i}`, doc: { title: `item ${i}`, n: i, price: (i * 7) / 100 } }),
      {
        settings: { number_of_shards: 3, number_of_replicas: 0 },
        mappings: { properties: { title: { type: 'text' }, n: { type: 'long' }, price: { type: 'double' } } },
        aliases: { [readAlias]: {}, [writeAlias]: { is_write_index: true } },
      },
    );
    const dir = mkdtempSync(join(tmpdir(), 'cutover-test-'));
    writeFileSync(join(dir, 'price.mjs'), FORWARD);
    writeFileSync(join(dir, 'back.mjs'), BACK);
    const specPath = join(dir, 'spec.yaml');
    writeFileSync(
      specPath,
      YAML.stringify({
        name: 'm1',
        source: { cluster: { url: t.url }, index: readAlias },
        target: {
          index: target,
          mappingOverrides: { properties: { price: null, price_cents: { type: 'integer' } } },
        },
        aliases: { read: [readAlias], write: writeAlias },
        copy: { batchDocs: 200, concurrency: 2 },
        capture: { strategy: 'seqno', tailIntervalMs: 200 },
        cutover: { revertWindowMinutes: 30, freezeBudgetMs: 5000, revertTransform: './back.mjs' },
        transform: './price.mjs',
        stateDir: './state',
      }),
    );

    const run = startCli(['--json', 'run', specPath]);
    let out = '';
    run.child.stderr!.on('data', (d) => {
      out += d;
    });
    while (!/revert window open until/.test(out)) {
      assert.equal(run.child.exitCode, null, `run ended early: ${out.slice(-1500)}`);
      await sleep(100);
    }
    assert.deepEqual(await aliasTargets(c, writeAlias), [target]);

    let stop = false;
    const app = newApplication(c, writeAlias, count, () => stop);
    while (app.st.acked < 200) {
      assert.deepEqual(app.st.failures.slice(0, 5), []);
      await sleep(100);
    }
    // The application keeps writing through the rollback; writes refused by its freeze are not in the log.
    const rb = await runCli(['rollback', specPath]);
    assert.equal(rb.code, 0, rb.stderr.slice(-1500));
    assert.match(rb.stdout, /aliases point at .* again/);
    const attempts = app.st.attempts;
    while (app.st.attempts < attempts + 5 && app.st.onIndex.size < 2) await sleep(50);
    stop = true;
    await app.done;
    const r = await run.done;
    assert.equal(r.code, 0, `run hands over and ends cleanly: ${r.stderr.slice(-1500)}`);
    assert.deepEqual(await aliasTargets(c, writeAlias), [source]);
    assert.deepEqual(await aliasTargets(c, readAlias), [source]);
    assert.deepEqual(app.st.failures.slice(0, 5), []);
    const onTarget = [...app.log.values()].filter((w) => w.index === target);
    assert.ok(
      onTarget.some((w) => w.doc === null) && onTarget.filter((w) => w.doc !== null).length > 50,
      'the application indexed, updated and deleted on the new index',
    );

    // The new index holds the new shape only: anything in the old shape on the old index came back through BACK.
    for (const [id, d] of await readAll(c, target))
      assert.ok(
        !('price' in d.source) && 'price_cents' in d.source,
        `${id} on ${target}: ${canon(d.source)}`,
      );

    // Expected old index: seeded documents, then each id's last acknowledged write, mapped back when it was made
    // on the new index; a write after the rollback went to the old index as written.
    const expected = new Map<string, Doc>();
    for (const [id, d] of seeded) expected.set(id, d.source);
    for (const [id, w] of app.log) {
      if (w.doc === null) expected.delete(id);
      else expected.set(id, w.index === target ? back(w.doc) : w.doc);
    }
    const actual = await readAll(c, source);
    const lost: string[] = [];
    const stale: string[] = [];
    for (const [id, want] of expected) {
      const have = actual.get(id);
      if (!have) lost.push(id);
      else if (canon(have.source) !== canon(want))
        stale.push(`${id}: ${canon(have.source)} != ${canon(want)}`);
    }
    const extra = [...actual.keys()].filter((id) => !expected.has(id));
    assert.deepEqual(
      { lost: lost.slice(0, 5), stale: stale.slice(0, 5), extra: extra.slice(0, 5) },
      { lost: [], stale: [], extra: [] },
    );
    const rev = JSON.parse(readFileSync(join(dir, 'state', 'm1', 'revert.json'), 'utf8'));
    assert.ok(rev.applied > 0, 'the reverse sync copied writes back');
    await c.close();
  });
});
