/**
 * The reindex engine's request and pace: never overwrite, go on past conflicts, leave the dead letters out; the
 * throttle's rate becomes requests_per_second (a pause a crawl, no limit -1).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paceOf, reindexBody } from '../../src/copy/reindex-engine.js';

describe('reindex engine: request and pace', () => {
  it('creates only, proceeds past conflicts, leaves out the excluded ids', () => {
    assert.deepEqual(reindexBody({ sourceIndex: 'a', targetIndex: 'b', batchDocs: 500 }, []), {
      conflicts: 'proceed',
      source: { index: 'a', size: 500 },
      dest: { index: 'b', op_type: 'create' },
    });
    const b = reindexBody(
      {
        sourceIndex: 'a',
        targetIndex: 'b',
        batchDocs: 10,
        remote: { host: 'http://h:9200', username: 'u', password: 'p' },
      },
      ['x', 'y'],
    ) as { source: Record<string, unknown> };
    assert.deepEqual(b.source.query, { bool: { must_not: [{ ids: { values: ['x', 'y'] } }] } });
    assert.deepEqual(b.source.remote, { host: 'http://h:9200', username: 'u', password: 'p' });
  });

  it('the pace follows the throttle', () => {
    assert.equal(paceOf({ paused: false, rate: 0 }), -1);
    assert.equal(paceOf({ paused: false, rate: 1200 }), 1200);
    assert.ok(paceOf({ paused: true, rate: 1200 }) < 0.01 && paceOf({ paused: true, rate: 0 }) > 0);
  });
});
