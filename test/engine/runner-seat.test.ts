/**
 * The runner's seat (copy.workers on the NATS JetStream at 127.0.0.1:4222): the state of the migration lives in the
 * bucket, so a runner on another machine goes on where a lost one stopped. Each runner here has a state directory
 * of its own (another machine's disk): the first stops answering mid-copy (SIGSTOP) until the second, started on an
 * empty directory, took its seat over after a lease of silence; woken, the first stops (exit 4). The second goes on
 * from the bucket and is killed with kill -9 right after the copy step; the third takes the seat at once (its
 * holder's pid is gone) and goes on from there (capture position, dropped ids) to the switch. A runner started while another holds the seat is refused
 * (exit 4) and writes nothing. Under live writes and a transform that drops documents; the target equals the
 * writers' log id by id.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
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

const DROP13 = 'export default (doc) => (typeof doc.n === "number" && doc.n % 13 === 0 ? null : doc);\n';
const drop13 = (doc: Doc): Doc | null => (typeof doc.n === 'number' && doc.n % 13 === 0 ? null : doc);

for (const kind of (['es8', 'os3'] as PlainKind[]).filter((k) => EXPECTED.includes(k)))
  describe(`the runner's seat in NATS on ${kind}`, () => {
    const server = testCluster(kind);

    it('three runners on three state directories (one stopped past its lease, one killed with kill -9): the last goes on from the bucket to the switch', {
      timeout: 400_000,
    }, async (t) => {
      const c = clusterOf(server);
      const wc = writerClusterOf(server);
      const source = uniqueName('seat');
      const target = `${source}-v2`;
      const write = `${source}-write`;
      const bucket = `cutover-test-${source}`;
      t.after(async () => {
        await c.deleteIndex(source).catch(() => undefined);
        await c.deleteIndex(target).catch(() => undefined);
        await Promise.all([c.close(), wc.close()]);
        await destroyBuckets(bucketsOf(bucket));
      });
      const seeded = await seed(c, source, 20_000, (i) => ({ id: `d${i}`, doc: defaultDoc(`d${i}`, i) }), {
        settings: { number_of_shards: 4, number_of_replicas: 0 },
        aliases: { [`${source}-read`]: {}, [write]: { is_write_index: true } },
      });
      const base = {
        name: `seat-${kind}`,
        source: { cluster: { url: server.url }, index: source },
        target: { index: target },
        aliases: { read: [`${source}-read`], write },
        capture: { strategy: 'seqno', tailIntervalMs: 200 },
        transform: './drop13.mjs',
        copy: {
          batchDocs: 100,
          concurrency: 1,
          maxDocsPerSecond: 1000,
          sampleSize: 100,
          workers: { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 },
        },
        cutover: { freezeBudgetMs: 5000 },
      };
      // One spec per "machine": the same migration, each with a state directory of its own.
      const { path: specA, dir } = specFile('seat', { ...base, stateDir: './state-a' });
      const stateA = join(dir, 'state-a', base.name);
      writeFileSync(join(dir, 'drop13.mjs'), DROP13);
      const specOn = (m: string) => {
        const p = join(dir, `spec-${m}.yaml`);
        writeFileSync(p, YAML.stringify({ ...base, stateDir: `./state-${m}` }));
        return { path: p, state: join(dir, `state-${m}`, base.name) };
      };
      const b = specOn('b');
      const cc = specOn('c');
      const d = specOn('d');

      const w = startWriters({
        cluster: wc,
        alias: write,
        writers: 3,
        ratePerWriter: 8,
        ids: 150,
        seedIds: [...seeded.keys()].filter((_, i) => i % 40 === 3),
        scripted: kind === 'os3',
        seed: 23,
      });
      const ra = startCli(['--json', 'run', specA]);
      await waitFor(
        'runner a in the middle of the copy',
        () =>
          auditOf(stateA).some((e) => e.event === 'copy-shared') &&
          auditOf(stateA).some((e) => e.event === 'checkpoint'),
        120_000,
      );
      // Runner a stops answering (SIGSTOP): runner b, on an empty state directory, waits one lease of silence, takes
      // the seat and goes on from the bucket; a, woken, finds its seat taken and stops (exit 4) without a save.
      const pa = ra.child.pid!;
      process.kill(pa, 'SIGSTOP');
      const cont = () => process.kill(pa, 'SIGCONT');
      process.on('exit', cont);
      const rb = startCli(['--json', 'run', b.path]);
      try {
        await waitFor('runner b seated', () => auditOf(b.state).some((e) => e.event === 'state-restored'));
      } finally {
        cont();
        process.off('exit', cont);
      }
      const a = await ra.done;
      writeFileSync(join(dir, 'run-a.log'), a.stderr);
      assert.equal(a.code, 4, a.stderr.slice(-2000));
      assert.match(
        a.stderr,
        /run of seat-.* stopped: its seat in the NATS bucket .* is another runner's now/,
      );
      assert.match(a.stderr, /lease on runner lost/);
      const restored = auditOf(b.state).find((e) => e.event === 'state-restored') as unknown as {
        localSeq?: number;
        seq: number;
        by: { pid: number } | null;
      };
      assert.equal(restored.localSeq, undefined);
      assert.equal(restored.by?.pid, pa, 'the record was written by runner a');
      // While b holds the seat, another runner is refused and writes nothing.
      const rd = await runCli(['run', d.path]);
      assert.equal(rd.code, 4, rd.stderr);
      assert.match(rd.stderr, new RegExp(`is being run by .* pid ${rb.child.pid}: it renews its seat`));
      assert.ok(!existsSync(join(d.state, 'state.json')), 'the refused runner wrote no state');
      // b did not copy from the start: the copy it joined is a's (the same copyId, slices from their checkpoints).
      await waitFor(
        'runner b past the copy',
        () =>
          auditOf(b.state).some((e) => e.event === 'step-done' && (e as { step?: string }).step === 'copy'),
        240_000,
      );
      rb.child.kill('SIGKILL');
      const rbDone = await rb.done;
      writeFileSync(join(dir, 'run-b.log'), rbDone.stderr);
      assert.equal(rbDone.signal, 'SIGKILL', rbDone.stderr.slice(-2000));
      assert.match(
        rbDone.stderr,
        /went on from the state in the NATS bucket .*this machine's state directory had none/,
      );

      // Status on a machine whose state directory has none: read from the seat, nothing written here.
      const st = await runCli(['--json', 'status', d.path]);
      assert.equal(st.code, 0, st.stderr);
      const sj = JSON.parse(st.stdout.trim().split('\n').pop()!) as {
        completed: string[];
        running?: string;
        warnings: string[];
      };
      assert.ok(sj.completed.includes('copy'), sj.completed.join(','));
      assert.match(
        sj.running ?? '',
        new RegExp(`the runner of pid ${rb.child.pid} stopped without finishing`),
      );
      assert.ok(sj.warnings.some((x) => /read from the NATS bucket/.test(x)));
      assert.ok(!existsSync(join(d.state, 'state.json')), 'status wrote no state');
      // The plan there too is the seat's: the copy is done, not planned again (and the copy's bucket is its own).
      const pl = await runCli(['--json', 'plan', d.path]);
      assert.equal(pl.code, 0, pl.stderr);
      const steps = (JSON.parse(pl.stdout) as { steps: Array<{ name: string; done: boolean }> }).steps;
      assert.equal(steps.find((x) => x.name === 'copy')?.done, true);
      assert.ok(!existsSync(join(d.state, 'state.json')), 'plan wrote no state');

      // Runner c, a third directory: from the bucket past the copy (no copy again) to the switch.
      const rc = await runCli(['--json', 'run', cc.path]);
      writeFileSync(join(dir, 'run-c.log'), rc.stderr);
      const report = await w.stop();
      console.log(`logs in ${dir}`);
      assert.equal(rc.code, 0, rc.stderr.slice(-3000));
      assert.match(rc.stderr, /went on from the state in the NATS bucket/);
      const cAudit = auditOf(cc.state);
      assert.ok(!cAudit.some((e) => e.event === 'copy-shared'), 'runner c did not copy again');
      assert.ok(
        cAudit.some((e) => e.event === 'step-done' && (e as { step?: string }).step === 'switch-aliases'),
        'runner c switched',
      );
      assert.deepEqual(Object.keys(await c.getAlias(write)), [target]);

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
      // The seat was released at the end: the bucket's record has no holder, and its state is the switched one.
      const seat = await KvBucket.open(NATS, `${bucket}-run`, false);
      assert.ok(seat);
      const rec = await seat.get<{ holder: unknown; value: { state: { phase: string } } }>('runner');
      await seat.close();
      assert.equal(rec?.value.holder, null);
      assert.equal(rec?.value.value.state.phase, 'cut-over');
    });
  });
