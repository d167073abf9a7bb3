/**
 * `capture.strategy: timestamp`: catch-up passes over a date field the application stamps on every write (from
 * the previous pass's start minus a margin), soft deletes through a boolean field (no id scan needed), hard
 * deletes by the id reconcile as with seqno. Preflight checks both fields exist with the right types.
 */
import type { LoadedSpec } from '../../spec/load.js';
import { PreflightError } from '../../store/errors.js';
import { fieldType } from '../../verify/mapping-paths.js';
import type { CaptureStrategy } from '../strategy.js';
import { liveRounds } from './live-rounds.js';

export function timestampCapture(spec: LoadedSpec): CaptureStrategy {
  // The schema requires capture.timestamp with this strategy.
  const ts = spec.capture.timestamp!;
  return liveRounds(spec, {
    mode: 'timestamp',
    summary: `timestamp: catch-up passes over ${ts.field} (margin ${ts.marginSeconds} s)${ts.softDeleteField ? `, soft deletes through ${ts.softDeleteField}` : ''}, the switch under a budgeted write freeze`,
    timestamp: { field: ts.field, marginSeconds: ts.marginSeconds },
    softDeleteField: ts.softDeleteField,
    async preflight(f) {
      const type = fieldType(f.sourceMappings, ts.field);
      if (type !== 'date' && type !== 'date_nanos')
        throw new PreflightError(
          `capture.timestamp.field: "${ts.field}" is ${type ? `a ${type} field` : 'not in the mapping'} of ${f.sourceIndex}; it must be a date the application sets on every write`,
        );
      if (ts.softDeleteField && fieldType(f.sourceMappings, ts.softDeleteField) !== 'boolean')
        throw new PreflightError(
          `capture.timestamp.softDeleteField: "${ts.softDeleteField}" must be a boolean field of ${f.sourceIndex} (got ${fieldType(f.sourceMappings, ts.softDeleteField) ?? 'no such field'})`,
        );
      return [];
    },
  });
}
