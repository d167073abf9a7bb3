/**
 * The record of the holds in journal-sync.json survives a runner killed between its alias request and the answer:
 * the record left as the request went out is completed by the hold's own record, or by the next run from where
 * it found the aliases.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type HoldReport, JournalSync, type JournalSyncOptions } from '../../src/capture/journal-sync.js';

/** Only the state file matters to the hold records: nothing else is touched. */
function syncAt(statePath: string): JournalSync {
  return new JournalSync({ statePath } as unknown as JournalSyncOptions);
}

function hold(startedAt: string, extra: Partial<HoldReport> = {}): HoldReport {
  return {
    attempt: 1,
    startedAt,
    durationMs: 10,
    switched: false,
    proxies: 1,
    heldRequests: 0,
    longestWaitMs: 0,
    releasedBy: [],
    syncedInHold: 0,
    phases: {},
    ...extra,
  };
}

const saved = (p: string) => (JSON.parse(readFileSync(p, 'utf8')) as { holds: HoldReport[] }).holds;

describe('journal sync: hold records', () => {
  it('the record of the alias request is replaced by the hold it belongs to, not added to', () => {
    const p = join(mkdtempSync(join(tmpdir(), 'cutover-holds-')), 'journal-sync.json');
    const s = syncAt(p);
    s.recordHold(hold('t1', { reason: 'counts differ' }));
    s.recordHold(hold('t2', { aliasRequestSent: true }));
    s.recordHold(hold('t2', { switched: true, releasedBy: ['runner'] }));
    assert.deepEqual(
      saved(p).map((h) => [h.startedAt, h.switched, h.aliasRequestSent]),
      [
        ['t1', false, undefined],
        ['t2', true, undefined],
      ],
    );
    assert.equal(s.settleUnansweredHold(true), undefined, 'nothing left unanswered');
  });

  it('the record written off the main thread is durable when it resolves and is replaced the same way', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'cutover-holds-')), 'journal-sync.json');
    const s = syncAt(p);
    s.recordHold(hold('t1', { reason: 'counts differ' }));
    await s.recordHoldOffThread(hold('t2', { aliasRequestSent: true }));
    assert.deepEqual(
      saved(p).map((h) => [h.startedAt, h.aliasRequestSent]),
      [
        ['t1', undefined],
        ['t2', true],
      ],
    );
    // The hold's own record replaces it.
    s.recordHold(hold('t2', { switched: true }));
    assert.deepEqual(
      saved(p).map((h) => [h.startedAt, h.switched, h.aliasRequestSent]),
      [
        ['t1', false, undefined],
        ['t2', true, undefined],
      ],
    );
  });

  it('a run killed after its alias request: the next run completes the record from where the aliases are', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-holds-'));
    for (const moved of [true, false]) {
      const p = join(dir, `${moved}.json`);
      syncAt(p).recordHold(hold('t1', { aliasRequestSent: true }));
      // The next run reads the state its predecessor left.
      const next = syncAt(p);
      const h = next.settleUnansweredHold(moved);
      assert.equal(h?.switched, moved);
      assert.equal(h?.settledByNextRun, true);
      assert.equal(h?.reason === undefined, moved);
      const [only] = saved(p);
      assert.equal(only?.aliasRequestSent, undefined);
      assert.equal(only?.switched, moved);
      assert.equal(next.settleUnansweredHold(moved), undefined, 'settled once');
    }
  });
});
