/**
 * Many processes, one copy (copy.workers on the NATS JetStream at 127.0.0.1:4222):
 *   - `cutover run` shares the copy's slices in a key-value bucket, two `cutover worker` processes take slices from
 *     it. Under live writes (seqno capture): one worker is killed with kill -9 mid-copy (its slices are continued
 *     by the others from their checkpoints), the other is stopped (SIGSTOP) for longer than the lease and resumed
 *     (its slices were taken over; it learns so at its next write and lets them go), and the runner itself is
 *     killed with kill -9 and resumed. The target equals the writers' log id by id; at the end the bucket holds
 *     only the plan, marked done, and a worker started then ends at once.
 *   - A worker whose spec names another target index or transform is refused (exit 2), and a runner finding a
 *     bucket of another copy under the name it would use is refused, naming the bucket.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { KvBucket } from '../../src/store/kv-leases.js';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED, type PlainKind, testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, readAll, seed } from '../support/data.js';
import { bucketsOf, destroyBuckets, NATS } from '../support/nats.js';
import { auditOf, specFile, waitFor } from '../support/spec-dir.js';
import {
  compare,
  type Doc,
  defaultDoc,
  describeComparison,
  expectedState,
  sourcesOf,
  startWriters,
  writerClusterOf,
} from '../support/writers.js';

/** The transform of the main test, and the same rule for the oracle. */
const DROP13 = 'export default (doc) => (typeof doc.n === "number" && doc.n % 13 === 0 ? null : doc);\n';
const drop13 = (doc: Doc): Doc | null => (typeof doc.n === 'number' && doc.n % 13 === 0 ? null : doc);

/** Documents the shared copy has acknowledged so far, from the runner's mirror of the checkpoints. */
function copiedSoFar(state: string, slices: number): number {
  let n = 0;
  for (let i = 0; i < slices; i++) {
    const p = join(state, 'checkpoints', `slice-${i}.json`);
    if (existsSync(p)) n += (JSON.parse(readFileSync(p, 'utf8')) as { copied: number }).copied;
  }
  return n;
}

for (const kind of (['es8', 'os3'] as PlainKind[]).filter((k) => EXPECTED.includes(k)))
  describe(`copy.workers on ${kind}`, () => {
    const server = testCluster(kind);

    it('runner + two workers under live writes: kill -9 of a worker and of the runner, a worker stopped past its lease; the target equals the writers’ log', {
      timeout: 400_000,
    }, async (t) => {
      const c = clusterOf(server);
      const wc = writerClusterOf(server);
      const source = uniqueName('wk');
      const target = `${source}-v2`;
      const write = `${source}-write`;
      const bucket = `cutover-test-${source}`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await Promise.all([c.close(), wc.close()]);
        await destroyBuckets(bucketsOf(bucket));
      });
      const SLICES = 12;
      const seeded = await seed(c, source, 30_000, (i) => ({ id: `d${i}`, doc: defaultDoc(`d${i}`, i) }), {
        settings: { number_of_shards: SLICES, number_of_replicas: 0 },
        aliases: { [`${source}-read`]: {}, [write]: { is_write_index: true } },
      });
      const {
        path: spec,
        dir,
        state,
      } = specFile('workers', {
        name: `wk-${kind}`,
        source: { cluster: { url: server.url }, index: source },
        target: { index: target },
        aliases: { read: [`${source}-read`], write },
        capture: { strategy: 'seqno', tailIntervalMs: 200 },
        // Drops one document in 13: the ids every process's transform dropped reach the runner's count gate.
        transform: './drop13.mjs',
        // One slice at a time per process, at most 500 docs/s each: ~5 s per slice, long enough for the kills.
        copy: {
          batchDocs: 100,
          concurrency: 1,
          maxDocsPerSecond: 500,
          sampleSize: 100,
          workers: { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 },
        },
        cutover: { freezeBudgetMs: 5000 },
      });
      writeFileSync(join(dir, 'drop13.mjs'), DROP13);
      const plan = await runCli(['plan', spec]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, new RegExp(`shared in the NATS bucket ${bucket}: .*cutover worker`));

      const w = startWriters({
        cluster: wc,
        alias: write,
        writers: 3,
        ratePerWriter: 8,
        ids: 150,
        seedIds: [...seeded.keys()].filter((_, i) => i % 40 === 3),
        scripted: kind === 'os3',
        mix: { autoid: 1 },
        seed: 11,
      });
      // Workers started first wait for the plan.
      const a = startCli(['--json', 'worker', spec]);
      const b = startCli(['--json', 'worker', spec]);
      const first = startCli(['--json', 'run', spec]);
      await waitFor('the shared copy', () => auditOf(state).some((e) => e.event === 'copy-shared'));
      const board = await KvBucket.open(NATS, bucket, false);
      assert.ok(board, 'the runner made the bucket');
      type Rec = { holder: { pid: number } | null; value: { copied: number; done: boolean } };
      /** The slice records now (undefined: the bucket did not answer). */
      const records = async () => {
        try {
          return await Promise.all(
            Array.from({ length: SLICES }, async (_, i) => (await board.get<Rec>(`slice.${i}`))?.value),
          );
        } catch {
          return undefined;
        }
      };
      /** A slice this process has begun and not finished, if any; false once the copy is over. */
      const midSlice = async (pid: number) => {
        const rs = await records();
        if (!rs || rs.every((r) => r?.value.done))
          throw new Error('the copy ended before the process was caught mid-slice');
        return rs.some((r) => r?.holder?.pid === pid && r.value.copied > 0 && !r.value.done);
      };
      // Worker b stops answering for longer than its lease, until another process has taken its slice over.
      const pid = b.child.pid!;
      await waitFor('worker b in the middle of a slice', () => midSlice(pid));
      process.kill(pid, 'SIGSTOP');
      const cont = () => process.kill(pid, 'SIGCONT');
      process.on('exit', cont);
      try {
        await waitFor(
          'the stopped worker’s slice taken over',
          async () => {
            const rs = await records();
            return !rs?.some((r) => r?.holder?.pid === pid);
          },
          90_000,
        );
      } finally {
        cont();
        process.off('exit', cont);
      }
      await waitFor('worker a in the middle of a slice', () => midSlice(a.child.pid!));
      a.child.kill('SIGKILL');
      const ra = await a.done;
      assert.equal(ra.signal, 'SIGKILL');
      await waitFor('the runner in the middle of a slice', () => midSlice(first.child.pid!));
      await board.close();
      first.child.kill('SIGKILL');
      const r1 = await first.done;
      writeFileSync(join(dir, 'run-1.log'), r1.stderr);
      writeFileSync(join(dir, 'worker-a.log'), ra.stderr);
      assert.equal(r1.signal, 'SIGKILL');
      const copiedAtKill = copiedSoFar(state, SLICES);
      await sleep(1000);
      const second = startCli(['--json', 'run', spec]);
      const [r2, rb] = await Promise.all([second.done, b.done]);
      await sleep(500);
      const report = await w.stop();
      writeFileSync(join(dir, 'run-2.log'), r2.stderr);
      writeFileSync(join(dir, 'worker-b.log'), rb.stderr);
      console.log(
        `logs in ${dir}: runner ${first.child.pid}, ${second.child.pid}; workers a ${a.child.pid}, b ${b.child.pid}`,
      );
      assert.equal(r2.code, 0, r2.stderr.slice(-2500));
      assert.equal(rb.code, 0, rb.stderr.slice(-2500));
      assert.match(rb.stdout, /every slice of the copy is done/);
      const bResult = JSON.parse(rb.stdout.trim().split('\n').pop()!) as { docs: number; slices: number };
      assert.ok(bResult.docs > 0, `worker b copied ${bResult.docs}`);
      // b was stopped past its lease: its slices went on elsewhere, and b learned it when it woke.
      assert.match(rb.stderr, /lease on slice\.\d+ lost/);
      // Every stopped or killed process's slice was continued by another from its checkpoint.
      const logs = r1.stderr + r2.stderr + ra.stderr + rb.stderr;
      for (const p of [a.child.pid, b.child.pid, first.child.pid])
        assert.match(
          logs,
          new RegExp(`pid ${p} \\([0-9a-f]+\\) stopped renewing it; continued here`),
          `pid ${p}`,
        );
      assert.ok(copiedAtKill < 30_000, `the runner was killed mid-copy (${copiedAtKill} copied)`);
      assert.ok(auditOf(state).some((e) => e.event === 'copy-shared-done'));
      // The plan is marked done (a worker started now ends at once); every slice's final checkpoint stays.
      const left = await KvBucket.open(NATS, bucket, false);
      assert.ok(left);
      const keys = await left.keys('slice.>');
      assert.equal(keys.length, SLICES);
      for (const k of keys) assert.equal((await left.get<Rec>(k))?.value.value.done, true, k);
      assert.ok((await left.get<{ doneAt?: string }>('plan'))?.value.doneAt);
      await left.close();
      const late = await runCli(['worker', spec]);
      assert.equal(late.code, 0, late.stderr);
      assert.match(late.stdout, /was over already \(every slice done at .*\); nothing to do/);

      assert.ok(report.acked > 100, `writers acknowledged ${report.acked}`);
      assert.ok(report.ackedByKind.delete > 0);
      const cmp = compare(expectedState(report, [source, target]), sourcesOf(await readAll(c, target)), {
        seeded: sourcesOf(seeded),
        transform: (doc, ctx) => (ctx.index === target ? doc : drop13(doc)),
      });
      assert.deepEqual(
        { lost: cmp.lost, stale: cmp.stale, resurrected: cmp.resurrected, extra: cmp.extra },
        { lost: [], stale: [], resurrected: [], extra: [] },
        describeComparison(cmp),
      );
      const dropped = sourcesOf(seeded);
      assert.ok(
        [...dropped.values()].filter((d) => drop13(d) === null).length > 1000,
        'the transform dropped documents',
      );
    });

    it('a worker stopped with Ctrl-C releases its slices; a worker with another target or transform, a second runner, and a bucket of another copy are refused by name', {
      timeout: 120_000,
    }, async (t) => {
      const c = clusterOf(server);
      const source = uniqueName('wkr');
      const bucket = `cutover-test-${source}`;
      t.after(async () => {
        for (const i of [source, `${source}-v2`, `${source}-v3`])
          await c.deleteIndex(i).catch(() => undefined);
        await c.close();
        await destroyBuckets(bucketsOf(bucket));
      });
      await seed(c, source, 30_000, (i) => ({ id: `r${i}`, doc: { n: i } }), {
        settings: { number_of_shards: 2, number_of_replicas: 0 },
      });
      const base = {
        name: `wkr-${kind}`,
        source: { cluster: { url: server.url }, index: source },
        target: { index: `${source}-v2` },
        capture: { strategy: 'none' },
        // One slot: of the two slices (one per shard), the runner takes one and leaves the other to a worker.
        copy: {
          batchDocs: 100,
          concurrency: 1,
          maxDocsPerSecond: 300,
          sampleSize: 0,
          workers: { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 },
        },
      };
      const { path: spec, dir } = specFile('workers', base);
      const run = startCli(['--json', 'run', spec]);
      // A worker stopped with Ctrl-C gives its slices up at once (holder none), not after its lease.
      const ctrlC = startCli(['--json', 'worker', spec]);
      // One connection for the whole wait, and the two slice records read by key: a fresh connection and a key
      // listing every 50 ms were what this wait did when it timed out under a loaded full run (os3), while the
      // worker was copying its slice; what the records held is said if it times out again.
      let board: KvBucket | undefined;
      let lastSeen = 'nothing read yet';
      t.after(() => board?.close());
      const holds = async (pid: number) => {
        board ??= await KvBucket.open(NATS, bucket, false);
        if (!board) return false;
        const recs = await Promise.all(
          [0, 1].map((i) => board!.get<{ holder: { pid: number } | null }>(`slice.${i}`)),
        );
        lastSeen = JSON.stringify(recs.map((r) => r && { holder: r.value.holder, revision: r.revision }));
        return recs.some((r) => r?.value.holder?.pid === pid);
      };
      const holdsYet = (pid: number) =>
        holds(pid).catch((e: Error) => {
          lastSeen = `error: ${e.message}`;
          return false;
        });
      await waitFor('the worker holding a slice', () => holdsYet(ctrlC.child.pid!)).catch((e: Error) => {
        const tail = (s: string) => s.slice(-1500);
        throw new Error(
          `${e.message} (pid ${ctrlC.child.pid}; the slice records: ${lastSeen})\n--- worker stderr ---\n${tail(ctrlC.output().stderr)}\n--- runner stderr ---\n${tail(run.output().stderr)}`,
        );
      });
      ctrlC.child.kill('SIGINT');
      const stopped = await ctrlC.done;
      assert.equal(stopped.code, 130, stopped.stderr.slice(-1500));
      assert.equal(await holds(ctrlC.child.pid!), false, 'its slices were released as it stopped');
      const other = join(dir, 'other.yaml');
      writeFileSync(
        other,
        YAML.stringify({ stateDir: './state2', ...base, target: { index: `${source}-v3` } }),
      );
      const wrong = await runCli(['worker', other]);
      assert.equal(wrong.code, 2, wrong.stderr);
      assert.match(
        wrong.stderr,
        new RegExp(`writes into ${source}-v2, but this spec names target.index ${source}-v3`),
      );
      const tf = join(dir, 'tf.mjs');
      writeFileSync(tf, 'export default (doc) => doc;\n');
      const withTf = join(dir, 'tf.yaml');
      writeFileSync(withTf, YAML.stringify({ stateDir: './state3', ...base, transform: tf }));
      const wrongTf = await runCli(['worker', withTf]);
      assert.equal(wrongTf.code, 2, wrongTf.stderr);
      assert.match(wrongTf.stderr, /is not the one the runner copies with/);
      // A runner of the same name while the first holds its seat: refused (exit 4), naming the holder.
      const busy = await runCli(['run', other]);
      assert.equal(busy.code, 4, busy.stderr);
      assert.match(busy.stderr, new RegExp(`is being run by .* pid ${run.child.pid}: it renews its seat`));
      run.child.kill('SIGINT');
      await run.done;
      // Seated now, it finds the state of the other target in the seat: refused by name, nothing created.
      const made = await runCli(['run', other]);
      assert.equal(made.code, 2, made.stderr);
      assert.match(made.stderr, /was made for another source or target/);
      // Without that seat (a bucket removed by hand), another state directory is another copy: the copy's bucket
      // still holds the first copy's plan, so it is refused, named, and nothing is copied.
      const seat = await KvBucket.open(NATS, `${bucket}-run`, false);
      await seat?.destroy();
      await seat?.close();
      const fresh = join(dir, 'fresh.yaml');
      writeFileSync(
        fresh,
        YAML.stringify({ stateDir: './state4', ...base, target: { index: `${source}-v3` } }),
      );
      const again = await runCli(['run', fresh]);
      assert.equal(again.code, 2, again.stderr);
      assert.match(
        again.stderr,
        new RegExp(`the NATS bucket ${bucket} \\(copy.workers\\) holds the plan of another copy`),
      );
    });
  });
