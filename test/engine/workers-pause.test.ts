/**
 * One pause for a shared copy (copy.workers on the NATS JetStream at 127.0.0.1:4222): the runner started with its
 * throttle flag file present is paused from the start, and a worker that joins its copy copies nothing while the
 * flag stays (its slices' checkpoints do not move for seconds); once the flag is removed both copy, the worker
 * takes part, and the target equals the source id by id.
 */
import assert from 'node:assert/strict';
import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvBucket } from '../../src/store/kv-leases.js';
import { startCli } from '../support/cli.js';
import { EXPECTED, type PlainKind, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, diffDocs, readAll, seed, summarize } from '../support/data.js';
import { bucketsOf, destroyBuckets, NATS } from '../support/nats.js';
import { auditOf, specFile, waitFor } from '../support/spec-dir.js';

for (const kind of (['es8'] as PlainKind[]).filter((k) => EXPECTED.includes(k)))
  describe(`copy.workers pause on ${kind}`, () => {
    const server = testCluster(kind);

    it('a pause of the runner (its throttle flag file) holds every worker until it is lifted; the target equals the source', {
      timeout: 180_000,
    }, async (t) => {
      const c = clusterOf(server);
      const source = uniqueName('wp');
      const target = `${source}-v2`;
      const bucket = `cutover-test-${source}`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await c.close();
        await destroyBuckets(bucketsOf(bucket));
      });
      const SLICES = 4;
      await seed(c, source, 4_000, (i) => ({ id: `d${i}`, doc: { n: i, title: `doc ${i}` } }), {
        settings: { number_of_shards: SLICES, number_of_replicas: 0 },
      });
      const {
        path: spec,
        dir,
        state,
      } = specFile('workers-pause', {
        name: `wp-${kind}`,
        source: { cluster: { url: server.url }, index: source },
        target: { index: target },
        // One slice at a time per process at 400 docs/s: the copy lasts seconds, so the worker gets slices of it.
        copy: {
          batchDocs: 100,
          concurrency: 1,
          maxDocsPerSecond: 400,
          sampleSize: 100,
          workers: { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 },
        },
      });
      const flag = join(dir, 'pause.flag');
      writeFileSync(flag, '');
      const worker = startCli(['--json', 'worker', spec]);
      const runner = startCli(['--json', 'run', spec, '--throttle-flag-file', flag]);
      await waitFor('the shared copy', () => auditOf(state).some((e) => e.event === 'copy-shared'));
      const board = await KvBucket.open(NATS, bucket, false);
      assert.ok(board, 'the runner made the bucket');
      t.after(() => board.close());
      type Rec = { holder: { pid: number } | null; value: { copied: number; done: boolean } };
      const copied = async () => {
        let n = 0;
        for (let i = 0; i < SLICES; i++) n += (await board.get<Rec>(`slice.${i}`))?.value.value.copied ?? 0;
        return n;
      };
      const pauses = await board.get<{ pausedBy: Array<{ by: string }> }>('pauses');
      assert.deepEqual(
        pauses?.value.pausedBy.map((p) => p.by),
        ['flag-file'],
        'the runner published its pause before the plan',
      );
      // Paused: for 4 s (four of the worker's looks) nothing is copied by anyone.
      await sleep(4000);
      assert.equal(await copied(), 0, 'nothing was copied while the runner was paused');
      assert.equal(worker.child.exitCode, null, 'the worker waits, paused');
      unlinkSync(flag);
      assert.ok(!existsSync(flag));
      const [r, w] = await Promise.all([runner.done, worker.done]);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      assert.equal(w.code, 0, w.stderr.slice(-3000));
      assert.match(w.stderr, /paused: the runner \(.* pid \d+\) is paused: flag-file/);
      assert.match(w.stderr, /resumed/);
      const done = JSON.parse(w.stdout.trim().split('\n').pop()!) as { docs: number; slices: number };
      assert.ok(done.docs > 0, `the worker took part once the pause was lifted (${JSON.stringify(done)})`);
      const d = diffDocs(await readAll(c, source), await readAll(c, target));
      assert.equal(d.missing.length + d.extra.length + d.changed.length, 0, summarize(d));
    });
  });
