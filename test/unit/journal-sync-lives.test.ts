/**
 * A proxy answers before its journal entry is durable, so one that died without a clean stop may have answered
 * a write the journal never got. The sync keeps each proxy's journal life (start or any entry, until a stop) and
 * names those open with no live proxy behind them; the runner then reconciles every id, once per life.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { JournalSync, type JournalSyncOptions } from '../../src/capture/journal-sync.js';
import { MemoryJournal } from '../support/memory-journal.js';

function syncOver(j: MemoryJournal): JournalSync {
  const statePath = join(mkdtempSync(join(tmpdir(), 'cutover-lives-')), 'journal-sync.json');
  const reporter = { warn() {}, info() {} };
  // Life and reconcile entries only: nothing is copied, so no cluster is needed.
  return new JournalSync({
    statePath,
    reader: j,
    // Each shard's highest _seq_no when the sync takes its start position.
    source: { shardSeqNos: async () => [{ maxSeqNo: 10 }, { maxSeqNo: 20 }] },
    sourceIndex: 'src',
    sourceNames: ['src'],
    batchDocs: 100,
    reporter,
  } as unknown as JournalSyncOptions);
}

describe('journal sync: proxy lives', () => {
  it('a proxy alive when capture started, gone now without a stop, is named', async () => {
    const j = new MemoryJournal();
    j.add('a', { kind: 'start' });
    const s = syncOver(j);
    await s.startAtEnd(['a']);
    assert.deepEqual(s.vanished(['a']), []);
    assert.deepEqual(s.vanished([]), ['a']);
  });

  it('a clean stop closes a life; a start or any entry opens one', async () => {
    const j = new MemoryJournal();
    const s = syncOver(j);
    await s.startAtEnd(['a']);
    j.add('b', { kind: 'start' });
    j.add('a', { kind: 'stop' });
    j.add('c', { kind: 'doc', op: 'index', index: 'elsewhere', id: '1' });
    await s.sync();
    assert.deepEqual(s.vanished([]).sort(), ['b', 'c']);
    assert.deepEqual(s.vanished(['b', 'c']), []);
  });

  it('a vanished proxy demands one reconcile; a later entry from it reopens its life', async () => {
    const j = new MemoryJournal();
    const s = syncOver(j);
    await s.startAtEnd(['a', 'b']);
    assert.equal(s.reconcileNeeded, undefined);
    s.proxiesVanished(s.vanished(['b']));
    assert.match(
      (s.reconcileNeeded as { why: string } | undefined)?.why ?? '',
      /write proxy a stopped without closing the journal/,
    );
    assert.deepEqual(s.vanished(['b']), [], 'asked once for this life');
    s.reconciled(s.snapshot.pos.seq);
    assert.equal(s.reconcileNeeded, undefined);
    // It was only silent: it journals again, and its life is watched again.
    j.add('a', { kind: 'doc', op: 'delete', index: 'elsewhere', id: '2' });
    await s.sync();
    assert.deepEqual(s.vanished(['b']), ['a']);
  });

  it('the lives survive a restart of the runner (kept in the state file)', async () => {
    const j = new MemoryJournal();
    const statePath = join(mkdtempSync(join(tmpdir(), 'cutover-lives-')), 'journal-sync.json');
    const o = {
      statePath,
      reader: j,
      source: { shardSeqNos: async () => [{ maxSeqNo: 10 }] },
      sourceIndex: 'src',
      sourceNames: ['src'],
      batchDocs: 100,
      reporter: { warn() {}, info() {} },
    };
    const first = new JournalSync(o as unknown as JournalSyncOptions);
    await first.startAtEnd(['a']);
    j.add('b', { kind: 'start' });
    await first.sync();
    const next = new JournalSync(o as unknown as JournalSyncOptions);
    assert.deepEqual(next.vanished([]).sort(), ['a', 'b']);
  });

  it('a change a round applied counts as a bypass only when numbered after the sync started and never journaled', async () => {
    const j = new MemoryJournal();
    const s = syncOver(j);
    await s.startAtEnd([]);
    // Shard 0 started at 10: "early" may have been journaled before the start position, "late" may not.
    s.noteRoundApplied(0, [
      { _id: 'early', _seq_no: 10 },
      { _id: 'late', _seq_no: 11 },
    ]);
    j.add('a', { kind: 'reconcile', index: 'other', why: 'a marker for another index moves the journal on' });
    // Checked once the journal was read from a moment at least a second after the round applied them.
    await new Promise((r) => setTimeout(r, 1_050));
    await s.sync();
    assert.equal(s.snapshot.bypass, 1);
    assert.deepEqual(s.snapshot.bypassSample, ['late']);
  });
});
