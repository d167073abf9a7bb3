/** Client-side shard routing: the hash and the arithmetic, without a server (test/cluster/routing.test.ts has one). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultRoutingNumShards, murmur3Hash, shardOf } from '../../src/cluster/routing.js';

describe('murmur3Hash', () => {
  it('matches the known values of Elasticsearch’s own unit test', () => {
    // elastic/elasticsearch server/src/test/java/org/elasticsearch/cluster/routing/operation/hash/murmur3/
    // Murmur3HashFunctionTests.java, testKnownValues (Java ints, hence `| 0`).
    const vectors: Array<[number, string]> = [
      [0x5a0cb7c3, 'hell'],
      [0xd7c31989, 'hello'],
      [0x22ab2984, 'hello w'],
      [0xdf0ca123, 'hello wo'],
      [0xe7744d61, 'hello wor'],
      [0xe07db09c, 'The quick brown fox jumps over the lazy dog'],
      [0x4e63d2ad, 'The quick brown fox jumps over the lazy cog'],
    ];
    for (const [expected, input] of vectors) assert.equal(murmur3Hash(input), expected | 0, input);
  });

  it('returns signed 32-bit ints and hashes UTF-16 code units, not UTF-8 bytes', () => {
    for (const s of ['', 'a', 'é', '中文', '😀', 'x'.repeat(511)]) {
      const h = murmur3Hash(s);
      assert.ok(Number.isInteger(h) && h >= -(2 ** 31) && h < 2 ** 31, s);
    }
    // 'é' is one code unit (0x00e9); its UTF-8 form is two bytes that, read as code units, hash differently.
    assert.notEqual(murmur3Hash('é'), murmur3Hash('\u00c3\u00a9'));
  });
});

describe('defaultRoutingNumShards', () => {
  it('is the largest shards * 2^k <= 1024 with k >= 1 (MetadataCreateIndexService.calculateNumRoutingShards)', () => {
    const expected: Record<number, number> = {
      1: 1024,
      2: 1024,
      3: 768,
      5: 640,
      8: 1024,
      512: 1024,
      600: 1200,
    };
    for (const [shards, want] of Object.entries(expected))
      assert.equal(defaultRoutingNumShards(Number(shards)), want, `${shards} shards`);
  });
});

describe('shardOf', () => {
  it('is floorMod(hash, routingNumShards) / (routingNumShards / shards)', () => {
    for (const id of ['hello', 'hell', 'doc-1', '😀', 'über']) {
      const h = murmur3Hash(id);
      const mod = ((h % 768) + 768) % 768;
      assert.equal(shardOf(id, { shards: 3, routingNumShards: 768 }), Math.floor(mod / 256), id);
      assert.equal(shardOf(id, { shards: 1, routingNumShards: 1024 }), 0);
    }
  });

  it('offsets a partitioned index by the id’s hash and needs the id for it', () => {
    const p = { shards: 4, routingNumShards: 4, partitionSize: 2 };
    assert.throws(() => shardOf('user-1', p), /needs the _id/);
    const h = murmur3Hash('user-1');
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const id = `doc-${i}`;
      const offset = ((murmur3Hash(id) % 2) + 2) % 2;
      const s = shardOf('user-1', { ...p, id });
      assert.equal(s, (((h + offset) % 4) + 4) % 4, id);
      seen.add(s);
    }
    assert.equal(seen.size, 2, 'one routing value spreads over partitionSize shards');
  });
});
