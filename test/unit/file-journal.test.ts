/**
 * The file journal: concurrent appends share flushes and come back with consecutive positions; a reader reads
 * back exactly what was appended, and finds a journal that was cut or edited instead of trusting it.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileJournalReader, FileJournalWriter } from '../../src/proxy/file-journal.js';
import {
  decodeLine,
  type EntryBody,
  encodeEntries,
  encodeLine,
  JOURNAL_START,
  JournalBroken,
  type JournalEntry,
} from '../../src/proxy/journal.js';

function path(): string {
  return join(mkdtempSync(join(tmpdir(), 'cutover-journal-')), 'proxy', 'journal.log');
}

async function readAllEntries(p: string, max = 1000): Promise<JournalEntry[]> {
  const r = new FileJournalReader(p);
  const out: JournalEntry[] = [];
  let pos = JOURNAL_START;
  for (;;) {
    const { entries, next } = await r.read(pos, max);
    out.push(...entries);
    if (entries.length === 0) return out;
    pos = next;
  }
}

const doc = (i: number): EntryBody => ({ kind: 'doc', op: 'index', index: 'i', id: `d${i}` });

describe('file journal', () => {
  it('group commit: 500 concurrent appends, fewer flushes than appends, every entry read back in position order', async () => {
    const p = path();
    const w = await FileJournalWriter.open(p, 'p1');
    const ends = await Promise.all(Array.from({ length: 500 }, (_, i) => w.append([doc(i)])));
    // Each append resolves with its own end; concurrent ones were flushed together, so many ends share a
    // flush but never a position.
    assert.equal(new Set(ends.map((e) => e.seq)).size, 500);
    // All 500 were appended while the first one's flush ran, so they share the next one: at most two flushes
    // (one flush stamps one time on all its entries).
    const ats = new Set((await readAllEntries(p)).filter((e) => e.kind === 'doc').map((e) => e.at));
    assert.ok(ats.size <= 2, `500 appends took ${ats.size} flushes`);
    await w.close();
    const all = await readAllEntries(p, 37);
    assert.deepEqual(
      all.map((e) => e.seq),
      Array.from({ length: 502 }, (_, i) => i + 1),
    );
    assert.equal(all[0]?.kind, 'start');
    assert.equal(all.at(-1)?.kind, 'stop');
    assert.deepEqual(
      new Set(all.filter((e) => e.kind === 'doc').map((e) => (e as { id: string }).id)).size,
      500,
    );
    assert.deepEqual(await new FileJournalReader(p).end(), { seq: 502, offset: readFileSync(p).length });
  });

  it('a writer reopened after a crash journals a reconcile marker; a torn last line is cut off', async () => {
    const p = path();
    const w = await FileJournalWriter.open(p, 'p1');
    await w.append([doc(1), doc(2)]);
    // kill -9: no stop entry, and a line half written.
    appendFileSync(p, '0badc0de {"kind":"doc","op":"ind');
    const w2 = await FileJournalWriter.open(p, 'p2');
    assert.equal(w2.crashedBefore, true);
    await w2.close();
    const kinds = (await readAllEntries(p)).map((e) => e.kind);
    assert.deepEqual(kinds, ['start', 'doc', 'doc', 'reconcile', 'start', 'stop']);
    const w3 = await FileJournalWriter.open(p, 'p3');
    assert.equal(w3.crashedBefore, false);
    await w3.close();
  });

  it('a truncated journal is detected by a reader that had read further', async () => {
    const p = path();
    const w = await FileJournalWriter.open(p, 'p1');
    await w.append([doc(1), doc(2), doc(3)]);
    await w.close();
    const r = new FileJournalReader(p);
    const { next } = await r.read(JOURNAL_START, 100);
    truncateSync(p, Math.floor(next.offset! / 2));
    await assert.rejects(r.read(next, 100), JournalBroken);
  });

  it('an edited line, a removed line and a replaced journal are detected', async () => {
    const p = path();
    const w = await FileJournalWriter.open(p, 'p1');
    await w.append([doc(1), doc(2), doc(3)]);
    await w.close();
    const original = readFileSync(p, 'utf8');

    writeFileSync(p, original.replace('"id":"d2"', '"id":"dX"'));
    await assert.rejects(
      readAllEntries(p),
      (e: unknown) => e instanceof JournalBroken && /checksum/.test(e.message),
    );

    const lines = original.split('\n');
    writeFileSync(p, [...lines.slice(0, 2), ...lines.slice(3)].join('\n'));
    await assert.rejects(
      readAllEntries(p),
      (e: unknown) => e instanceof JournalBroken && /followed by/.test(e.message),
    );

    writeFileSync(p, original);
    const r = new FileJournalReader(p);
    const { next } = await r.read(JOURNAL_START, 3);
    // Another journal put in its place: the read position falls inside one of its lines.
    const w2 = await FileJournalWriter.open(`${p}.other`, 'another-proxy');
    await w2.append([doc(7), doc(8), doc(9)]);
    await w2.close();
    writeFileSync(p, readFileSync(`${p}.other`));
    await assert.rejects(r.read(next, 100), JournalBroken);
  });
});

describe('journal lines', () => {
  it('encodes random ids, routings and indices byte for byte as encodeLine does (growing its buffer)', () => {
    // Seeded: the same strings every run. Units from the whole UTF-16 range, lone surrogates and controls included.
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    const str = () =>
      Array.from({ length: rnd(40) }, () =>
        String.fromCharCode(rnd(4) === 0 ? rnd(0x10000) : rnd(3) === 0 ? rnd(0x20) : 0x20 + rnd(0x5f)),
      ).join('');
    const ops = ['index', 'create', 'update', 'delete'] as const;
    const bodies: EntryBody[] = Array.from({ length: 3000 }, () => ({
      kind: 'doc',
      op: ops[rnd(4)]!,
      index: str(),
      id: str(),
      ...(rnd(2) ? { routing: str() } : {}),
      ...(rnd(2) ? { sn: rnd(1_000_000) } : {}),
      ...(rnd(5) === 0 ? { failed: true as const } : {}),
    }));
    const at = 1_764_000_000_999;
    const one = bodies
      .map((b, i) => encodeLine({ ...b, seq: 7 + i, at, proxy: 'p\u00e9' } as JournalEntry))
      .join('');
    assert.equal(encodeEntries(bodies, 7, at, 'p\u00e9').toString('utf8'), one);
  });

  it('encodes a batch byte for byte as one line per entry, and each line decodes to its entry', () => {
    const bodies: EntryBody[] = [
      { kind: 'start' },
      { kind: 'doc', op: 'index', index: 'products', id: 'a' },
      { kind: 'doc', op: 'delete', index: 'products', id: 'q"uo\\te\n', routing: 'r1', sn: 0 },
      { kind: 'doc', op: 'update', index: 'other', id: 'ünï\u2028', sn: 9_007_199_254_740_991 },
      { kind: 'doc', op: 'create', index: 'products', id: '7', routing: '' },
      { kind: 'doc', op: 'delete', index: 'products', id: 'gone', sn: 3, failed: true },
      { kind: 'reconcile', index: 'products', why: 'a "by-query"' },
      { kind: 'doc', op: 'index', index: 'products', id: 'b', routing: undefined, sn: undefined },
      // a lone surrogate (JSON.stringify escapes it), control characters, a long id
      {
        kind: 'doc',
        op: 'index',
        index: 'pröducts',
        id: 'x\ud800y\u0001\t',
        routing: '\udfff',
        sn: 2 ** 32 + 5,
      },
      { kind: 'doc', op: 'index', index: 'products', id: 'long-'.repeat(400), sn: 1 },
      { kind: 'stop' },
    ];
    const at = 1_764_000_000_123;
    const one = bodies
      .map((b, i) => encodeLine({ ...b, seq: 41 + i, at, proxy: 'p-"1' } as JournalEntry))
      .join('');
    const batch = encodeEntries(bodies, 41, at, 'p-"1');
    assert.equal(batch.toString('utf8'), one);
    const lines = batch.toString('utf8').split('\n').slice(0, -1);
    assert.deepEqual(
      lines.map((l) => decodeLine(l)),
      bodies.map((b, i) => JSON.parse(JSON.stringify({ ...b, seq: 41 + i, at, proxy: 'p-"1' }))),
    );
  });
});
