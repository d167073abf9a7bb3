/** The published JSON Schema of the spec, for editors and CI linting of spec files. */
import { z } from 'zod';
import { specSchema } from './schema.js';

export function jsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(specSchema, { io: 'input' }),
    $id: 'https://cutover.dev/schema/migration.schema.json',
    title: 'cutover migration spec',
  };
}
