/** The pure parts of migrating across versions: the body translation, auto-create patterns, refusal fixes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capabilitiesFor } from '../../src/cluster/capabilities.js';
import { translateBody } from '../../src/cutover/translate.js';
import { allowsAutoCreate, versionGap } from '../../src/verify/cross-cluster.js';
import { fixFor } from '../../src/verify/target-accepts.js';

const es7 = capabilitiesFor('elasticsearch', '7.17.29', []);
const es8 = capabilitiesFor('elasticsearch', '8.19.14', []);
const os3 = capabilitiesFor('opensearch', '3.1.0', []);

describe('translateBody', () => {
  const body = () => ({
    settings: {
      index: {
        soft_deletes: { enabled: 'false' },
        max_adjacency_matrix_filters: '50',
        number_of_shards: '2',
      },
    },
    mappings: { _field_names: { enabled: false }, properties: { a: { type: 'keyword' } } },
  });

  it('drops what Elasticsearch 8 refuses and lists each change', () => {
    const t = translateBody(body(), es8);
    assert.deepEqual(t.settings, { index: { number_of_shards: '2' } });
    assert.deepEqual(t.mappings, { properties: { a: { type: 'keyword' } } });
    assert.deepEqual(t.translations.map((x) => x.id).sort(), [
      '_field_names',
      'index.max_adjacency_matrix_filters',
      'index.soft_deletes.enabled',
    ]);
  });

  it('leaves what the target takes, and what target.translate.keep names', () => {
    assert.deepEqual(translateBody(body(), es7).translations, []);
    const kept = translateBody(body(), es8, ['_field_names']);
    assert.deepEqual(kept.mappings._field_names, { enabled: false });
    // OpenSearch keeps _field_names but creates indices with soft deletes only.
    assert.deepEqual(
      translateBody(body(), os3).translations.map((x) => x.id),
      ['index.soft_deletes.enabled'],
    );
  });

  it('unwraps a mapping type left over from 6.x', () => {
    const t = translateBody(
      { settings: {}, mappings: { _doc: { properties: { a: { type: 'long' } } } } },
      es8,
    );
    assert.deepEqual(t.mappings, { properties: { a: { type: 'long' } } });
    assert.equal(t.translations[0]!.id, '_type');
  });
});

it('versionGap names upgrades, downgrades and platform moves', () => {
  assert.match(
    versionGap(es7, es8, false).message,
    /Elasticsearch 7\.17\.29 -> target Elasticsearch 8\.19\.14: major upgrade/,
  );
  assert.equal(versionGap(es8, es7, false).severity, 'warn');
  assert.match(versionGap(es8, os3, false).message, /platform move/);
});

it('allowsAutoCreate follows action.auto_create_index: first matching pattern decides', () => {
  assert.equal(allowsAutoCreate('true', 'w'), true);
  assert.equal(allowsAutoCreate('false', 'w'), false);
  assert.equal(allowsAutoCreate('-cc-write,+*', 'cc-write'), false);
  assert.equal(allowsAutoCreate('-cc-write,+*', 'other'), true);
  assert.equal(allowsAutoCreate('+logs-*', 'cc-write'), false);
});

it('fixFor writes the override that removes what the target refuses', () => {
  assert.match(
    fixFor('Unknown parameter [boost] on mapper [obj.title]'),
    /target\.mappingOverrides: \{"properties":\{"obj":\{"properties":\{"title":\{"boost":null\}\}\}\}\}/,
  );
  assert.match(fixFor('unknown setting [index.foo]'), /target\.settingOverrides: \{"index\.foo":null\}/);
});
