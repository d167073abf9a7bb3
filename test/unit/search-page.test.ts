/**
 * The search page scanner keeps each hit's `_source` as the exact text the server sent and parses everything
 * else: checked against JSON.parse on pages with the strings, nesting and numbers that trip a hand-written scanner.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scanSearchPage as scanBytes, UnreadableSearchPage } from '../../src/cluster/search-page.js';

/** The scanner reads the page's bytes as the server sent them (UTF-8). */
const scanSearchPage = (text: string) => scanBytes(Buffer.from(text, 'utf8'));
const rawText = (raw: Buffer | undefined) => raw?.toString('utf8');

const sources: unknown[] = [
  { title: 'plain', n: 1 },
  { tricky: 'a "quoted" \\ back\\\\slash \\"', brackets: '}{][', nested: { a: [1, [2, { b: '}' }]] } },
  { unicode: 'é ü 😀 \u2028', esc: '\u0000\t\n', empty: {}, list: [], nul: null, t: true, f: false },
  {},
  { big: 1234567890123456, neg: -1.5e-7 },
];

function page(pretty: boolean): string {
  const body = {
    pit_id: 'AAA=',
    took: 3,
    timed_out: false,
    _shards: { total: 3, successful: 3, skipped: 0, failed: 0 },
    hits: {
      total: { value: 5, relation: 'eq' },
      max_score: null,
      hits: sources.map((src, i) => ({
        _index: 'idx',
        _id: `id-${i}"x`,
        _routing: i === 1 ? 'ré' : undefined,
        _seq_no: i * 7,
        _primary_term: 1,
        _score: null,
        _source: src,
        sort: [i * 7, `ü-${i}`],
      })),
    },
  };
  return pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body);
}

describe('search page scanner', () => {
  for (const pretty of [false, true])
    it(`parses everything but _source, which stays as sent (${pretty ? 'pretty' : 'compact'})`, () => {
      const text = page(pretty);
      const want = JSON.parse(text);
      const got = scanSearchPage(text);
      assert.equal(got.pit_id, 'AAA=');
      assert.deepEqual(got._shards, want._shards);
      assert.deepEqual((got.hits as unknown as { total: unknown }).total, want.hits.total);
      assert.equal(got.hits.hits.length, sources.length);
      for (const [i, h] of got.hits.hits.entries()) {
        const { _source, ...meta } = want.hits.hits[i];
        assert.equal(h._source, undefined);
        assert.deepEqual(JSON.parse(rawText(h._raw)!), _source);
        // byte for byte what the server sent for this document
        assert.equal(
          rawText(h._raw),
          JSON.stringify(_source, null, pretty ? 2 : undefined).replace(/\n/g, `\n${' '.repeat(8)}`),
        );
        assert.deepEqual({ ...h, _raw: undefined }, { ...meta, _raw: undefined });
      }
    });

  it('keeps the exact text of a number JSON.parse would round', () => {
    const text = '{"hits":{"hits":[{"_id":"1","_seq_no":4,"_source":{"id":9007199254740993}}]}}';
    assert.equal(rawText(scanSearchPage(text).hits.hits[0]!._raw), '{"id":9007199254740993}');
  });

  it('reads an _mget answer the same way: found documents with _raw, missing ones without', () => {
    const text =
      '{"docs":[{"_index":"i","_id":"a","_version":2,"_seq_no":9,"_primary_term":1,"found":true,"_source":{"n":9007199254740993,"s":"]}"}},{"_index":"i","_id":"b","found":false}]}';
    const { docs } = scanSearchPage(text);
    assert.deepEqual(
      docs!.map((d) => ({ ...d, ...(d._raw ? { _raw: rawText(d._raw) } : {}) })),
      [
        {
          _index: 'i',
          _id: 'a',
          _version: 2,
          _seq_no: 9,
          _primary_term: 1,
          found: true,
          _raw: '{"n":9007199254740993,"s":"]}"}',
        },
        { _index: 'i', _id: 'b', found: false },
      ],
    );
  });

  it('reads metadata as JSON.parse does: escaped and unknown keys, integers at the edges, fractions, literals', () => {
    const values = [
      '0',
      '-0',
      '7',
      '-7',
      '999999999999999',
      '-999999999999999',
      '9007199254740993',
      '1.5',
      '-2e3',
      '1E+2',
      'null',
      'true',
      'false',
      '"plain"',
      '"with \\"escape\\" and \\u00e9"',
      '""',
      '[1,"a",{"b":null}]',
      '{"x":[]}',
    ];
    const hit = `{${values.map((v, i) => `"k${i}":${v}`).join(',')},"_\\u0069d":"esc","_idx":"near","_seq_no":12,"_version":-3,"found":true,"_source":{}}`;
    const text = `{"docs":[${hit}]}`;
    const want = JSON.parse(text).docs[0];
    delete want._source;
    const got = scanSearchPage(text).docs![0]!;
    assert.equal(rawText(got._raw), '{}');
    const { _raw, ...rest } = got as unknown as Record<string, unknown>;
    assert.deepEqual(rest, want);
    assert.ok(Object.is(rest.k1, -0), '-0 stays -0');
    assert.equal(rest._id, 'esc');
    for (const bad of ['01', '-', '1.', '+1', 'nul', 'truex'])
      assert.throws(() => scanSearchPage(`{"docs":[{"_id":${bad},"found":true}]}`), `${bad} is refused`);
  });

  it('an empty page, and a page it cannot read, are told apart', () => {
    assert.deepEqual(scanSearchPage('{"hits":{"hits":[]}}').hits.hits, []);
    assert.throws(
      () => scanSearchPage('{"hits":{"hits":[{"_id":"1","_source":{"a":"b}]}}'),
      UnreadableSearchPage,
    );
    assert.throws(() => scanSearchPage('{"hits":{"hits":[{"_id" "1"}]}}'), UnreadableSearchPage);
    assert.throws(() => scanSearchPage('[1]'), UnreadableSearchPage);
  });
});
