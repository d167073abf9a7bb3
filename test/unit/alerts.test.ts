/** What each audit record becomes in an alert, and each webhook format's body, field by field. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alertOf } from '../../src/ops/alert-events.js';
import { payloadFor, type Webhook } from '../../src/ops/alerts.js';

const at = '2026-11-30T03:00:00.000Z';

describe('alertOf', () => {
  it('maps the records an operator must hear of, and nothing else', () => {
    assert.equal(alertOf('m', { event: 'run-started', command: 'run', at })?.kind, 'started');
    assert.equal(alertOf('m', { event: 'step-done', step: 'copy', at })?.summary, 'm: step copy done');
    assert.deepEqual(alertOf('m', { event: 'run-failed', step: 'copy', error: 'boom', at })?.incident, {
      key: 'run',
      action: 'trigger',
    });
    assert.deepEqual(
      alertOf('m', { event: 'run-finished', command: 'run', phase: 'cut-over', at })?.incident,
      {
        key: 'run',
        action: 'resolve',
      },
    );
    assert.equal(alertOf('m', { event: 'watchdog-paused', why: 'target is red', at })?.severity, 'critical');
    // Rollback and cleanup are heard, without an incident.
    const rolled = alertOf('m', { event: 'rolled-back', at });
    assert.deepEqual(
      [rolled?.kind, rolled?.severity, rolled?.incident],
      ['rolled-back', 'warning', undefined],
    );
    assert.equal(
      alertOf('m', { event: 'old-index-deleted', index: 'old-v1', at })?.summary,
      'm: the old index old-v1 was deleted (cleanup)',
    );
    assert.equal(alertOf('m', { event: 'watchdog-resumed', at })?.incident?.action, 'resolve');
    // A refused switch try alerts; a fence inside a hold or a try that switched does not.
    assert.equal(
      alertOf('m', { event: 'hold', switched: false, attempt: 1, reason: 'budget', at })?.kind,
      'switch-refused',
    );
    assert.equal(alertOf('m', { event: 'hold', switched: true, at }), undefined);
    assert.equal(alertOf('m', { event: 'freeze', switched: false, fence: true, at }), undefined);
    assert.equal(alertOf('m', { event: 'copied', totals: { deadLetters: 0 }, at }), undefined);
    assert.equal(alertOf('m', { event: 'copied', totals: { deadLetters: 3 }, at })?.kind, 'dead-letters');
    assert.equal(alertOf('m', { event: 'progress', at }), undefined);
  });
});

describe('payloadFor', () => {
  const failed = alertOf('orders', { event: 'run-failed', step: 'copy', error: 'disk full', at })!;
  const finished = alertOf('orders', { event: 'run-finished', command: 'run', phase: 'cut-over', at })!;
  const started = alertOf('orders', { event: 'run-started', command: 'run', at })!;
  const pd: Webhook = { url: 'http://x', format: 'pagerduty', routingKey: 'rk' };

  it('json: the event as it is', () => {
    const b = payloadFor({ url: 'http://x', format: 'json' }, failed)!;
    assert.equal(b.kind, 'failed');
    assert.equal(b.migration, 'orders');
    assert.equal(b.severity, 'error');
    assert.equal(b.summary, 'orders: failed in step copy: disk full');
    assert.equal(b.at, at);
  });

  it('slack: one text line with a mark for the severity', () => {
    assert.deepEqual(payloadFor({ url: 'http://x', format: 'slack' }, failed), {
      text: ':x: orders: failed in step copy: disk full',
    });
  });

  it('pagerduty: trigger and resolve share the dedup key; events that are no incident are not sent', () => {
    const t = payloadFor(pd, failed)!;
    assert.equal(t.routing_key, 'rk');
    assert.equal(t.event_action, 'trigger');
    assert.equal(t.dedup_key, 'cutover/orders/run');
    const p = t.payload as Record<string, unknown>;
    assert.equal(p.summary, 'orders: failed in step copy: disk full');
    assert.equal(p.source, 'cutover');
    assert.equal(p.severity, 'error');
    assert.equal(p.timestamp, at);
    assert.equal(p.component, 'orders');
    const r = payloadFor(pd, finished)!;
    assert.deepEqual(r, { routing_key: 'rk', event_action: 'resolve', dedup_key: 'cutover/orders/run' });
    assert.equal(payloadFor(pd, started), undefined);
  });
});
