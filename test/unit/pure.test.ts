/** Fast tests of pure logic: no cluster involved. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { capabilitiesFor } from '../../src/cluster/capabilities.js';
import { isTransientFailure, parseErrorBody, TransportError } from '../../src/cluster/errors.js';
import { redactUrl, scrub } from '../../src/cluster/redact.js';
import { backoffDelay, withRetry } from '../../src/cluster/retry.js';
import { Transport } from '../../src/cluster/transport.js';
import type { DeadLetter } from '../../src/copy/dead-letters.js';
import { toWriteOps, versionOf } from '../../src/copy/slice-copier.js';
import { moveActions } from '../../src/cutover/aliases.js';
import { copyableSettings, deepMerge, firstDifference, nestSettings } from '../../src/cutover/target.js';
import { resolveSpec, SpecError } from '../../src/spec/load.js';
import { writeJsonAtomic } from '../../src/store/atomic-file.js';
import { acquireLock, LockError } from '../../src/store/lock.js';

describe('retry policy', () => {
  it('keeps every delay within [10 ms, min(max, initial * 2^attempt)]', () => {
    const p = { initialMs: 100, maxMs: 1000, budgetMs: 5000 };
    for (let a = 0; a < 10; a++) {
      assert.ok(backoffDelay(a, p, () => 0.999) <= Math.min(1000, 100 * 2 ** a));
      assert.equal(
        backoffDelay(a, p, () => 0),
        10,
      );
    }
  });
  it('retries only what is retryable and stops at the budget', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error('permanent');
        },
        () => false,
        { initialMs: 1, maxMs: 2, budgetMs: 100 },
      ),
      /permanent/,
    );
    assert.equal(calls, 1);
    calls = 0;
    const v = await withRetry(
      async () => {
        if (++calls < 3) throw new Error('flaky');
        return 'ok';
      },
      () => true,
      { initialMs: 1, maxMs: 2, budgetMs: 1000 },
    );
    assert.equal(v, 'ok');
    assert.equal(calls, 3);
  });
  it('classifies failures', () => {
    assert.equal(isTransientFailure(429, 'es_rejected_execution_exception'), true);
    assert.equal(isTransientFailure(500, 'circuit_breaking_exception'), true);
    assert.equal(isTransientFailure(400, 'mapper_parsing_exception'), false);
    assert.equal(isTransientFailure(400, 'strict_dynamic_mapping_exception'), false);
    assert.equal(new TransportError('x', 'ECONNRESET', 'GET', '/').transient, true);
    assert.equal(new TransportError('x', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'GET', '/').transient, false);
    assert.deepEqual(parseErrorBody({ error: { type: 't', reason: 'r', root_cause: [] }, status: 400 }), {
      type: 't',
      reason: 'r',
      rootCause: [],
    });
    assert.equal(parseErrorBody({ error: 'plain' }).reason, 'plain');
  });
});

describe('secrets', () => {
  it('redacts URL credentials and secret-looking parameters', () => {
    assert.equal(
      redactUrl('https://bob:hunter2@es.example:9200/x?api_key=abc&x=1'),
      'https://***:***@es.example:9200/x?api_key=***&x=1',
    );
    assert.equal(scrub('token hunter2 in text', ['hunter2']), 'token *** in text');
  });
  it('keeps credentials given in the URL out of the printable URL', () => {
    const t = new Transport({ url: 'http://user:s3cret-pass@127.0.0.1:9' });
    assert.ok(!t.displayUrl.includes('s3cret-pass'));
    assert.ok(!t.displayUrl.includes('user'));
  });
});

describe('capabilities', () => {
  it('knows which PIT API each distribution has', () => {
    assert.equal(capabilitiesFor('elasticsearch', '7.9.3', []).pit, null);
    assert.equal(capabilitiesFor('elasticsearch', '7.17.29', []).pit, 'es');
    assert.equal(capabilitiesFor('opensearch', '2.3.0', []).pit, null);
    assert.equal(capabilitiesFor('opensearch', '3.8.0', ['reindex']).pit, 'opensearch');
    assert.equal(capabilitiesFor('opensearch', '3.8.0', ['reindex']).reindex, true);
    assert.equal(capabilitiesFor('elasticsearch', '7.8.1', []).writeBlockApi, false);
    assert.equal(capabilitiesFor('elasticsearch', '7.9.0', []).writeBlockApi, true);
    assert.equal(capabilitiesFor('opensearch', '1.3.0', []).writeBlockApi, true);
  });
});

describe('spec validation', () => {
  const base = {
    name: 'm',
    source: { cluster: { url: 'http://127.0.0.1:9200' }, index: 'a' },
    target: { index: 'b' },
  };
  it('applies defaults', () => {
    const s = resolveSpec(base, '/tmp');
    assert.equal(s.copy.batchDocs, 500);
    assert.equal(s.cutover.mode, 'auto');
    assert.equal(s.migrationDir, '/tmp/.cutover/m');
    assert.equal(s.cutover.freezeBudgetMs, 1000);
    assert.equal(s.capture.maxLagSeconds, 2);
  });
  it('captures live writes by _seq_no by default when there is a write alias to move', () => {
    assert.equal(resolveSpec(base, '/tmp').capture.strategy, 'none');
    const aliased = { ...base, aliases: { read: ['a'], write: 'a-write' } };
    assert.equal(resolveSpec(aliased, '/tmp').capture.strategy, 'seqno');
    const pinned = { ...aliased, capture: { strategy: 'none' } };
    assert.equal(resolveSpec(pinned, '/tmp').capture.strategy, 'none');
    assert.throws(
      () => resolveSpec({ ...base, capture: { strategy: 'timestamp' } }, '/tmp'),
      /capture\.timestamp: capture\.timestamp\.field is required/,
    );
  });
  it('names the field and the bad value', () => {
    assert.throws(
      () => resolveSpec({ ...base, copy: { concurrency: 0 } }, '/tmp'),
      (e: unknown) => e instanceof SpecError && /copy\.concurrency: .*\(got 0\)/.test(e.message),
    );
    assert.throws(
      () => resolveSpec({ ...base, source: { cluster: { url: 'ftp://x' }, index: 'a' } }, '/tmp'),
      /source\.cluster\.url/,
    );
    assert.throws(
      () => resolveSpec({ ...base, target: { index: 'B' } }, '/tmp'),
      /target\.index: .*\(got "B"\)/,
    );
    assert.throws(() => resolveSpec({ ...base, extra: 1 }, '/tmp'), /unknown field\(s\) extra/);
  });
  it('never echoes a password value in a validation error', () => {
    assert.throws(
      () =>
        resolveSpec(
          {
            ...base,
            source: { cluster: { url: 'http://h:1', auth: { username: 'u', password: 42 } }, index: 'a' },
          },
          '/tmp',
        ),
      (e: unknown) => e instanceof Error && !e.message.includes('42'),
    );
  });
  it('reads mappings from a file relative to the spec', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-'));
    writeFileSync(join(dir, 'm.json'), JSON.stringify({ properties: { a: { type: 'keyword' } } }));
    const s = resolveSpec({ ...base, target: { index: 'b', mappings: 'm.json' } }, dir);
    assert.deepEqual(s.targetMappings, { properties: { a: { type: 'keyword' } } });
    assert.throws(
      () => resolveSpec({ ...base, target: { index: 'b', mappings: 'missing.json' } }, dir),
      /cannot read target\.mappings file .*missing\.json/,
    );
  });
});

describe('target settings and mappings', () => {
  it('merges overrides deeply and removes keys set to null', () => {
    assert.deepEqual(deepMerge({ a: { b: 1, c: 2 }, d: 1 }, { a: { c: 3 }, d: null }), { a: { b: 1, c: 3 } });
  });
  it('nests flat settings and leaves identity, blocks and lifecycle behind', () => {
    const kept = copyableSettings({
      'index.number_of_shards': '3',
      'index.uuid': 'x',
      'index.blocks.write': 'true',
      'index.lifecycle.rollover_alias': 'r',
      'index.analysis.analyzer.a.type': 'standard',
      'index.version.created': '1',
    });
    assert.deepEqual(nestSettings(kept), {
      index: { number_of_shards: '3', analysis: { analyzer: { a: { type: 'standard' } } } },
    });
  });
  it('reports the first differing mapping path', () => {
    assert.match(
      firstDifference({ properties: { a: { type: 'long' } } }, { properties: { a: { type: 'integer' } } })!,
      /^properties\.a\.type/,
    );
  });
});

describe('alias actions', () => {
  it('removes and adds in one list and keeps is_write_index, filter and routing', () => {
    const actions = moveActions(
      [
        { alias: 'w', isWriteIndex: true, indexRouting: '1' },
        { alias: 'r', filter: { term: { x: 1 } } },
      ],
      'old',
      'new',
    );
    assert.deepEqual(actions, [
      { remove: { index: 'old', alias: 'w' } },
      { add: { index: 'new', alias: 'w', is_write_index: true, index_routing: '1' } },
      { remove: { index: 'old', alias: 'r' } },
      { add: { index: 'new', alias: 'r', filter: { term: { x: 1 } } } },
    ]);
  });
});

describe('versions and transforms', () => {
  it('derives external versions from _seq_no + 1 or carries _version', () => {
    assert.equal(versionOf({ _index: 'i', _id: 'a', _seq_no: 0 }, 'seqno'), 1);
    assert.equal(versionOf({ _index: 'i', _id: 'a', _seq_no: 41, _version: 7 }, 'source-version'), 7);
    assert.throws(() => versionOf({ _index: 'i', _id: 'a' }, 'seqno'), /no _seq_no/);
  });
  it('turns a throwing transform into a dead letter naming the document, never a silent drop', async () => {
    const letters: DeadLetter[] = [];
    const r = await toWriteOps(
      [
        { _index: 'i', _id: 'good', _seq_no: 1, _source: { v: 1 } },
        { _index: 'i', _id: 'boom', _seq_no: 2, _source: { v: 2 } },
        { _index: 'i', _id: 'gone', _seq_no: 3, _source: { v: 3 } },
      ],
      {
        transform: (doc, meta) => {
          if (meta.id === 'boom') throw new Error('cannot parse v');
          return meta.id === 'gone' ? null : { ...doc, w: 1 };
        },
        versioning: 'seqno',
        sourceIndex: 'i',
        deadLetters: { add: (l) => letters.push(...l) },
      },
    );
    assert.deepEqual(r.ops, [
      { kind: 'index', id: 'good', routing: undefined, version: 2, doc: { v: 1, w: 1 } },
    ]);
    assert.equal(r.dropped, 1);
    assert.equal(r.failed, 1);
    assert.equal(letters[0]?.id, 'boom');
    assert.equal(letters[0]?.type, 'transform_error');
    assert.match(letters[0]!.reason, /cannot parse v/);
  });
});

describe('state files and locks', () => {
  it('writes JSON atomically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
    writeJsonAtomic(join(dir, 's.json'), { a: 1 });
    writeJsonAtomic(join(dir, 's.json'), { a: 2 });
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 's.json'), 'utf8')), { a: 2 });
  });
  it("refuses a live owner, takes over one gone from this host, and another host's only when asked", () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const path = join(dir, 'lock');
    const lock = acquireLock(path, 'run');
    assert.throws(
      () => acquireLock(path, 'run'),
      (e: unknown) => e instanceof LockError && !e.stale && /locked by a running "run"/.test(e.message),
    );
    lock.release();
    // A lock left by a process that no longer exists (pid 2^22 + 1 is above Linux's pid_max default).
    writeFileSync(
      path,
      JSON.stringify({ pid: 4194305, host: require_hostname(), startedAt: 'x', command: 'run' }),
    );
    const taken = acquireLock(path, 'run');
    assert.equal(taken.tookOver?.owner?.pid, 4194305);
    assert.match(taken.tookOver?.message ?? '', /took over the lock of pid 4194305 \(gone\)/);
    taken.release();
    // Whether a process on another host runs cannot be judged from here.
    writeFileSync(path, JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: 'x', command: 'run' }));
    assert.throws(
      () => acquireLock(path, 'run'),
      (e: unknown) => e instanceof LockError && e.stale && /host elsewhere.*--take-over-lock/.test(e.message),
    );
    const forced = acquireLock(path, 'run', { takeOverStale: true });
    assert.match(forced.tookOver?.message ?? '', /pid 1 on host elsewhere/);
    forced.release();
  });
});

import { hostname } from 'node:os';

function require_hostname(): string {
  return hostname();
}

import { classifyTypeChange, diffMappings } from '../../src/verify/mapping-diff.js';

describe('mapping diff', () => {
  it('classifies type changes', () => {
    assert.equal(classifyTypeChange('integer', 'long').class, 'safe');
    assert.equal(classifyTypeChange('long', 'integer').class, 'breaking');
    assert.equal(classifyTypeChange('double', 'float').class, 'lossy');
    assert.equal(classifyTypeChange('float', 'scaled_float').class, 'lossy');
    assert.equal(classifyTypeChange('keyword', 'long').class, 'breaking');
    assert.equal(classifyTypeChange('long', 'keyword').class, 'safe');
    assert.equal(classifyTypeChange('text', 'keyword').class, 'lossy');
  });
  it('finds removed, added and multi-field changes, dynamic mode and date formats', () => {
    const changes = diffMappings(
      {
        dynamic: 'true',
        properties: {
          a: { type: 'text', fields: { raw: { type: 'keyword' } } },
          d: { type: 'date' },
          gone: { type: 'long' },
        },
      },
      {
        dynamic: 'strict',
        properties: {
          a: { type: 'text' },
          d: { type: 'date', format: 'epoch_millis' },
          b: { type: 'keyword' },
        },
      },
    );
    const by = Object.fromEntries(changes.map((c) => [c.path, c]));
    assert.equal(by['a.raw']?.class, 'lossy');
    assert.equal(by.gone?.class, 'lossy');
    assert.equal(by.b?.class, 'safe');
    assert.equal(by.d?.class, 'breaking');
    assert.equal(by['(dynamic)']?.class, 'breaking');
  });
});

describe('overrides on a base without the key', () => {
  it('drops null entries of nested overrides too', () => {
    assert.deepEqual(deepMerge({}, { properties: { gone: null, kept: { type: 'long' } } }), {
      properties: { kept: { type: 'long' } },
    });
  });
});
