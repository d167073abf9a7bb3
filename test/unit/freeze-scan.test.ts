/** When a freeze's id scan shows that another freeze is futile while deletes keep coming. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FreezeRecord } from '../../src/capture/live.js';
import { scanNeededMs } from '../../src/cutover/live-switch.js';

const freeze = (over: Partial<FreezeRecord>): FreezeRecord => ({
  attempt: 1,
  startedAt: '2026-11-26T00:00:00.000Z',
  durationMs: 800,
  switched: false,
  appliedInFreeze: 0,
  deletedInFreeze: 0,
  ...over,
});

describe('freeze id scan estimate', () => {
  it('extrapolates the rate of a scan that was cut off', () => {
    const f = freeze({
      pendingDeletes: 5,
      scan: { targetDocs: 100_000, checked: 20_000, ms: 500, availableMs: 550 },
    });
    assert.equal(scanNeededMs(f), 2500);
  });

  it('says nothing when no deletes were pending, no scan ran, or the scan finished', () => {
    assert.equal(scanNeededMs(freeze({})), undefined);
    assert.equal(
      scanNeededMs(freeze({ scan: { targetDocs: 10, checked: 5, ms: 500, availableMs: 500 } })),
      undefined,
    );
    assert.equal(
      scanNeededMs(
        freeze({
          pendingDeletes: 3,
          scan: { targetDocs: 40_000, checked: 40_000, ms: 609, availableMs: 600 },
        }),
      ),
      undefined,
    );
  });

  it('takes a scan that did not finish one page in its whole window as needing more than it had', () => {
    const cut = freeze({
      pendingDeletes: 3,
      scan: { targetDocs: 800, checked: 0, ms: 600, availableMs: 610 },
    });
    assert.equal(scanNeededMs(cut), Number.POSITIVE_INFINITY);
    // Cut early for another reason (not the scan's slowness): no estimate.
    const early = freeze({
      pendingDeletes: 3,
      scan: { targetDocs: 800, checked: 0, ms: 100, availableMs: 610 },
    });
    assert.equal(scanNeededMs(early), undefined);
  });
});
