/**
 * timestamp capture: the application stamps `updated_at` on every write and deletes softly (`deleted: true`),
 * with a few hard deletes too (found by id reconcile). A sequential writer's log of acknowledged writes is the
 * expected state; the target is compared with it document by document.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterError } from '../../src/cluster/errors.js';
import { runCli, startCli } from '../support/cli.js';
import { canon, readAll } from '../support/data.js';
import { aliasTargets, scenario, transformDoc } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`timestamp capture on ${kind}`, () => {
    it('catches up stamped writes, soft deletes and hard deletes', async () => {
      const s = await scenario(kind, 2000, {
        capture: {
          strategy: 'timestamp',
          tailIntervalMs: 200,
          timestamp: { field: 'updated_at', marginSeconds: 2, softDeleteField: 'deleted' },
        },
        copy: { batchDocs: 200, maxDocsPerSecond: 1500 },
        cutover: { freezeBudgetMs: 5000 },
      });
      await s.c.putMapping(s.source, {
        properties: { updated_at: { type: 'date' }, deleted: { type: 'boolean' } },
      });
      const state = new Map<string, { doc: Record<string, unknown> | null; index: string }>();
      for (const [id, d] of s.seeded) state.set(id, { doc: d.source, index: s.source });
      let stop = false;
      const kinds: Record<string, number> = {};
      const failures: string[] = [];
      const app = (async () => {
        for (let n = 0; !stop; n++) {
          const id = Math.random() < 0.8 ? `d${Math.floor(Math.random() * 2000)}` : `new-${n % 200}`;
          const routing = s.seeded.get(id)?.routing;
          const query = routing ? { routing } : undefined;
          const now = new Date().toISOString();
          const roll = Math.random();
          try {
            if (roll < 0.4) {
              const doc = { title: `w${n}`, qty: String(n % 50), tags: ['w'], n, updated_at: now };
              const r = await s.c.request<{ _index: string }>({
                method: 'PUT',
                path: `/${s.writeAlias}/_doc/${id}`,
                query,
                body: doc,
              });
              state.set(id, { doc, index: r.body._index });
              kinds.index = (kinds.index ?? 0) + 1;
            } else if (roll < 0.95) {
              const soft = roll > 0.75;
              const r = await s.c.request<{ _index: string; get: { _source: Record<string, unknown> } }>({
                method: 'POST',
                path: `/${s.writeAlias}/_update/${id}`,
                query,
                body: {
                  doc: soft ? { deleted: true, updated_at: now } : { n, updated_at: now },
                  _source: true,
                },
                okStatuses: [404],
              });
              if (r.status === 404) continue;
              state.set(id, { doc: r.body.get._source, index: r.body._index });
              kinds[soft ? 'soft-delete' : 'update'] = (kinds[soft ? 'soft-delete' : 'update'] ?? 0) + 1;
            } else {
              const r = await s.c.request<{ _index: string }>({
                method: 'DELETE',
                path: `/${s.writeAlias}/_doc/${id}`,
                query,
                okStatuses: [404],
              });
              if (r.status === 404) continue;
              state.set(id, { doc: null, index: r.body._index });
              kinds.delete = (kinds.delete ?? 0) + 1;
            }
          } catch (e) {
            if (!(e instanceof ClusterError && e.type === 'cluster_block_exception'))
              failures.push(`${id}: ${(e as Error).message}`);
          }
          await sleep(3);
        }
      })();
      const plan = await runCli(['plan', s.specPath]);
      assert.equal(plan.code, 0, plan.stderr);
      const r = await startCli(['--json', 'run', s.specPath]).done;
      await sleep(300);
      stop = true;
      await app;
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.deepEqual(failures.slice(0, 5), []);
      assert.ok((kinds['soft-delete'] ?? 0) > 10 && (kinds.delete ?? 0) > 3, JSON.stringify(kinds));
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);

      const actual = await readAll(s.c, s.target);
      const bad: string[] = [];
      for (const [id, { doc, index }] of state) {
        // Soft-deleted documents are not copied; after the switch the application's writes land as they are.
        const gone = doc === null || (index === s.source && doc.deleted === true);
        const want = gone ? null : index === s.source ? transformDoc(doc!, id) : doc;
        const have = actual.get(id);
        if (want === null) {
          if (have) bad.push(`resurrected ${id}`);
        } else if (!have) bad.push(`lost ${id}`);
        else if (canon(have.source) !== canon(want)) bad.push(`stale ${id}`);
      }
      for (const id of actual.keys()) if (!state.has(id)) bad.push(`extra ${id}`);
      assert.deepEqual(bad.slice(0, 10), []);
      const capture = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'capture.json'), 'utf8'));
      assert.ok(capture.since, 'timestamp passes keep their position');
      await s.c.close();
    });

    it('refuses a timestamp field that is not a date', async () => {
      const s = await scenario(kind, 50, {
        capture: { strategy: 'timestamp', timestamp: { field: 'title' } },
      });
      const r = await runCli(['plan', s.specPath]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /capture\.timestamp\.field: "title" is a text field/);
      await s.c.close();
    });
  });
}
