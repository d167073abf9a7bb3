/**
 * The state saved off the main thread (under a write proxy's hold) is the same file a plain save writes: durable
 * and whole when the promise resolves, read back by the next run, no temporary file left behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type MigrationState, StateStore } from '../../src/store/state.js';

function state(extra: Partial<MigrationState> = {}): MigrationState {
  return {
    format: 1,
    name: 'm1',
    phase: 'capture',
    completed: {},
    targetIndex: 'b',
    ...extra,
  } as MigrationState;
}

describe('state store: saves off the main thread', () => {
  it('writes the state as it was when the save was asked for, and a later plain save replaces it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-state-'));
    const store = new StateStore(dir);
    const s = state({ cutoverJournalEnd: { seq: 41, offset: 9000 } });
    const saving = store.save(s, { offThread: true });
    // A change made after the call (the hold goes on meanwhile) is not what this save promised to write.
    s.cutoverJournalEnd = { seq: 99 };
    await saving;
    assert.deepEqual(new StateStore(dir).load()?.cutoverJournalEnd, { seq: 41, offset: 9000 });
    await store.save(s);
    assert.deepEqual(new StateStore(dir).load()?.cutoverJournalEnd, { seq: 99 });
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });
});
