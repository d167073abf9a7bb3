/** Regenerates schema/migration.schema.json from the zod spec schema (test/unit/schema.test.ts checks it is current). */
import { writeFileSync } from 'node:fs';
import { jsonSchema } from '../src/spec/json-schema.js';

writeFileSync(
  new URL('../schema/migration.schema.json', import.meta.url),
  `${JSON.stringify(jsonSchema(), null, 2)}\n`,
);
