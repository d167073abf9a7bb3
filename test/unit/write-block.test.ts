/** Which answers the proxy may send again: only a request the write block refused as a whole. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockRetryDelayMs, refusedByWriteBlock } from '../../src/proxy/write-block.js';

const block = {
  type: 'cluster_block_exception',
  reason: 'index [px-1] blocked by: [FORBIDDEN/8/index write (api)];',
};
const readOnly = {
  type: 'cluster_block_exception',
  reason:
    'index [px-1] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];',
};

describe('refusedByWriteBlock', () => {
  it('a single-document write refused by the write block', () => {
    assert.equal(refusedByWriteBlock(403, { error: { root_cause: [block], ...block }, status: 403 }), true);
  });
  it('not another 403 (security), nor the flood-stage read-only block', () => {
    assert.equal(
      refusedByWriteBlock(403, { error: { type: 'security_exception', reason: 'denied' } }),
      false,
    );
    assert.equal(refusedByWriteBlock(403, { error: readOnly }), false);
    assert.equal(refusedByWriteBlock(403, undefined), false);
  });
  it('a bulk only when every item met the block (nothing of it was applied)', () => {
    const item = (status: number, error?: unknown) => ({
      index: { _index: 'px-1', _id: 'a', status, error },
    });
    assert.equal(
      refusedByWriteBlock(200, { errors: true, items: [item(403, block), item(403, block)] }),
      true,
    );
    assert.equal(refusedByWriteBlock(200, { errors: true, items: [item(403, block), item(201)] }), false);
    assert.equal(
      refusedByWriteBlock(200, { errors: true, items: [item(403, block), item(403, readOnly)] }),
      false,
    );
    assert.equal(refusedByWriteBlock(200, { errors: false, items: [item(201)] }), false);
    assert.equal(refusedByWriteBlock(200, { errors: true, items: [] }), false);
  });
  it('waits grow from 25 ms to at most 500 ms', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map(blockRetryDelayMs), [25, 50, 100, 200, 400, 500, 500]);
  });
});
