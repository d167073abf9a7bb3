/**
 * Dead letters of a shared copy reach the runner (copy.workers on the NATS JetStream at 127.0.0.1:4222): a worker
 * with a state directory of its own (as on another machine) and the runner copy a source in which 40 documents do
 * not fit the target's mapping. Each process keeps the letters it met in its own file, and at the end of the copy
 * the runner's file holds all 40: its count gate (copy.maxDeadLetters: 40) and its proof, which excuses only
 * dead-lettered ids, pass, and the target holds every other document, id by id.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCli } from '../support/cli.js';
import { EXPECTED, type PlainKind, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, diffDocs, readAll, seed, summarize } from '../support/data.js';
import { bucketsOf, destroyBuckets, NATS } from '../support/nats.js';
import { auditOf, specFile, waitFor } from '../support/spec-dir.js';

const lettersIn = (state: string): Array<{ id: string; doc?: unknown }> => {
  const p = join(state, 'dead-letters.ndjson');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; doc?: unknown });
};

for (const kind of (['es8'] as PlainKind[]).filter((k) => EXPECTED.includes(k)))
  describe(`copy.workers dead letters on ${kind}`, () => {
    const server = testCluster(kind);

    it('letters met by a worker with its own state directory reach the runner: gate and proof pass, the rest is copied', {
      timeout: 180_000,
    }, async (t) => {
      const c = clusterOf(server);
      const source = uniqueName('wd');
      const target = `${source}-v2`;
      const bucket = `cutover-test-${source}`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await c.close();
        await destroyBuckets(bucketsOf(bucket));
      });
      const SLICES = 4;
      const bad = (i: number) => i % 100 === 7;
      await seed(
        c,
        source,
        4_000,
        (i) => ({ id: `d${i}`, doc: { n: i, code: bad(i) ? 'abc' : String(i) } }),
        {
          settings: { number_of_shards: SLICES, number_of_replicas: 0 },
          mappings: { properties: { n: { type: 'integer' }, code: { type: 'keyword' } } },
        },
      );
      const spec = {
        name: `wd-${kind}`,
        source: { cluster: { url: server.url }, index: source },
        // `code` becomes an integer: the 40 documents whose code is "abc" cannot be indexed there.
        target: { index: target, mappingOverrides: { properties: { code: { type: 'integer' } } } },
        copy: {
          batchDocs: 100,
          concurrency: 1,
          maxDocsPerSecond: 800,
          sampleSize: 0,
          maxDeadLetters: 40,
          workers: { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 },
        },
      };
      const runnerDir = specFile('workers-dl-runner', spec);
      const workerDir = specFile('workers-dl-worker', spec);
      const worker = startCli(['--json', 'worker', workerDir.path]);
      const runner = startCli(['--json', 'run', runnerDir.path]);
      await waitFor('the shared copy', () => auditOf(runnerDir.state).some((e) => e.event === 'copy-shared'));
      const [r, w] = await Promise.all([runner.done, worker.done]);
      assert.equal(w.code, 0, w.stderr.slice(-3000));
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const workers = lettersIn(workerDir.state);
      assert.ok(workers.length > 0, 'the worker met some of the refused documents');
      assert.ok(
        workers.every((l) => l.doc !== undefined),
        'the worker keeps the documents in its own file',
      );
      const expectedBad = Array.from({ length: 4_000 }, (_, i) => i)
        .filter(bad)
        .map((i) => `d${i}`)
        .sort();
      const runners = lettersIn(runnerDir.state);
      assert.deepEqual([...new Set(runners.map((l) => l.id))].sort(), expectedBad);
      assert.equal(runners.length, 40, 'each letter once: the runner’s own are not added again');
      assert.match(r.stderr, /dead letter\(s\) met by other processes added to/);
      const expected = await readAll(c, source);
      for (const id of expectedBad) expected.delete(id);
      const d = diffDocs(expected, await readAll(c, target));
      assert.equal(d.missing.length + d.extra.length + d.changed.length, 0, summarize(d));
    });
  });
