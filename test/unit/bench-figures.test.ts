/**
 * The arithmetic behind the proxy benchmark's figures: nearest-rank percentiles, and the collector that keeps every
 * journal-sync lag although the file keeps only its last 2000 (nothing counted twice, nothing skipped).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LagCollector } from '../../bench/lag-collector.js';
import { dist, pct } from '../../bench/load.js';

describe('benchmark percentiles', () => {
  it('are nearest-rank, like the engine', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(pct(sorted, 50), 50);
    assert.equal(pct(sorted, 99), 99);
    assert.equal(pct(sorted, 100), 100);
    assert.equal(pct([7], 99), 7);
    assert.equal(pct([], 50), null);
  });

  it('sort numerically, not as text', () => {
    const d = dist([10, 9, 100, 1]);
    assert.deepEqual([d.n, d.p50, d.max, d.mean], [4, 9, 100, 30]);
    assert.equal(dist([]).p99, null);
  });
});

/** The file as the engine keeps it: appended, then cut to its last `cap` entries. */
function file(all: number[], cap = 2000): number[] {
  return all.slice(Math.max(0, all.length - cap));
}

describe('lag collector', () => {
  it('keeps each lag once while the list only grows', () => {
    const c = new LagCollector();
    const all: number[] = [];
    for (let read = 0; read < 5; read++) {
      for (let i = 0; i < 3; i++) all.push(read * 10 + i);
      c.feed(file(all), read);
    }
    c.feed(file(all), 5); // nothing new
    assert.deepEqual(
      c.all.map((x) => x.ms),
      all,
    );
    assert.deepEqual(
      c.all.filter((x) => x.at === 2).map((x) => x.ms),
      [20, 21, 22],
    );
  });

  it('keeps every lag once the file drops its first ones', () => {
    const c = new LagCollector();
    const all: number[] = [];
    let seed = 7;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    for (let read = 0; read < 40; read++) {
      const batches = 1 + (rand() % 300);
      // Small values repeat a lot, as lags in ms do.
      for (let i = 0; i < batches; i++) all.push(rand() % 50);
      c.feed(file(all, 500), read);
    }
    assert.ok(all.length > 500, 'the file was cut');
    assert.deepEqual(
      c.all.map((x) => x.ms),
      all,
    );
  });
});
