/** The typed library API: everything the CLI does, the CLI being a thin layer over it. */

export { captureStrategy } from './capture/strategies/index.js';
export type { CaptureContext, CaptureStrategy } from './capture/strategy.js';
export type { AllocationExplain } from './cluster/allocation.js';
export * from './cluster/index.js';
export { type BackfillOptions, backfill, type Claim, type SliceClaims } from './copy/backfill.js';
export type { DeadLetter, DeadLetterSink } from './copy/dead-letters.js';
export { PitSession, PitSliceReader, ScrollSliceReader, type SliceReader } from './copy/reader.js';
export { copySlice, type Versioning, versionOf } from './copy/slice-copier.js';
export { applyTransform, type DocMeta, loadTransform, type TransformFn } from './copy/transform.js';
export { BulkWriter, RetryBudgetExceeded, type WriteOp, type WriteResult } from './copy/writer.js';
export { AliasReadBackError, moveActions, moveAliases } from './cutover/aliases.js';
export { type DoctorReport, formatDoctor, type SearchContexts, type StuckTask } from './ops/doctor.js';
export { createReporter } from './ops/progress.js';
export type { Reporter } from './ops/reporter.js';
export type { StatusSnapshot } from './ops/status-board.js';
export { ControlFailed, NoStatusServer } from './ops/status-client.js';
export type { StatusFigures } from './ops/status-figures.js';
export { type PauseSource, Throttle, type ThrottleView } from './ops/throttle.js';
export type { Decision, SignalSnapshot } from './ops/throttle-decision.js';
export { Watchdog, type WatchdogPause, type WatchdogView } from './ops/watchdog.js';
export * from './proxy/control.js';
export { FileJournalReader, FileJournalWriter } from './proxy/file-journal.js';
export { tuneProxyHeap } from './proxy/heap.js';
export * from './proxy/journal.js';
export { type NatsJournal, type OpenProxyOptions, openProxy } from './proxy/open.js';
export { type ProxyOptions, type RunningProxy, startProxy } from './proxy/server.js';
export {
  Migration,
  type MigrationStatus,
  type RunOptions,
  type RunOutcome,
  type RunResult,
  type StepInfo,
} from './runbook/migration.js';
export { buildReport, formatReport, type RunReport } from './runbook/report.js';
export { control, type Watch, type WatchOptions, watchMigration, watchProxy } from './runbook/watch.js';
export { runWorker, type WorkerOptions, type WorkerResult } from './runbook/worker.js';
export { jsonSchema } from './spec/json-schema.js';
export { type LoadedSpec, loadSpec, resolveSpec, SpecError } from './spec/load.js';
export type { Spec, SpecInput } from './spec/schema.js';
export {
  CutoverError,
  EXIT,
  EXIT_MEANING,
  exitCodeOf,
  GateError,
  Interrupted,
  PreflightError,
} from './store/errors.js';
export { LockError } from './store/lock.js';
export type { MigrationState } from './store/state.js';
export { type Facts, PreflightRefused } from './verify/inspect.js';
export { type Finding, formatFindings } from './verify/preflight.js';
export { formatProof, type ProofReport } from './verify/proof.js';
export { describeSourceWrites, type SourceWrites } from './verify/source-writes.js';
