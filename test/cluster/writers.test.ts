/**
 * The chaos-test writers and their oracle. The pure part pins the ordering rule; the server part runs the
 * writers against a real index (no migration) and demands that the oracle predicts every document exactly,
 * also when a write block refuses writes for a second mid-run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { testCluster, uniqueName } from '../support/clusters.js';
import { readAll, seed } from '../support/data.js';
import {
  type AckedOp,
  type AmbiguousOp,
  compare,
  defaultDoc,
  describeComparison,
  expectedState,
  isExact,
  type OpKind,
  sourcesOf,
  startWriters,
  writerClusterOf,
} from '../support/writers.js';

let at = 0;
function op(
  id: string,
  index: string,
  seqNo: number,
  state: Record<string, unknown> | null,
  extra: Partial<AckedOp> = {},
): AckedOp {
  at++;
  return {
    id,
    index,
    seqNo,
    primaryTerm: 1,
    kind: state ? 'index' : 'delete',
    result: state ? 'updated' : 'deleted',
    state,
    writer: 0,
    sentAt: at,
    ackedAt: at,
    ...extra,
  };
}

describe('writers oracle (pure)', () => {
  it('orders by generation of the index, then primary term, then seq_no — never by log order', () => {
    const log = [
      op('a', 'new', 2, { v: 'new-2' }),
      op('a', 'old', 90, { v: 'old-90' }), // acknowledged later, but on the old index: precedes everything on new
      op('b', 'old', 5, { v: 'b-5' }),
      op('b', 'old', 4, null), // lower seq_no, logged after
      op('c', 'old', 7, { v: 'c-t1' }),
      op('c', 'old', 3, { v: 'c-t2' }, { primaryTerm: 2 }), // higher term wins over higher seq_no
      op('d', 'old', 1, { v: 'd' }),
      op('d', 'new', 0, null, { result: 'not_found' }), // a not_found delete is a tombstone with a seq_no
      op('e', 'new', 4, { v: 'e-4' }),
      op('e', 'new', 4, { v: 'e-4' }, { kind: 'update', result: 'noop' }), // noop shares the position it saw
    ];
    const e = expectedState(log, ['old', 'new']);
    assert.deepEqual(Object.fromEntries(e), {
      a: { v: 'new-2' },
      b: { v: 'b-5' },
      c: { v: 'c-t2' },
      d: null,
      e: { v: 'e-4' },
    });
    assert.equal(e.lastOp.get('a')?.index, 'new');
    assert.notEqual(e.lastOp.get('e')?.result, 'noop');
    // Deterministic: any permutation of the log gives the same answer.
    for (let i = 0; i < 20; i++) {
      const shuffled = [...log].sort(() => Math.random() - 0.5);
      assert.deepEqual([...expectedState(shuffled, ['old', 'new'])], [...e]);
    }
    // The other generation order flips a and d.
    const rev = expectedState(log, ['new', 'old']);
    assert.deepEqual(rev.get('a'), { v: 'old-90' });
    assert.deepEqual(rev.get('d'), { v: 'd' });
  });

  it('refuses what it cannot order exactly', () => {
    assert.throws(() => expectedState([op('a', 'x', 1, {}), op('a', 'y', 2, {})]), /generation order/);
    assert.throws(() => expectedState([op('a', 'z', 1, {})], ['x', 'y']), /outside the index list/);
    assert.throws(
      () => expectedState([op('a', 'x', 1, { v: 1 }), op('a', 'x', 1, { v: 2 })], ['x']),
      /disagree/,
    );
    // One index needs no list.
    assert.deepEqual(expectedState([op('a', 'x', 1, { v: 1 })]).get('a'), { v: 1 });
  });

  it('classifies lost, stale, resurrected and extra documents, with seeded ones and a transform', () => {
    const e = expectedState(
      [
        op('lost', 'old', 1, { v: 1 }),
        op('stale', 'old', 1, { v: 1 }),
        op('stale', 'old', 2, { v: 2 }),
        op('dead', 'old', 3, { v: 3 }),
        op('dead', 'old', 4, null),
        op('fine', 'old', 1, { v: 1 }),
        op('moved', 'new', 1, { v: 9 }),
      ],
      ['old', 'new'],
    );
    const seeded = new Map([
      ['s-untouched', { v: 's' }],
      ['stale', { v: 0 }],
    ]);
    const actual = new Map<string, Record<string, unknown>>([
      ['stale', { v: 1 }],
      ['dead', { v: 3 }],
      ['fine', { v: 1 }],
      ['moved', { v: 9 }],
      ['s-untouched', { v: 's' }],
      ['nobody', { v: 0 }],
    ]);
    const c = compare(e, actual, { seeded });
    assert.deepEqual(c, {
      lost: ['lost'],
      stale: ['stale'],
      resurrected: ['dead'],
      extra: ['nobody'],
      ok: 3,
      absent: 0,
      ambiguous: 0,
      ambiguousAutoId: 0,
    });
    assert.equal(isExact(c), false);

    // The transform sees which index a state was written to (null: seeded, untouched).
    const seen: string[] = [];
    const t = (doc: Record<string, unknown>, ctx: { id: string; index: string | null }) => {
      seen.push(`${ctx.id}@${ctx.index}`);
      return ctx.index === 'new' ? doc : { ...doc, migrated: true };
    };
    const good = new Map<string, Record<string, unknown>>([
      ['lost', { v: 1, migrated: true }],
      ['stale', { v: 2, migrated: true }],
      ['fine', { v: 1, migrated: true }],
      ['moved', { v: 9 }],
      ['s-untouched', { v: 's', migrated: true }],
    ]);
    const ok = compare(e, good, { seeded, transform: t });
    assert.ok(isExact(ok), describeComparison(ok));
    assert.equal(ok.ok, 5);
    assert.equal(ok.absent, 1);
    assert.ok(seen.includes('moved@new') && seen.includes('s-untouched@null') && seen.includes('fine@old'));
  });

  it('accepts any state an unanswered write may have left, and counts those ids', () => {
    const amb = (id: string, intent: AmbiguousOp['intent']): AmbiguousOp => ({
      id,
      kind: 'index',
      intent,
      error: 'timeout',
      writer: 0,
      sentAt: ++at,
      at,
    });
    const e = expectedState(
      {
        log: [op('a', 'x', 1, { v: 1, counter: 1 }), op('b', 'x', 1, { v: 1 })],
        ambiguousOps: [
          amb('a', { op: 'update', doc: { u: 2 } }),
          amb('a', { op: 'script', field: 'counter', by: 1 }),
          amb('b', { op: 'delete' }),
          amb('c', { op: 'create', doc: { v: 'c' } }),
        ],
      },
      ['x'],
    );
    assert.equal(e.ambiguousIds, 3);
    for (const a of [
      { v: 1, counter: 1 },
      { v: 1, counter: 1, u: 2 },
      { v: 1, counter: 2 },
      { v: 1, counter: 2, u: 2 },
    ]) {
      for (const b of [{ v: 1 }, undefined]) {
        for (const cc of [{ v: 'c' }, undefined]) {
          const actual = new Map<string, Record<string, unknown>>([['a', a]]);
          if (b) actual.set('b', b);
          if (cc) actual.set('c', cc);
          const r = compare(e, actual);
          assert.ok(isExact(r), `${JSON.stringify([a, b, cc])}: ${describeComparison(r)}`);
          assert.equal(r.ambiguous, 3);
        }
      }
    }
    const wrong = compare(e, new Map([['a', { v: 1, counter: 5 }]]));
    assert.deepEqual(wrong.stale, ['a']);
  });

  it('an unanswered auto-id create explains at most one document, and only one with exactly its content', () => {
    const create = (n: number): AmbiguousOp => ({
      id: '',
      kind: 'autoid',
      intent: { op: 'create', doc: { auto: n } },
      error: 'socket hang up',
      writer: 0,
      sentAt: ++at,
      at,
    });
    // An acknowledged auto-id create is an index of a new id, named by its answer.
    const e = expectedState(
      {
        log: [op('Xq1', 'old', 1, { auto: 0 }, { kind: 'autoid', result: 'created' })],
        ambiguousCreates: [create(1), create(2)],
      },
      ['old', 'new'],
    );
    assert.deepEqual(e.get('Xq1'), { auto: 0 });
    // The transform of a migration depends on the id and the index it landed on.
    const transform = (d: Record<string, unknown>, ctx: { id: string; index: string | null }) =>
      ctx.index === 'new' ? d : { ...d, len: ctx.id.length };
    const ok = compare(
      e,
      new Map<string, Record<string, unknown>>([
        ['Xq1', { auto: 0, len: 3 }],
        ['Yz22', { auto: 1, len: 4 }], // landed on the old index, copied
        ['W', { auto: 2 }], // landed on the new index
      ]),
      { transform },
    );
    assert.ok(isExact(ok), describeComparison(ok));
    assert.equal(ok.ambiguousAutoId, 2);
    // Twice the same content: one create cannot explain two documents; other content is extra.
    const twice = compare(
      e,
      new Map<string, Record<string, unknown>>([
        ['A', { auto: 1 }],
        ['B', { auto: 1 }],
        ['C', { auto: 3 }],
      ]),
      { transform },
    );
    assert.deepEqual(twice.extra, ['B', 'C']);
    assert.equal(twice.ambiguousAutoId, 1);
  });
});

const RUN_MS = 6000;
const MAX_RUN_MS = 20_000;

for (const kind of ['es8', 'os3'] as const) {
  describe(`application writers on ${kind}`, () => {
    async function run(block: boolean) {
      const c = writerClusterOf(testCluster(kind));
      const index = uniqueName(`writers-${kind}`);
      const alias = `${index}-write`;
      try {
        // Every other id of the writers' space exists beforehand; the rest starts absent.
        const seeded = sourcesOf(
          await seed(c, index, 200, (i) => ({ id: `w-${i * 2}`, doc: defaultDoc(`w-${i * 2}`, -1 - i) }), {
            settings: { number_of_shards: 3, number_of_replicas: 0 },
            aliases: { [alias]: { is_write_index: true } },
          }),
        );
        const w = startWriters({
          cluster: c,
          alias,
          writers: 8,
          ids: 400,
          scripted: kind === 'os3',
          mix: { autoid: 1 },
        });
        const wanted: OpKind[] = [
          'index',
          'update',
          'delete',
          'recreate',
          'autoid',
          ...(kind === 'os3' ? (['script'] as const) : []),
        ];
        const started = Date.now();
        let liftedAt = 0;
        if (block) {
          await sleep(2000);
          await c.putSettings(index, { 'index.blocks.write': true });
          await sleep(1000);
          await c.putSettings(index, { 'index.blocks.write': false });
          liftedAt = Date.now();
        }
        // At least RUN_MS; longer (up to MAX_RUN_MS) only while a busy machine has not yet produced enough of each kind.
        while (
          Date.now() - started < RUN_MS ||
          (Date.now() - started < MAX_RUN_MS && wanted.some((k) => w.stats().ackedByKind[k] < 25))
        )
          await sleep(100);
        const report = await w.stop();
        const info = `seed ${report.seed}, acked ${JSON.stringify(report.ackedByKind)}, refused ${JSON.stringify(report.refusedByReason)}`;

        assert.deepEqual(
          report.ambiguousOps.map((a) => a.error).slice(0, 3),
          [],
          'every write got an answer',
        );
        assert.deepEqual(report.ambiguousCreates, []);
        assert.equal(report.inFlight, 0);
        assert.deepEqual(Object.keys(report.ackedByIndex), [index], 'the alias writes to the one index');
        for (const k of wanted) assert.ok(report.ackedByKind[k] >= 20, `${k} acked >= 20: ${info}`);
        if (kind !== 'os3') assert.equal(report.ackedByKind.script, 0);
        assert.equal(report.acked, report.log.length);
        assert.ok(
          report.refusedByReason.document_missing > 0,
          `updates of deleted docs are refused: ${info}`,
        );
        const results = new Set(report.log.map((o) => o.result));
        for (const r of ['created', 'updated', 'deleted', 'not_found', 'noop'])
          assert.ok(results.has(r), `a write answered "${r}" was acknowledged: ${info}`);
        if (block) {
          assert.ok(
            report.refusedByReason.cluster_block_exception > 0,
            `writes refused by the block: ${info}`,
          );
          assert.ok(
            report.log.some((o) => o.sentAt > liftedAt),
            'the writers went on after the block was lifted',
          );
        } else assert.equal(report.refusedByReason.cluster_block_exception, 0);

        const expected = expectedState(report, [index]);
        const actual = sourcesOf(await readAll(c, index));
        const cmp = compare(expected, actual, { seeded });
        assert.ok(isExact(cmp), `${describeComparison(cmp)}; ${info}`);
        assert.equal(cmp.ok, actual.size);
        assert.equal(cmp.ambiguous, 0);
        // The oracle is not trivially right: the writers changed, deleted and created plenty.
        const changed = [...expected].filter(
          ([id, s]) => JSON.stringify(s) !== JSON.stringify(seeded.get(id)),
        );
        assert.ok(changed.length > 150, `${changed.length} ids changed`);
        assert.ok([...expected.values()].filter((s) => s === null).length > 10);
        // ...and it notices a single wrong document.
        const [someId, someDoc] = [...actual].find(([, d]) => typeof d.n === 'number')!;
        const tampered = new Map(actual).set(someId, { ...someDoc, n: -999_999 });
        assert.deepEqual(compare(expected, tampered, { seeded }).stale, [someId]);
        return report;
      } finally {
        await c.deleteIndex(index).catch(() => undefined);
        await c.close();
      }
    }

    it('the oracle predicts every document of the index exactly', async () => {
      const r = await run(false);
      console.log(
        `${kind}: ${r.ops} ops, acked ${JSON.stringify(r.ackedByKind)}, refused ${JSON.stringify(r.refusedByReason)}`,
      );
    });

    it('writes refused by a 1 s write block are counted, never applied, and the oracle stays exact', async () => {
      const r = await run(true);
      console.log(
        `${kind} (block): ${r.ops} ops, acked ${JSON.stringify(r.ackedByKind)}, refused ${JSON.stringify(r.refusedByReason)}`,
      );
    });
  });
}
