/**
 * Newest first (`copy.order: newest-first`): a time-based index copied window by window from its newest documents
 * back. Documents are written in random time order, so `_seq_no` order says nothing about age.
 *   - A run killed with kill -9 halfway: status says how far back the copy has reached, and every source document
 *     at or after that date is on the target, id by id; what was copied is the newest part of the index.
 *   - Writers then move documents between windows (their dates change), delete and re-create, while the resumed run
 *     finishes from the checkpoints and switches: the target equals the writers' log id by id.
 *   - A field that is not a date is refused by plan, named, exit 2.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { runCli } from '../support/cli.js';
import { EXPECTED, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, readAll, seed } from '../support/data.js';
import {
  compare,
  defaultDoc,
  describeComparison,
  expectedState,
  sourcesOf,
  startWriters,
  writerClusterOf,
} from '../support/writers.js';

const DOCS = 6000;
const UNDATED = 60;
const START = Date.parse('2024-01-01T00:00:00Z');
const SPAN = 2 * 365 * 86_400_000;

/** A small PRNG: the seeded dates are the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const dateAt = (r: number) => new Date(START + Math.floor(r * SPAN)).toISOString();

for (const kind of (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k))) {
  describe(`newest-first copy on ${kind}`, () => {
    it('copies the newest windows first, says how far back it reached, resumes after kill -9 under live writes', {
      timeout: 300_000,
    }, async (t) => {
      const server = testCluster(kind);
      const c = clusterOf(server);
      const wc = writerClusterOf(server);
      const source = uniqueName('nf');
      const target = `${source}-v2`;
      const read = `${source}-read`;
      const write = `${source}-write`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await Promise.all([c.close(), wc.close()]);
      });
      const rnd = prng(7);
      const seeded = await seed(
        c,
        source,
        DOCS,
        (i) => ({
          id: `d${i}`,
          doc: i < UNDATED ? defaultDoc(`d${i}`, i) : { ...defaultDoc(`d${i}`, i), ts: dateAt(rnd()) },
        }),
        {
          settings: { number_of_shards: 3, number_of_replicas: 0 },
          mappings: {
            properties: { ts: { type: 'date' }, title: { type: 'text' }, qty: { type: 'keyword' } },
          },
          aliases: { [read]: {}, [write]: { is_write_index: true } },
        },
      );
      const dir = mkdtempSync(join(tmpdir(), 'cutover-newest-'));
      const spec = (order: Record<string, unknown>) => {
        const p = join(dir, `spec-${Object.keys(order).join('-')}.yaml`);
        writeFileSync(
          p,
          YAML.stringify({
            name: 'nf',
            source: { cluster: { url: server.url }, index: source },
            target: { index: target },
            aliases: { read: [read], write },
            capture: { strategy: 'seqno', tailIntervalMs: 200 },
            copy: { batchDocs: 100, concurrency: 2, sampleSize: 100, ...order },
            cutover: { freezeBudgetMs: 5000 },
            stateDir: './state',
          }),
        );
        return p;
      };

      // A field that is no date: refused, named, before anything is made.
      const bad = await runCli(['plan', spec({ order: 'newest-first', newestFirst: { field: 'qty' } })]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /copy\.newestFirst\.field: "qty" is a keyword field/);
      assert.equal(await c.indexExists(target), false);

      const specPath = spec({ order: 'newest-first', newestFirst: { field: 'ts', windows: 8 } });
      const plan = await runCli(['plan', specPath]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /newest first by ts: its span cut into 8 time windows/);

      // ---- killed halfway: 24 streams (8 windows + the undated, x 3 shards), ~70 bulks of 100 in all
      const killed = await runCli(['run', specPath], { CUTOVER_FAILPOINTS: 'copy.after-bulk:36' });
      assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-1500));
      const st = await runCli(['--json', 'status', specPath]);
      assert.equal(st.code, 0, st.stderr);
      const reached = (
        JSON.parse(st.stdout) as { newestFirst?: { field: string; reachedBack: string | null } }
      ).newestFirst;
      assert.equal(reached?.field, 'ts', st.stdout.slice(0, 500));
      assert.ok(
        typeof reached.reachedBack === 'string' && reached.reachedBack !== 'all',
        `how far back, halfway: ${JSON.stringify(reached)}`,
      );
      const since = Date.parse(reached.reachedBack);
      const onTarget = await readAll(c, target);
      const dated = [...seeded].filter(([, d]) => typeof d.source.ts === 'string');
      const newer = dated.filter(([, d]) => Date.parse(d.source.ts as string) >= since);
      const missing = newer.filter(([id]) => !onTarget.has(id)).map(([id]) => id);
      assert.deepEqual(
        missing.slice(0, 5),
        [],
        `documents from ${reached.reachedBack} on missing on the target`,
      );
      assert.ok(
        newer.length > 0 && onTarget.size < DOCS,
        `halfway: ${onTarget.size} copied, ${newer.length} newer`,
      );
      // What was copied is the newest part: half the index copied newest first has its median at three quarters of
      // the span, against the half of the whole index (in _seq_no order it would be about the same).
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const copiedDates = [...onTarget.values()].flatMap((d) =>
        typeof d.source.ts === 'string' ? [Date.parse(d.source.ts)] : [],
      );
      const allDates = dated.map(([, d]) => Date.parse(d.source.ts as string));
      assert.ok(
        median(copiedDates) > median(allDates) + SPAN / 8,
        `copied median ${new Date(median(copiedDates)).toISOString()} vs index median ${new Date(median(allDates)).toISOString()}`,
      );
      assert.ok(
        [...onTarget.keys()].every((id) => Number(id.slice(1)) >= UNDATED),
        'the documents without the date come last',
      );

      // ---- writers move documents between windows while the resumed run finishes and switches
      const w = startWriters({
        cluster: wc,
        alias: write,
        writers: 3,
        ratePerWriter: 10,
        ids: 100,
        seedIds: [...seeded.keys()].filter((_, i) => i % 20 === 7),
        makeDoc: (id, n) => ({ ...defaultDoc(id, n), ts: dateAt(Math.random()) }),
        makeUpdate: (_id, n, random) => (random() < 0.7 ? { ts: dateAt(random()) } : { u: n }),
        seed: 11,
      });
      // Some moves land before the resumed run opens its point in time: into windows already copied, where only
      // the capture can find them.
      await sleep(1500);
      const r = await runCli(['--json', 'run', specPath, '--take-over-lock']);
      const report = await w.stop();
      assert.equal(r.code, 0, r.stderr.slice(-2500));
      assert.ok(report.acked > 30, `writers acknowledged ${report.acked}`);
      const done = await runCli(['status', specPath]);
      assert.match(done.stdout, /newest first\s+by ts; every dated document is copied/);
      const cmp = compare(expectedState(report, [source, target]), sourcesOf(await readAll(c, target)), {
        seeded: sourcesOf(seeded),
      });
      assert.deepEqual(
        { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
        { lost: [], stale: [], resurrected: [], extra: [] },
        describeComparison(cmp),
      );
    });
  });
}
