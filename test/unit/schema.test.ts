import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { jsonSchema } from '../../src/spec/json-schema.js';

it('the published JSON Schema matches the spec schema (regenerate: node --import tsx scripts/gen-schema.ts)', () => {
  const published = JSON.parse(
    readFileSync(new URL('../../schema/migration.schema.json', import.meta.url), 'utf8'),
  );
  assert.deepEqual(published, jsonSchema());
});
