/**
 * The reverse sync asks the journal which ids the application wrote since the switch: only entries after the
 * switch's position count, a write that landed on the old index itself or that the cluster refused does not, memory stays bounded (past the
 * bound only the ids left behind are watched, others are "unknown"), and a journal that was cut answers "unknown".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WritesSinceSwitch } from '../../src/capture/writes-since-switch.js';
import { JournalBroken } from '../../src/proxy/journal.js';
import { MemoryJournal } from '../support/memory-journal.js';

const doc = (id: string, index = 'new', op: 'index' | 'delete' = 'delete') =>
  ({ kind: 'doc', op, index, id }) as const;

describe('writes since the switch', () => {
  it('counts writes after the switch position that did not land on the old index', async () => {
    const j = new MemoryJournal();
    j.add('p', doc('before'));
    const from = await j.end();
    j.add('p', doc('a'));
    j.add('p', doc('b', 'old', 'index'));
    j.add('p', { kind: 'reconcile', why: 'x' });
    // Refused by the cluster (a delete of a document the new index never had): nothing changed.
    j.add('p', { ...doc('d'), failed: true });
    const w = new WritesSinceSwitch({ reader: j, from, oldIndex: 'old', leftBehind: () => new Set() });
    const r = await w.touched(['before', 'a', 'b', 'c', 'd']);
    assert.deepEqual([...r.touched], ['a']);
    assert.deepEqual([...r.unknown], []);
    // Entries journaled later are read on the next question.
    j.add('p', doc('c', 'new', 'index'));
    assert.deepEqual([...(await w.touched(['c'])).touched], ['c']);
  });

  it('past its bound, keeps watching only the ids left behind and says the others are unknown', async () => {
    const j = new MemoryJournal();
    const from = await j.end();
    for (const id of ['x1', 'kept', 'x2', 'x3']) j.add('p', doc(id));
    const w = new WritesSinceSwitch({
      reader: j,
      from,
      oldIndex: 'old',
      leftBehind: () => new Set(['kept', 'kept-later']),
      maxIds: 2,
    });
    const r = await w.touched(['x1', 'kept', 'kept-later', 'other']);
    assert.deepEqual([...r.touched], ['kept']);
    assert.deepEqual([...r.unknown].sort(), ['other', 'x1']);
    assert.match(r.why ?? '', /more than 2 ids written since the switch/);
    j.add('p', doc('kept-later'));
    assert.deepEqual([...(await w.touched(['kept-later'])).touched], ['kept-later']);
  });

  it('a journal cut after the switch answers unknown for ids it did not see', async () => {
    const j = new MemoryJournal();
    const from = await j.end();
    j.add('p', doc('a'));
    let cut = false;
    const reader = {
      ...j,
      read: async (after: { seq: number }, max: number) => {
        if (cut) throw new JournalBroken('entry 2 is missing');
        return j.read(after, max);
      },
      end: () => j.end(),
      close: async () => {},
    };
    const w = new WritesSinceSwitch({ reader, from, oldIndex: 'old', leftBehind: () => new Set() });
    assert.deepEqual([...(await w.touched(['a'])).touched], ['a']);
    cut = true;
    const r = await w.touched(['a', 'b']);
    assert.deepEqual([...r.touched], ['a']);
    assert.deepEqual([...r.unknown], ['b']);
    assert.match(r.why ?? '', /cannot be trusted \(entry 2 is missing\)/);
  });
});
