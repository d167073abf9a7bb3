/**
 * Dead letters of a shared copy: every letter is kept locally with its document and published without it, in
 * values of bounded size, before the page's checkpoint moves (flush); a publish that failed stops the slice; the
 * runner adds to its file exactly the published letters it lacks. The bucket is a map here; the same runs through
 * NATS with real processes in test/engine/workers-dead-letters.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type DeadLetter, FileDeadLetters, readDeadLetters } from '../../src/copy/dead-letters.js';
import { importDeadLetters, SharedDeadLetters } from '../../src/copy/shared-dead-letters.js';
import type { SliceBoard } from '../../src/copy/slice-board.js';

const letter = (i: number, at = '2026-12-02T12:00:00.000Z'): DeadLetter => ({
  id: `d${i}`,
  index: 'src',
  status: 400,
  type: 'document_parsing_exception',
  reason: 'failed to parse field [code]',
  doc: { code: 'abc', n: i },
  at,
});

function board() {
  const b = {
    values: [] as DeadLetter[][],
    failing: false,
    async noteDeadLetters(letters: readonly DeadLetter[]) {
      if (b.failing) throw new Error('no answer');
      b.values.push([...letters]);
    },
    async deadLetters() {
      return b.values.flat();
    },
  };
  return b;
}

describe('shared dead letters', () => {
  it('keeps letters locally with their documents and publishes them without, in bounded values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-sdl-'));
    const b = board();
    const sink = new SharedDeadLetters(
      new FileDeadLetters(join(dir, 'dl.ndjson')),
      b as unknown as SliceBoard,
    );
    sink.add(Array.from({ length: 1_200 }, (_, i) => letter(i)));
    await sink.flush();
    assert.deepEqual(
      b.values.map((v) => v.length),
      [500, 500, 200],
    );
    assert.ok(b.values.flat().every((l) => l.doc === undefined && l.reason.includes('code')));
    const local = readDeadLetters(join(dir, 'dl.ndjson'));
    assert.equal(local.length, 1_200);
    assert.deepEqual(local[7]!.doc, { code: 'abc', n: 7 });
  });

  it('a letter that could not be published stops the slice at the next flush, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-sdl-'));
    const b = board();
    const sink = new SharedDeadLetters(
      new FileDeadLetters(join(dir, 'dl.ndjson')),
      b as unknown as SliceBoard,
    );
    b.failing = true;
    sink.add([letter(1)]);
    await assert.rejects(sink.flush(), /no answer/);
    b.failing = false;
    await sink.flush();
    assert.equal(readDeadLetters(join(dir, 'dl.ndjson')).length, 1, 'kept locally all the same');
  });

  it('the runner adds the published letters its file lacks, each once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-sdl-'));
    const path = join(dir, 'dl.ndjson');
    const b = board();
    // The runner's own letters: in its file with documents, and published without.
    const own = new SharedDeadLetters(new FileDeadLetters(path), b as unknown as SliceBoard);
    own.add([letter(1), letter(2)]);
    await own.flush();
    // A worker's, published only; one met twice (a slice continued elsewhere met it again later).
    const { doc: _d3, ...w3 } = letter(3);
    const { doc: _d4, ...w4 } = letter(4);
    const { doc: _d4b, ...w4b } = letter(4, '2026-12-02T12:00:05.000Z');
    b.values.push([w3, w4], [w4b, w3]);
    assert.equal(await importDeadLetters(b as unknown as SliceBoard, path), 3);
    assert.equal(await importDeadLetters(b as unknown as SliceBoard, path), 0, 'nothing added twice');
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as DeadLetter).id),
      ['d1', 'd2', 'd3', 'd4', 'd4'],
    );
  });
});
