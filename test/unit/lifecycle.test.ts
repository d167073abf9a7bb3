/**
 * ILM/ISM explain parsing. The integ-test servers have neither ILM nor ISM, so these run against explain
 * responses in test/fixtures/, shaped after the example responses of the Elasticsearch and OpenSearch reference
 * documentation (not captured from a cluster of ours).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  lifecycleFindings,
  lifecycleSettings,
  parseIlmExplain,
  parseIsmExplain,
} from '../../src/verify/lifecycle.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));

describe('index lifecycle', () => {
  it('warns when an ILM hot phase can roll the index over', () => {
    const info = parseIlmExplain(fixture('ilm-explain-hot-rollover.json'), 'my-index-000001')!;
    assert.deepEqual(info, {
      system: 'ilm',
      managed: true,
      policy: 'my_policy',
      phase: 'hot',
      action: 'rollover',
      rollover: true,
    });
    const [f] = lifecycleFindings(info, 'my-index-000001');
    assert.equal(f?.severity, 'warn');
    assert.match(
      f!.message,
      /ILM policy "my_policy", phase\/state hot, action rollover: a rollover could fire/,
    );
  });
  it('reports a warm phase without rollover as information', () => {
    const info = parseIlmExplain(fixture('ilm-explain-warm.json'), 'my-index-000001')!;
    assert.equal(info.rollover, false);
    assert.equal(lifecycleFindings(info, 'x')[0]?.severity, 'info');
  });
  it('knows unmanaged indices and clusters without a lifecycle API', () => {
    assert.equal(parseIlmExplain(fixture('ilm-explain-unmanaged.json'), 'products')?.managed, false);
    assert.equal(lifecycleFindings(undefined, 'products')[0]?.severity, 'info');
  });
  it('reads ISM explain', () => {
    const info = parseIsmExplain(fixture('ism-explain-managed.json'), 'logs-000001')!;
    assert.equal(info.policy, 'hot_warm');
    assert.equal(info.phase, 'hot');
    assert.equal(info.rollover, true);
  });
  it('holds back lifecycle settings', () => {
    assert.deepEqual(
      lifecycleSettings({
        'index.lifecycle.name': 'p',
        'index.lifecycle.rollover_alias': 'logs',
        'index.number_of_shards': '1',
      }),
      {
        'index.lifecycle.name': 'p',
        'index.lifecycle.rollover_alias': 'logs',
      },
    );
  });
});
