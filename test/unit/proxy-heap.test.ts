import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tuneProxyHeap } from '../../src/proxy/heap.js';

describe("the proxy process's heap growth (proxy/heap.ts)", () => {
  it("leaves an operator's own setting alone, from the command line or NODE_OPTIONS", () => {
    assert.equal(tuneProxyHeap(['--heap-growing-percent=50'], ''), undefined);
    assert.equal(tuneProxyHeap([], '--max-old-space-size=512 --heap_growing_percent=20'), undefined);
  });

  it('sets its growth when the process was started without one (its effect is measured in bench/proxy.ts)', () => {
    assert.equal(
      tuneProxyHeap(['--max-old-space-size=512'], '--enable-source-maps'),
      '--heap-growing-percent=300',
    );
  });
});
