/**
 * The write proxy's pure parts: which requests may change the migrated index, the action lines of a bulk body,
 * what is journaled for an answer, the sniff rewrite and the write gate's hold rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BulkBodyUnreadable,
  bulkItems,
  parseBulkActions,
  rewriteBulkIndex,
} from '../../src/proxy/bulk-actions.js';
import { classify, migratedNames, namesMigrated } from '../../src/proxy/classify.js';
import { bulkEntries, byQueryEntries, docEntries } from '../../src/proxy/journal-entries.js';
import { rewriteNodesHttp } from '../../src/proxy/sniff.js';
import { HoldConflict, WriteGate } from '../../src/proxy/write-gate.js';

const names = migratedNames('orders-v1', ['orders', 'orders-write', 'orders-read']);
const kind = (method: string, path: string, search = '') => classify(method, path, search, names).classified;

describe('classify', () => {
  it('reads are reads, whatever the method', () => {
    for (const [m, p] of [
      ['GET', '/orders/_doc/1'],
      ['HEAD', '/orders/_doc/1'],
      ['GET', '/orders/_search'],
      ['POST', '/orders/_search'],
      ['POST', '/_mget'],
      ['POST', '/orders/_count'],
      ['POST', '/_msearch'],
      ['POST', '/orders/_refresh'],
      ['GET', '/'],
    ] as const)
      assert.deepEqual(kind(m, p), { kind: 'read' }, `${m} ${p}`);
  });

  it('typed paths of Elasticsearch 7.x are the same single-document writes', () => {
    const w = (op: string, id?: string) => ({
      kind: 'doc',
      op,
      index: 'orders',
      ...(id === undefined ? {} : { id }),
      optimistic: false,
      migrated: true,
    });
    assert.deepEqual(kind('PUT', '/orders/order/1'), w('index', '1'));
    assert.deepEqual(kind('POST', '/orders/order'), w('index'));
    assert.deepEqual(kind('DELETE', '/orders/order/1'), w('delete', '1'));
    assert.deepEqual(kind('PUT', '/orders/order/1/_create'), w('create', '1'));
    assert.deepEqual(kind('POST', '/orders/order/1/_update'), w('update', '1'));
    // Index administration is not a document write.
    assert.deepEqual(kind('PUT', '/orders/_settings'), { kind: 'other' });
    assert.deepEqual(kind('PUT', '/orders/_mapping'), { kind: 'other' });
  });

  it('_reindex: where it writes is read from the body by the server', () => {
    assert.deepEqual(kind('POST', '/_reindex'), {
      kind: 'by-query',
      op: 'reindex',
      index: '',
      migrated: false,
      destInBody: true,
    });
  });

  it('single-document writes, with id, auto id, create, update, delete, routing and optimistic concurrency', () => {
    assert.deepEqual(kind('PUT', '/orders/_doc/1'), {
      kind: 'doc',
      op: 'index',
      index: 'orders',
      id: '1',
      optimistic: false,
      migrated: true,
    });
    assert.deepEqual(kind('POST', '/orders-write/_doc'), {
      kind: 'doc',
      op: 'index',
      index: 'orders-write',
      optimistic: false,
      migrated: true,
    });
    assert.deepEqual(kind('PUT', '/orders/_doc/1', '?op_type=create'), {
      kind: 'doc',
      op: 'create',
      index: 'orders',
      id: '1',
      optimistic: false,
      migrated: true,
    });
    assert.equal((kind('POST', '/orders/_create/7') as { op: string }).op, 'create');
    assert.equal((kind('PUT', '/orders/_create/7') as { op: string }).op, 'create');
    assert.equal((kind('POST', '/orders/_update/7') as { op: string }).op, 'update');
    assert.equal((kind('DELETE', '/orders/_doc/7') as { op: string }).op, 'delete');
    assert.deepEqual(kind('POST', '/orders-v1/_doc/a%2Fb%20c', '?routing=r1&if_seq_no=3&if_primary_term=1'), {
      kind: 'doc',
      op: 'index',
      index: 'orders-v1',
      id: 'a/b c',
      routing: 'r1',
      optimistic: true,
      migrated: true,
    });
    assert.equal((kind('PUT', '/other/_doc/1') as { migrated: boolean }).migrated, false);
  });

  it('bulk with and without a default index and routing', () => {
    assert.deepEqual(kind('POST', '/_bulk'), { kind: 'bulk' });
    assert.deepEqual(kind('PUT', '/_bulk'), { kind: 'bulk' });
    assert.deepEqual(kind('POST', '/orders/_bulk', '?routing=r&refresh=wait_for'), {
      kind: 'bulk',
      defaultIndex: 'orders',
      defaultRouting: 'r',
    });
    const f = classify('POST', '/_bulk', '?filter_path=-items&refresh=true', names);
    assert.equal(f.filterPath, '-items');
    assert.equal(f.refresh, 'true');
  });

  it('by-query: lists and wildcards count when any part names or matches a migrated name', () => {
    assert.deepEqual(kind('POST', '/orders/_delete_by_query'), {
      kind: 'by-query',
      op: 'delete_by_query',
      index: 'orders',
      migrated: true,
    });
    assert.equal((kind('POST', '/a,orders-read/_update_by_query') as { migrated: boolean }).migrated, true);
    assert.equal((kind('POST', '/ord*/_delete_by_query') as { migrated: boolean }).migrated, true);
    assert.equal((kind('POST', '/_all/_delete_by_query') as { migrated: boolean }).migrated, true);
    assert.equal((kind('POST', '/other,logs-*/_delete_by_query') as { migrated: boolean }).migrated, false);
    assert.equal((kind('POST', '/a%2Corders/_delete_by_query') as { migrated: boolean }).migrated, true);
  });

  it('index expressions', () => {
    assert.equal(namesMigrated('orders', names), true);
    assert.equal(namesMigrated('*', names), true);
    assert.equal(namesMigrated('*-v1', names), true);
    assert.equal(namesMigrated('orders-v', names), false);
    assert.equal(namesMigrated('-orders', names), false);
    assert.equal(namesMigrated('remote:orders', names), false);
    assert.equal(namesMigrated('<orders-{now/d}>', names), true);
  });

  it('sniffing and everything else', () => {
    for (const p of [
      '/_nodes/http',
      '/_nodes/_all/http',
      '/_nodes/http,os',
      '/_nodes',
      '/_nodes/_local/http',
    ])
      assert.deepEqual(kind('GET', p), { kind: 'sniff' }, p);
    assert.deepEqual(kind('GET', '/_nodes/stats'), { kind: 'read' });
    assert.deepEqual(kind('GET', '/_nodes/n1/stats/http'), { kind: 'read' });
    assert.deepEqual(kind('PUT', '/orders-v2'), { kind: 'other' });
    assert.deepEqual(kind('POST', '/_aliases'), { kind: 'other' });
    assert.deepEqual(kind('DELETE', '/orders'), { kind: 'other' });
    assert.deepEqual(kind('PUT', '/orders/_doc'), { kind: 'other' });
  });
});

describe('bulk action lines', () => {
  const body = Buffer.from(
    [
      '{"index":{"_index":"orders","_id":"1"}}',
      '{"title":"x","nested":{"index":{"_index":"not-an-action"}}}',
      '',
      '{"delete":{"_id":"2","routing":"r2"}}',
      '{"create":{"_index":"other"}}',
      'not json at all, but a source line',
      '{"update":{"_id":"3","if_seq_no":4,"if_primary_term":1}}',
      '{"doc":{"a":1}}',
    ].join('\n'),
  );

  it('reads action lines only, applies the defaults, tolerates blank lines and no final newline', () => {
    assert.deepEqual(parseBulkActions(body, { index: 'orders-write', routing: 'd' }), [
      { op: 'index', index: 'orders', id: '1', routing: 'd', optimistic: false },
      { op: 'delete', index: 'orders-write', id: '2', routing: 'r2', optimistic: false },
      { op: 'create', index: 'other', routing: 'd', optimistic: false },
      { op: 'update', index: 'orders-write', id: '3', routing: 'd', optimistic: true },
    ]);
    assert.deepEqual(parseBulkActions(Buffer.from('{"delete":{"_index":"a","_id":"1"}}\n\n')), [
      { op: 'delete', index: 'a', id: '1', optimistic: false },
    ]);
    // CRLF endings, whitespace-only lines (ASCII and Unicode), a source line that starts with spaces.
    assert.deepEqual(
      parseBulkActions(
        Buffer.from(
          ' \t\r\n{"index":{"_index":"a","_id":"1"}}\r\n  {"x":1}\r\n\u00a0\u2003\n{"delete":{"_index":"a","_id":"2"}}\r\n',
        ),
      ),
      [
        { op: 'index', index: 'a', id: '1', optimistic: false },
        { op: 'delete', index: 'a', id: '2', optimistic: false },
      ],
    );
  });

  it('an unreadable action line is a typed error', () => {
    assert.throws(() => parseBulkActions(Buffer.from('{"index":{}}\n{}\n{oops\n')), BulkBodyUnreadable);
    assert.throws(() => parseBulkActions(Buffer.from('{"upsert":{}}\n{}\n')), BulkBodyUnreadable);
    assert.throws(() => parseBulkActions(Buffer.from('{"index":{}}\n')), BulkBodyUnreadable);
    assert.throws(() => parseBulkActions(Buffer.from('[1]\n')), BulkBodyUnreadable);
  });

  it('cuts a bulk down to the items at given positions, action and source lines as they were', () => {
    const src = Buffer.from(
      '{"index":{"_id":"1"}}\n{"a":1}\n\n{"delete":{"_id":"2"}}\r\n{"update":{"_id":"3"}}\n{"doc":{"é":"}"}}\n',
    );
    assert.equal(
      bulkItems(src, [1, 2]).toString(),
      '{"delete":{"_id":"2"}}\r\n{"update":{"_id":"3"}}\n{"doc":{"é":"}"}}\n',
    );
    assert.equal(bulkItems(src, [0]).toString(), '{"index":{"_id":"1"}}\n{"a":1}\n');
    assert.throws(() => bulkItems(src, [3]), BulkBodyUnreadable);
  });

  it('rewrites _index in action lines only, every source byte kept', () => {
    const src = Buffer.from(
      '{"index":{"_index":"orders-v1","_id":"1"}}\n{"_index":"orders-v1","é":"ü"}\n{"delete":{"_index":"orders-v1","_id":"2"}}\n{"index":{"_index":"other"}}\n{"a":1}',
    );
    const { body: out, rewritten } = rewriteBulkIndex(src, 'orders-v1', 'orders-v2');
    assert.equal(rewritten, 2);
    assert.equal(
      out.toString(),
      '{"index":{"_index":"orders-v2","_id":"1"}}\n{"_index":"orders-v1","é":"ü"}\n{"delete":{"_index":"orders-v2","_id":"2"}}\n{"index":{"_index":"other"}}\n{"a":1}',
    );
    const same = Buffer.from('{"index":{"_index":"x"}}\n{}\n');
    assert.equal(rewriteBulkIndex(same, 'orders-v1', 'orders-v2').body, same);
  });
});

describe('journal entries for an answer', () => {
  const doc = (search: string, path = '/orders/_doc') => {
    const c = classify('POST', path, search, names).classified;
    if (c.kind !== 'doc') throw new Error('not a doc write');
    return c;
  };

  it('a single write: the id from the request or the response, the index where it landed', () => {
    assert.deepEqual(
      docEntries(doc('', '/orders/_doc/1'), { status: 200, body: { _index: 'orders-v1' } }, 'x'),
      [{ kind: 'doc', op: 'index', index: 'orders-v1', id: '1' }],
    );
    assert.deepEqual(
      docEntries(doc('?routing=r'), { status: 201, body: { _index: 'orders-v1', _id: 'gen' } }, 'x'),
      [{ kind: 'doc', op: 'index', index: 'orders-v1', id: 'gen', routing: 'r' }],
    );
    // An auto id the response hid: a marker. One that failed: nothing was created.
    assert.equal(
      docEntries(doc('?filter_path=result'), { status: 201, body: {} }, 'orders-v1')[0]?.kind,
      'reconcile',
    );
    assert.deepEqual(docEntries(doc(''), { status: 400, body: { error: {} } }, 'x'), []);
    // A write the cluster refused is journaled (copying current state is harmless) and marked: nothing changed.
    assert.deepEqual(
      docEntries(doc('', '/orders/_doc/5'), { status: 409, body: { error: {} } }, 'orders-v1'),
      [{ kind: 'doc', op: 'index', index: 'orders', id: '5', failed: true }],
    );
    // No answer at all (status 0), or a 5xx: the write may have landed.
    assert.deepEqual(
      docEntries(doc('', '/orders/_doc/7'), { status: 503, body: { error: {} } }, 'orders-v1'),
      [{ kind: 'doc', op: 'index', index: 'orders', id: '7' }],
    );
    assert.deepEqual(docEntries(doc('', '/orders/_doc/6'), { status: 0 }, 'orders-v1'), [
      { kind: 'doc', op: 'index', index: 'orders', id: '6' },
    ]);
  });

  it('a bulk: items matched by position, other indices left out, hidden auto ids make one marker', () => {
    const actions = parseBulkActions(
      Buffer.from(
        '{"index":{"_id":"1"}}\n{}\n{"create":{}}\n{}\n{"index":{"_index":"other","_id":"9"}}\n{}\n{"create":{}}\n{}\n',
      ),
      { index: 'orders' },
    );
    const migrated = (a: { index?: string }) => names.has(a.index ?? '');
    const items = [
      { index: { _index: 'orders-v1', _id: '1', status: 200 } },
      { create: { _index: 'orders-v1', _id: 'g1', status: 201 } },
      { index: { _index: 'other', _id: '9', status: 201 } },
      { create: { _index: 'orders-v1', status: 400, error: {} } },
    ];
    assert.deepEqual(bulkEntries(actions, migrated, { status: 200, body: { items } }, 'orders-v1'), [
      { kind: 'doc', op: 'index', index: 'orders-v1', id: '1' },
      { kind: 'doc', op: 'create', index: 'orders-v1', id: 'g1' },
    ]);
    const hidden = bulkEntries(
      actions,
      migrated,
      { status: 200, body: { took: 3, errors: false } },
      'orders-v1',
    );
    assert.deepEqual(hidden[0], { kind: 'doc', op: 'index', index: 'orders', id: '1' });
    assert.equal(hidden.length, 2);
    assert.equal(hidden[1]?.kind, 'reconcile');
    // Refused whole: the known id is journaled as a write that changed nothing.
    assert.deepEqual(bulkEntries(actions, migrated, { status: 400 }, 'orders-v1'), [
      { kind: 'doc', op: 'index', index: 'orders', id: '1', failed: true },
    ]);
    // An item the cluster refused (a delete of a document it does not have): journaled, marked failed.
    const del = parseBulkActions(Buffer.from('{"delete":{"_id":"7"}}\n{"delete":{"_id":"8"}}\n'), {
      index: 'orders',
    });
    assert.deepEqual(
      bulkEntries(
        del,
        migrated,
        {
          status: 200,
          body: {
            items: [
              { delete: { _index: 'orders-v1', _id: '7', status: 404, _seq_no: 4 } },
              { delete: { _index: 'orders-v1', _id: '8', status: 200, _seq_no: 5 } },
            ],
          },
        },
        'orders-v1',
      ),
      [
        { kind: 'doc', op: 'delete', index: 'orders-v1', id: '7', sn: 4, failed: true },
        { kind: 'doc', op: 'delete', index: 'orders-v1', id: '8', sn: 5 },
      ],
    );
  });

  it('a by-query is a marker unless the cluster refused it whole', () => {
    const c = classify('POST', '/orders/_delete_by_query', '', names).classified;
    if (c.kind !== 'by-query') throw new Error('not by-query');
    assert.equal(byQueryEntries(c, { status: 200 }, 'orders-v1', false)[0]?.kind, 'reconcile');
    assert.equal(byQueryEntries(c, { status: 409 }, 'orders-v1', false).length, 1);
    assert.deepEqual(byQueryEntries(c, { status: 400 }, 'orders-v1', false), []);
  });
});

describe('sniff rewrite', () => {
  it("puts the proxy's address on every node that has an http section", () => {
    const body = {
      nodes: {
        a: { http: { publish_address: '10.0.0.1:9200', bound_address: ['10.0.0.1:9200'] }, ip: '10.0.0.1' },
        b: { http: { publish_address: 'host/10.0.0.2:9200' } },
        c: { name: 'no http' },
      },
    };
    const { nodes } = rewriteNodesHttp(body, 'proxy:9250');
    assert.equal(nodes, 2);
    assert.deepEqual(body.nodes.a.http, { publish_address: 'proxy:9250', bound_address: ['proxy:9250'] });
    assert.deepEqual(body.nodes.b.http, { publish_address: 'proxy:9250' });
  });
});

describe('write gate', () => {
  const end = { seq: 7, offset: 70 };

  it('a hold waits for writes in flight, queues new ones, and releases them all', async () => {
    const gate = new WriteGate(() => end);
    await gate.enter();
    let granted = false;
    const hold = gate.hold('h1', 60_000).then((g) => {
      granted = true;
      return g;
    });
    const queued = gate.enter();
    await new Promise((r) => setImmediate(r));
    assert.equal(granted, false, 'granted while a write was in flight');
    assert.equal(gate.state()?.queued, 1);
    gate.leave();
    const g = await hold;
    assert.deepEqual(g.journalEnd, end);
    assert.equal(gate.inFlight, 0);
    await assert.rejects(gate.hold('h2', 1000), HoldConflict);
    const rec = gate.release('h1', 'orders-v2');
    assert.equal(rec.releasedBy, 'runner');
    assert.equal(rec.heldRequests, 1);
    assert.equal(rec.switchedTo, 'orders-v2');
    assert.ok((await queued) >= 0);
    assert.equal(gate.inFlight, 1, 'a released write counts in flight at once');
    gate.leave();
    assert.throws(
      () => gate.release('h1'),
      (e: unknown) => e instanceof HoldConflict && e.record?.releasedBy === 'runner',
    );
    assert.throws(() => gate.release('nope'), HoldConflict);
    assert.deepEqual(gate.stats, { holds: 1, heldRequests: 1, longestHoldWaitMs: rec.longestWaitMs });
  });

  it('the deadline releases by itself; a hold still draining then refuses', async () => {
    const gate = new WriteGate(() => end);
    const ended: string[] = [];
    const g2 = new WriteGate(
      () => end,
      (r) => ended.push(r.releasedBy),
    );
    await g2.hold('d', 20);
    const waiting = g2.enter();
    await waiting;
    assert.deepEqual(ended, ['deadline']);
    assert.throws(
      () => g2.release('d'),
      (e: unknown) => e instanceof HoldConflict && e.record?.releasedBy === 'deadline',
    );

    await gate.enter();
    await assert.rejects(
      gate.hold('slow', 20),
      (e: unknown) => e instanceof HoldConflict && e.record?.releasedBy === 'deadline',
    );
    gate.leave();
  });
});
