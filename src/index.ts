/** The typed library API; the CLI is a thin layer over it. */
export * from './cluster/index.js';
export { type BackfillOptions, backfill } from './copy/backfill.js';
export type { DeadLetter, DeadLetterSink } from './copy/dead-letters.js';
export { PitSession, PitSliceReader, ScrollSliceReader, type SliceReader } from './copy/reader.js';
export { copySlice, type Versioning, versionOf } from './copy/slice-copier.js';
export { applyTransform, type DocMeta, loadTransform, type TransformFn } from './copy/transform.js';
export { BulkWriter, type WriteOp, type WriteResult } from './copy/writer.js';
export { moveActions, moveAliases } from './cutover/aliases.js';
export { createReporter } from './ops/progress.js';
export { buildReport, formatReport, type RunReport } from './ops/report.js';
export type { Reporter } from './ops/reporter.js';
export { EXIT, GateError, PreflightError } from './plan/errors.js';
export { LockError } from './plan/lock.js';
export { Migration, type RunOptions, type StepInfo } from './plan/migrator.js';
export type { MigrationState } from './plan/state.js';
export { jsonSchema } from './spec/json-schema.js';
export { type LoadedSpec, loadSpec, resolveSpec, SpecError } from './spec/load.js';
export type { Spec, SpecInput } from './spec/schema.js';
