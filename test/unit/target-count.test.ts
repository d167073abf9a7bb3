import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CountTally } from '../../src/copy/writer.js';
import { countFromTally, takeCountBase } from '../../src/cutover/target-count.js';

const t = (o: Partial<CountTally> = {}): CountTally => ({ net: 0, sent: 0, inFlight: 0, unsure: 0, ...o });

describe('the target count from the writer tally (target-count.ts)', () => {
  it('keeps a base taken while the writer was idle, and adds what its answers changed since', async () => {
    const base = await takeCountBase(
      async () => 100,
      () => t({ net: 7, sent: 3 }),
    );
    assert.deepEqual(base, { count: 100, tally: t({ net: 7, sent: 3 }) });
    assert.equal(countFromTally(base, t({ net: 12, sent: 5 })), 105);
    assert.equal(countFromTally(base, t({ net: 2, sent: 6 })), 95);
  });

  it('has no base when a bulk was in flight, or was sent or lost while the count ran', async () => {
    assert.equal(
      await takeCountBase(
        async () => 1,
        () => t({ inFlight: 1, sent: 1 }),
      ),
      undefined,
    );
    let now = t({ sent: 1 });
    const during = (change: Partial<CountTally>) =>
      takeCountBase(
        async () => {
          const before = now;
          now = t({ ...now, ...change });
          return before.net;
        },
        () => now,
      );
    assert.equal(await during({ sent: 2, inFlight: 1 }), undefined);
    now = t({ sent: 1 });
    assert.equal(await during({ unsure: 1 }), undefined);
  });

  it('gives no figure while a bulk is in flight or once an answer was lost', () => {
    const base = { count: 10, tally: t({ sent: 1 }) };
    assert.equal(countFromTally(base, t({ sent: 2, inFlight: 1, net: 1 })), undefined);
    assert.equal(countFromTally(base, t({ sent: 2, unsure: 1 })), undefined);
    assert.equal(countFromTally(undefined, t()), undefined);
  });
});
