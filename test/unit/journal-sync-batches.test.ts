/**
 * Behind the journal the sync reads more at once (nextBatchSize): fewer, larger requests carry the backlog, and
 * the batches still reach the target in journal order, a position is saved only once the target acknowledged its
 * batch (a bulk that fails leaves the position at the last acknowledged batch), and a sync up to a hold's end
 * stops exactly there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { JournalSync, type JournalSyncOptions, nextBatchSize } from '../../src/capture/journal-sync.js';
import { identity } from '../../src/copy/transform.js';
import type { WriteOp } from '../../src/copy/writer.js';
import { MemoryJournal } from '../support/memory-journal.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Every id is gone on the source, so each batch becomes versioned deletes; the writer logs what it is sent. */
function harness(ids: number, opts: { failWrite?: number } = {}) {
  const journal = new MemoryJournal();
  for (let i = 1; i <= ids; i++) journal.add('p', { kind: 'doc', op: 'delete', index: 'src', id: `d${i}` });
  const events: string[] = [];
  const written: string[][] = [];
  let mgets = 0;
  let writes = 0;
  const statePath = join(mkdtempSync(join(tmpdir(), 'cutover-pipeline-')), 'journal-sync.json');
  const o = {
    statePath,
    reader: journal,
    source: {
      shardSeqNos: async () => [{ maxSeqNo: 100 }],
      mgetLean: async (_index: string, refs: Array<{ _id: string }>) => {
        const n = ++mgets;
        events.push(`mget ${n} start`);
        await tick();
        events.push(`mget ${n} end`);
        return { docs: refs.map((r) => ({ _id: r._id, found: false })) };
      },
    },
    sourceIndex: 'src',
    sourceNames: ['src'],
    writer: {
      write: async (ops: WriteOp[]) => {
        const n = ++writes;
        events.push(`write ${n} start`);
        await tick();
        await tick();
        if (n === opts.failWrite) throw new Error(`bulk ${n} refused`);
        written.push(ops.map((op) => op.id));
        events.push(`write ${n} end`);
        return { written: 0, deleted: ops.length, conflicts: 0, deadLetters: 0, retries: 0, bytes: 0 };
      },
    },
    transform: identity,
    versioning: 'seqno',
    router: async () => ({ shardOf: () => 0 }),
    onDropped: () => undefined,
    batchDocs: 10,
    reporter: { warn() {}, info() {} },
  } as unknown as JournalSyncOptions;
  return { journal, events, written, statePath, o, sync: new JournalSync(o) };
}

describe('journal sync: growing batches', () => {
  it('every id lands once, in journal order, and the position ends at the journal end', async () => {
    const h = harness(75);
    const r = await h.sync.sync();
    assert.equal(r.deleted, 75);
    const flat = h.written.flat();
    assert.deepEqual(
      flat,
      Array.from({ length: 75 }, (_, i) => `d${i + 1}`),
    );
    // Reads grew while each came back full: 10, 20, 40, then the 5 left.
    assert.deepEqual(
      h.written.map((b) => b.length),
      [10, 20, 40, 5],
    );
    assert.equal(h.sync.snapshot.pos.seq, 75);
  });

  it('a bulk that fails leaves the saved position at the last acknowledged batch', async () => {
    const h = harness(75, { failWrite: 2 });
    await assert.rejects(h.sync.sync(), /bulk 2 refused/);
    assert.equal(h.sync.snapshot.pos.seq, 10);
    // A new runner (same state file) starts again from there.
    const again = new JournalSync({
      ...h.o,
      writer: {
        write: async (ops: WriteOp[]) => ({
          written: 0,
          deleted: ops.length,
          conflicts: 0,
          deadLetters: 0,
          retries: 0,
          bytes: 0,
        }),
      },
    } as unknown as JournalSyncOptions);
    assert.equal(again.snapshot.pos.seq, 10);
    const r = await again.sync();
    assert.equal(r.deleted, 65);
    assert.equal(again.snapshot.pos.seq, 75);
  });

  it('a sync up to a hold end stops exactly there, the rest is read by the next one', async () => {
    const h = harness(75);
    const r = await h.sync.sync({ seq: 33 });
    assert.equal(r.deleted, 33);
    assert.equal(h.sync.snapshot.pos.seq, 33);
    assert.equal(h.written.flat().at(-1), 'd33');
    const rest = await h.sync.sync();
    assert.equal(rest.deleted, 42);
    assert.equal(h.written.flat()[33], 'd34');
  });

  it('a full read doubles the next one, up to eight times the batch', () => {
    const sizes: number[] = [];
    let size = 500;
    for (let i = 0; i < 6; i++) {
      size = nextBatchSize(size, size, 500);
      sizes.push(size);
    }
    assert.deepEqual(sizes, [1000, 2000, 4000, 4000, 4000, 4000]);
  });

  it('a read that came back short returns to the configured batch', () => {
    assert.equal(nextBatchSize(4000, 3999, 500), 500);
    assert.equal(nextBatchSize(500, 12, 500), 500);
    assert.equal(nextBatchSize(1000, 0, 500), 500);
  });

  it('the cap follows the configured batch', () => {
    assert.equal(nextBatchSize(64, 64, 10), 80);
    assert.equal(nextBatchSize(1, 1, 1), 2);
  });
});
