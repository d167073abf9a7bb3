/** The time a hold keeps for its alias request comes from earlier alias requests, not from the hold's other steps. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aliasReserveMs } from '../../src/cutover/hold-switch.js';

describe('aliasReserveMs', () => {
  it('keeps 300 ms before any alias request was measured', () => {
    assert.equal(aliasReserveMs([]), 300);
    assert.equal(aliasReserveMs([{}, {}]), 300);
  });
  it('keeps twice the slowest of the last five, at least 150 ms', () => {
    assert.equal(aliasReserveMs([{ aliasMs: 40 }, { aliasMs: 60 }]), 150);
    assert.equal(aliasReserveMs([{ aliasMs: 400 }, { aliasMs: 90 }]), 800);
    // Only the last five count: an old slow one is forgotten.
    assert.equal(
      aliasReserveMs([{ aliasMs: 900 }, ...Array.from({ length: 5 }, () => ({ aliasMs: 100 }))]),
      200,
    );
  });
});
