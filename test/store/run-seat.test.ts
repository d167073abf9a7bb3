/**
 * The runner's seat on the real NATS JetStream key-value store (127.0.0.1:4222): what a second state directory
 * gets back from it (the state, the capture files, the dropped ids under their own key), which copy wins, and who
 * may take the seat. Leases of one second so takeovers are seen within the test.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CoordinationError, type HolderId, KvBucket } from '../../src/store/kv-leases.js';
import { LockError } from '../../src/store/lock.js';
import { RunSeat, seatBucketOf } from '../../src/store/run-seat.js';
import { newState, StateStore } from '../../src/store/state.js';

const NATS = process.env.CUTOVER_TEST_NATS ?? 'nats://127.0.0.1:4222';

const holder = (over: Partial<HolderId> = {}): HolderId => ({
  id: randomUUID(),
  host: hostname(),
  pid: process.pid,
  ...over,
});
const dir = () => new StateStore(mkdtempSync(join(tmpdir(), 'cutover-seat-')));

describe("the runner's seat on NATS key-value", () => {
  const cfg = { servers: NATS, bucket: `cutover-test-seat-${process.pid}-${Date.now()}`, leaseSeconds: 1 };
  after(async () => {
    const b = await KvBucket.open(NATS, seatBucketOf('m', cfg), false);
    await b?.destroy().catch(() => undefined);
    await b?.close();
  });

  it('a second state directory gets the state, the capture files and the dropped ids back; the newer copy wins', async () => {
    const a = dir();
    const seatA = await RunSeat.take(cfg, 'm', a, holder());
    assert.equal(seatA.restored, undefined, 'nothing to restore from an empty seat');
    a.seatedAt(seatA);
    const state = newState('m', 'idx-v2');
    state.completed.copy = '2026-12-01T00:00:00.000Z';
    writeFileSync(join(a.dir, 'capture.json'), '{"cursors":[7,8]}\n');
    // Large enough to be worth its own key, small enough for it (ids compress well).
    const ids = Array.from({ length: 20_000 }, (_, i) => `{"id":"dropped-${i}"}`).join('\n');
    writeFileSync(join(a.dir, 'dropped-ids.ndjson'), ids);
    await a.save(state);
    assert.equal(state.seatSeq, 1);
    await a.save(state);
    a.seatedAt(undefined);
    await seatA.release();

    const b = dir();
    const seatB = await RunSeat.take(cfg, 'm', b, holder({ host: 'elsewhere' }));
    assert.ok(seatB.restored, 'restored into an empty directory');
    assert.equal(seatB.restored.seq, 2);
    assert.equal(seatB.restored.localSeq, undefined);
    assert.deepEqual(seatB.restored.omitted, []);
    assert.equal(b.load()?.completed.copy, '2026-12-01T00:00:00.000Z');
    assert.equal(b.load()?.seatSeq, 2);
    assert.equal(readFileSync(join(b.dir, 'capture.json'), 'utf8'), '{"cursors":[7,8]}\n');
    assert.equal(readFileSync(join(b.dir, 'dropped-ids.ndjson'), 'utf8'), ids);
    assert.ok(!existsSync(join(b.dir, 'revert.json')), 'a file the seat does not hold is not made up');
    b.seatedAt(seatB);
    const later = b.load()!;
    later.completed.gate = '2026-12-01T01:00:00.000Z';
    await b.save(later);
    b.seatedAt(undefined);
    await seatB.release();

    // Back on the first directory: the seat is newer (save 3 against 2), so it replaces the directory's copy.
    const seatA2 = await RunSeat.take(cfg, 'm', a, holder());
    assert.equal(seatA2.restored?.seq, 3);
    assert.equal(seatA2.restored?.localSeq, 2);
    assert.equal(a.load()?.completed.gate, '2026-12-01T01:00:00.000Z');
    await seatA2.release();
    // And the directory now as new as the seat: nothing is restored.
    const seatA3 = await RunSeat.take(cfg, 'm', a, holder());
    assert.equal(seatA3.restored, undefined);
    await seatA3.release();
  });

  it('NATS not answering: a coordination error (exit 5) naming the servers, never their credentials', async () => {
    const closed = { servers: 'nats://runner:s3cret-pw@127.0.0.1:1', leaseSeconds: 1 };
    await assert.rejects(RunSeat.take(closed, 'm', dir(), holder()), (e: Error) => {
      assert.ok(e instanceof CoordinationError, String(e));
      assert.equal(e.exitCode, 5);
      assert.match(e.message, /cannot reach NATS at nats:\/\/.*127\.0\.0\.1:1 \(copy\.workers\.servers\)/);
      assert.doesNotMatch(e.message, /s3cret-pw/);
      return true;
    });
  });

  it('a renewing holder is a live runner: refused, naming it; a silent one is taken over after its lease and learns it', async () => {
    const first = await RunSeat.take(cfg, 'm', dir(), holder({ host: 'machine-1', pid: 4242 }));
    await assert.rejects(
      RunSeat.take(cfg, 'm', dir(), holder()),
      (e: Error) =>
        e instanceof LockError && /being run by machine-1 pid 4242: it renews its seat/.test(e.message),
    );
    // The first holder stops renewing (as a stopped process would): its lease is taken after a second of silence.
    (first as unknown as { lease: { timer: NodeJS.Timeout } }).lease.timer.unref();
    clearInterval((first as unknown as { lease: { timer: NodeJS.Timeout } }).lease.timer);
    const store = dir();
    const second = await RunSeat.take(cfg, 'm', store, holder());
    store.seatedAt(second);
    await store.save(newState('m', 'idx-v2'));
    const firstStore = dir();
    firstStore.seatedAt(first);
    await assert.rejects(firstStore.save(newState('m', 'idx-v2')), /lease on runner lost/);
    assert.ok(first.lost.aborted, 'the first holder learns it lost the seat');
    assert.ok(!existsSync(firstStore.statePath), 'a refused save writes nothing locally either');
    await first.release();
    await second.release();
  });
});
