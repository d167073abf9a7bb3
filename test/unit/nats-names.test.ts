import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idToken, nameToken, natsNames } from '../../src/proxy/nats-names.js';
import { resolveSpec } from '../../src/spec/load.js';

function spec(name: string, stream?: string) {
  return resolveSpec(
    {
      name,
      source: { cluster: { url: 'http://127.0.0.1:9200' }, index: 'a' },
      target: { index: 'b' },
      proxy: {
        journal: { kind: 'nats', servers: 'nats://u:p@127.0.0.1:4222, nats://127.0.0.1:4223', stream },
      },
    },
    '/tmp',
  );
}

describe('NATS journal names', () => {
  it('keep distinct migration names distinct, with no "." inside a subject token', () => {
    const names = ['a.b', 'a_b', 'a-b', 'ab', 'a.life', 'a'];
    const tokens = names.map(nameToken);
    assert.equal(new Set(tokens).size, names.length);
    for (const t of tokens) assert.match(t, /^[A-Za-z0-9_-]+$/);
  });
  it('never put one migration under another one wildcard', () => {
    const a = natsNames(spec('a'));
    const b = natsNames(spec('a.life'));
    const under = (subject: string, wildcard: string) =>
      wildcard.endsWith('.*') &&
      subject.startsWith(wildcard.slice(0, -1)) &&
      !subject.slice(wildcard.length - 1).includes('.');
    for (const s of b.streamSubjects)
      for (const w of a.streamSubjects) assert.ok(!under(s, w), `${s} under ${w}`);
  });
  it('turn any proxy id into one subject token, one-to-one', () => {
    const ids = ['host-1', 'host.1', 'host~2e1', 'host 1', 'hôte*1', 'a>b'];
    const tokens = ids.map(idToken);
    assert.equal(new Set(tokens).size, ids.length);
    for (const t of tokens) assert.match(t, /^[A-Za-z0-9_~-]+$/);
    assert.equal(idToken('host-1'), 'host-1');
  });
  it('derive the stream from the migration name unless one is named, and split the servers', () => {
    const n = natsNames(spec('orders.v2'));
    assert.equal(n.stream, 'cutover-ordersDv2');
    assert.deepEqual(n.streamSubjects, ['cutover.ordersDv2.journal', 'cutover.ordersDv2.life.*']);
    assert.equal(n.life('p.1'), 'cutover.ordersDv2.life.p~2e1');
    assert.deepEqual(n.servers, ['nats://u:p@127.0.0.1:4222', 'nats://127.0.0.1:4223']);
    assert.equal(natsNames(spec('orders.v2', 'MY_STREAM')).stream, 'MY_STREAM');
  });
});
