/**
 * Append-only capture: the write alias moves to the target first, the backfill creates what is missing, reads move
 * at the end. Writers never pause: every write they got acknowledged is on the target afterwards, and none failed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startCli } from '../support/cli.js';
import { canon, readAll } from '../support/data.js';
import { aliasTargets, scenario } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`append-only capture on ${kind}`, () => {
    it('keeps every acknowledged write made during the migration, without a write freeze', async () => {
      const s = await scenario(kind, 4000, {
        capture: { strategy: 'append-only' },
        copy: { batchDocs: 200, maxDocsPerSecond: 2000 },
      });
      const plan = await runCli(['plan', s.specPath]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /was only ever appended to/);
      assert.match(plan.stdout, /reads stay on the source until the backfill is done/);

      const run = startCli(['--json', 'run', s.specPath]);
      let stop = false;
      const acked = new Map<string, Record<string, unknown>>();
      const failures: string[] = [];
      // The application: new events through the write alias in the new document shape, from the moment the write
      // alias points at the target (before that it would write the old shape to the source, as any event before).
      const writer = (async () => {
        while (!stop && (await aliasTargets(s.c, s.writeAlias))[0] !== s.target) await sleep(20);
        for (let n = 0; !stop; n++) {
          const id = `live-${n}`;
          const doc = {
            title: `live ${n}`,
            tags: ['live'],
            n: 100_000 + n,
            quantity: n % 10,
            slot: id.length,
          };
          try {
            const r = await s.c.request<{ result: string }>({
              method: 'PUT',
              path: `/${s.writeAlias}/_create/${id}`,
              body: doc,
            });
            if (r.body.result === 'created') acked.set(id, doc);
          } catch (e) {
            failures.push(`${id}: ${(e as Error).message}`);
          }
          await sleep(5);
        }
      })();
      const r = await run.done;
      stop = true;
      await writer;
      assert.equal(r.code, 0, r.stderr.slice(-1500));
      assert.deepEqual(failures, [], 'no write failed: there is no freeze');
      assert.ok(acked.size > 20, `writer got ${acked.size} writes acknowledged`);

      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
      const actual = await readAll(s.c, s.target);
      const missing: string[] = [];
      const wrong: string[] = [];
      for (const [id, e] of s.expected) {
        const a = actual.get(id);
        if (!a) missing.push(id);
        else if (canon(a.source) !== canon(e.source)) wrong.push(id);
      }
      for (const [id, doc] of acked) {
        const a = actual.get(id);
        if (!a) missing.push(id);
        else if (canon(a.source) !== canon(doc)) wrong.push(id);
      }
      assert.deepEqual([missing.slice(0, 5), wrong.slice(0, 5)], [[], []]);
      assert.equal(actual.size, s.expected.size + acked.size, 'nothing extra');
      await s.c.close();
    });

    it('is refused when the source shows updates or deletes, unless forced', async () => {
      const s = await scenario(kind, 300, { capture: { strategy: 'append-only' } });
      await s.c.bulk(`${JSON.stringify({ delete: { _index: s.source, _id: 'd1' } })}\n`, { refresh: true });
      const refused = await runCli(['plan', s.specPath]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        /shows updated or deleted documents \(shard \d: \d+ operations for \d+ documents/,
      );
      s.writeSpec({ capture: { strategy: 'append-only', force: true } });
      const forced = await runCli(['plan', s.specPath]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /forced by capture.force/);

      s.writeSpec({ capture: { strategy: 'append-only' }, aliases: { read: [s.readAlias, s.writeAlias] } });
      const shared = await runCli(['plan', s.specPath]);
      assert.equal(shared.code, 2);
      assert.match(shared.stderr, /is also a read alias/);
      await s.c.close();
    });
  });
}
