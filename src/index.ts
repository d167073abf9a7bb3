/** The typed library API; the CLI is a thin layer over it. */
export * from './cluster/index.js';
export { backfill, type BackfillOptions } from './copy/backfill.js';
export type { DeadLetter, DeadLetterSink } from './copy/dead-letters.js';
export { PitSession, PitSliceReader, ScrollSliceReader, type SliceReader } from './copy/reader.js';
export { copySlice, versionOf, type Versioning } from './copy/slice-copier.js';
export { applyTransform, loadTransform, type DocMeta, type TransformFn } from './copy/transform.js';
export { BulkWriter, type WriteOp, type WriteResult } from './copy/writer.js';
export { moveAliases, moveActions } from './cutover/aliases.js';
export { createReporter } from './ops/progress.js';
export type { Reporter } from './ops/reporter.js';
export { buildReport, formatReport, type RunReport } from './ops/report.js';
export { EXIT, GateError, PreflightError } from './plan/errors.js';
export { LockError } from './plan/lock.js';
export { Migration, type RunOptions, type StepInfo } from './plan/migrator.js';
export type { MigrationState } from './plan/state.js';
export { jsonSchema } from './spec/json-schema.js';
export { loadSpec, resolveSpec, SpecError, type LoadedSpec } from './spec/load.js';
export type { Spec, SpecInput } from './spec/schema.js';
