/**
 * Leases on the real NATS JetStream key-value store (127.0.0.1:4222): who may take a record, when, and how a holder
 * learns it lost one. Short leases (600 ms) so expiry is seen within the test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HolderId, KvBucket, LeaseLost, LeaseTable } from '../../src/store/kv-leases.js';

const NATS = process.env.CUTOVER_TEST_NATS ?? 'nats://127.0.0.1:4222';
const LEASE_MS = 600;

const holder = (over: Partial<HolderId> = {}): HolderId => ({
  id: randomUUID(),
  host: hostname(),
  pid: process.pid,
  ...over,
});

/** A pid that was alive a moment ago and is gone now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('leases on NATS key-value', () => {
  let bucket: KvBucket;
  before(async () => {
    bucket = await KvBucket.open(NATS, `cutover-test-leases-${process.pid}-${Date.now()}`, true);
  });
  after(async () => {
    await bucket.destroy().catch(() => undefined);
    await bucket.close();
  });

  it('a free record is taken once; its holder renews it and nobody else gets it; released, the next takes it at once', async () => {
    const a = new LeaseTable<{ n: number }>(bucket, holder(), LEASE_MS);
    const b = new LeaseTable<{ n: number }>(bucket, holder({ host: 'elsewhere' }), LEASE_MS);
    await a.ensure('r.1', { n: 0 });
    await a.ensure('r.1', { n: 99 }); // an existing record is left as it is
    const la = await a.tryTake('r.1', () => true);
    assert.ok(la);
    assert.equal(la.value.n, 0);
    assert.equal(await a.tryTake('r.1', () => true), undefined, 'never taken twice by one process');
    for (let i = 0; i < 8; i++) {
      assert.equal(await b.tryTake('r.1', () => true), undefined, `taken from a live holder (try ${i})`);
      await sleep(LEASE_MS / 2);
    }
    await la.update({ n: 5 });
    await la.release();
    const lb = await b.tryTake('r.1', () => true);
    assert.ok(lb, 'a released record is free');
    assert.equal(lb.value.n, 5, 'with the last value its holder wrote');
    assert.equal(await b.tryTake('r.1', (v) => v.n !== 5), undefined, 'want() decides');
    await lb.release();
  });

  it('a holder that stopped renewing is taken over after one lease as the taker saw it; the old holder learns it lost', async () => {
    const a = new LeaseTable<{ n: number }>(bucket, holder(), LEASE_MS);
    const b = new LeaseTable<{ n: number }>(bucket, holder({ host: 'elsewhere' }), LEASE_MS);
    await a.ensure('r.2', { n: 0 });
    const la = await a.tryTake('r.2', () => true);
    assert.ok(la);
    // A holder on another host that stopped renewing: its record stays as it was written last.
    await bucket.put('r.2', { holder: holder({ host: 'gone-host', pid: 1 }), value: { n: 1 } });
    assert.equal(await b.tryTake('r.2', () => true), undefined, 'first sight starts the clock');
    await sleep(LEASE_MS / 2);
    assert.equal(await b.tryTake('r.2', () => true), undefined, 'half a lease is not enough');
    await sleep(LEASE_MS);
    const lb = await b.tryTake('r.2', () => true);
    assert.ok(lb, 'taken after a whole lease without a new revision');
    assert.equal(lb.value.n, 1);
    // The first holder's next write is refused for the revision: it stops acting for the record.
    await assert.rejects(la.update({ n: 7 }), LeaseLost);
    assert.ok(la.lost.aborted);
    assert.ok(la.lost.reason instanceof LeaseLost);
    await lb.update({ n: 2 });
    const now = await b.read('r.2');
    assert.equal(now?.value.n, 2);
    assert.equal(now?.holder?.host, 'elsewhere');
    await lb.release();
    await la.release(); // a lost lease releases nothing
    assert.equal((await b.read('r.2'))?.value.n, 2);
  });

  it('a holder of this host whose process is gone is taken over at once', async () => {
    const b = new LeaseTable<{ n: number }>(bucket, holder(), LEASE_MS);
    await bucket.put('r.3', { holder: holder({ pid: deadPid() }), value: { n: 3 } });
    const lb = await b.tryTake('r.3', () => true);
    assert.ok(lb, 'no lease to wait out when the holder is known dead');
    assert.ok(lb.takenFrom, 'and the takeover names who held it');
    await lb.release();
  });
});
