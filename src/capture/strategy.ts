/**
 * How a migration keeps up with the application's writes: one object per `capture.strategy`, chosen once when a
 * migration is opened (strategies/index.ts) and then simply called, as gh-ost picks its cut-over variant once.
 * Nothing outside the strategies asks which mode is running; a new mode is one file plus its registration.
 *
 * A strategy answers, for its mode: what it requires of the clusters (preflight), the copy settings and write mode
 * the backfill needs, what runs beside the copy, the steps it adds before and after the copy and after the switch,
 * how the counts are gated, how the aliases switch, and what happens to writes made after the switch on rollback.
 */
import type { Cluster } from '../cluster/client.js';
import type { DocRef } from '../copy/slice-copier.js';
import type { TransformFn } from '../copy/transform.js';
import type { Reporter } from '../ops/reporter.js';
import type { Throttle } from '../ops/throttle.js';
import type { LoadedSpec } from '../spec/load.js';
import type { AuditLog } from '../store/audit.js';
import type { MigrationState, StateStore } from '../store/state.js';
import type { Finding } from '../verify/preflight.js';
import type { LiveCapture } from './live.js';

/** Everything a step or a strategy works with; built once per command, complete, by the runbook. */
export interface CaptureContext {
  spec: LoadedSpec;
  source: Cluster;
  target: Cluster;
  store: StateStore;
  state: MigrationState;
  audit: AuditLog;
  reporter: Reporter;
  signal?: AbortSignal;
  transform: TransformFn;
  /** one per process: paces and pauses the copy (and pauses the capture rounds) */
  throttle: Throttle;
}

/** What inspect has read about the source, for the strategy's own requirements. */
export interface SourceFacts {
  source: Cluster;
  sourceIndex: string;
  sourceMappings: Record<string, unknown>;
  /** flat index settings of the source */
  settings: Record<string, unknown>;
}

/** A step a strategy adds to the runbook: same shape as the runbook's own (done / changes / run). */
export interface StrategyStep {
  name: string;
  title: string;
  changes(spec: LoadedSpec): string[];
  /** 'pause': stop here and resume on the next run (a rollback asked for the lock) */
  run(c: CaptureContext): Promise<'continue' | 'pause'>;
}

/** The hooks the backfill calls for the capture running beside it. */
export interface CopyHooks {
  onDropped?: (ids: DocRef[]) => void;
  /** the backfill waits here before each page while live changes are behind (capture.copyYields) */
  yieldTo?: (signal?: AbortSignal) => Promise<void>;
}

/**
 * How the counts prove the copy before the switch: equal after a refresh; at least the source's (the application
 * wrote to the target meanwhile); or only under the write freeze, because the source never stops changing.
 */
export type CountGate = 'exact' | 'at-least' | 'under-freeze';

export interface CaptureStrategy {
  readonly mode: LoadedSpec['capture']['strategy'];
  /** one line for `plan` and the report */
  readonly summary: string;
  /** documents written with op_type=create and no version (the application already writes to the target) */
  readonly createOnly: boolean;
  readonly countGate: CountGate;
  /** the proof skips the target-side pass (documents on the target the source lacks are the application's) */
  readonly proofSkipsTargetPass: boolean;
  /** the target's gc_deletes goes back only after the switch (versioned deletes must outlive catch-up) */
  readonly keepsTombstonesUntilSwitch: boolean;
  /** cutover.postponeFlagFile means something: the switch waits in a loop that can hold it back */
  readonly canPostpone: boolean;
  /**
   * the capture sees deletes as they happen (the proxy's journal): nothing needs an id scan of the whole target to
   * find them (the proof's companion rounds and its re-checks skip it)
   */
  readonly seesDeletes?: boolean;
  /** a field whose `true` means deleted (timestamp capture): such documents are absent from the target */
  readonly softDeleteField?: string;

  /** Hard requirements (PreflightError, naming the field) and findings of this mode, before anything changes. */
  preflight(f: SourceFacts): Promise<Finding[]>;
  /** temporary target settings for the copy (restored afterwards) */
  copySettings(): Record<string, string>;
  /** extra lines for the plan's copy step */
  copyNotes(): string[];
  /** how the switch protects the application's writes, for the plan's switch step (none: nothing to say) */
  switchNotes?(spec: LoadedSpec): string[];
  /** steps before the copy opens its point in time, after the copy, after the switch */
  readonly beforeCopy: StrategyStep[];
  readonly afterCopy: StrategyStep[];
  readonly afterSwitch: StrategyStep[];
  /** run the backfill with whatever this mode runs beside it; the first error of either wins */
  alongsideCopy<T>(c: CaptureContext, copy: (hooks: CopyHooks) => Promise<T>): Promise<T>;
  /** dead letters written by the capture itself (added to the backfill's for the gate) */
  captureDeadLetters(c: CaptureContext): number;
  /** the capture that keeps applying source changes while the proof reads, if any */
  proofCompanion(c: CaptureContext): LiveCapture | undefined;
  /** move the aliases to the target; 'already' after a crash past the alias request */
  switchAliases(c: CaptureContext): Promise<'moved' | 'already'>;
  /**
   * Rollback: move the aliases back. Inside a revert window nothing written since the switch is lost; outside it,
   * says what readers lose sight of.
   */
  rollBack(c: CaptureContext): Promise<'moved' | 'already'>;
  /** a revert window is open: a running `run` keeps the old index in sync and must hand over for a rollback */
  revertWindowOpen(c: Pick<CaptureContext, 'spec' | 'state'>, now?: number): boolean;
  /** let go of what the mode opened for this command (connections that would keep the process alive) */
  close?(): Promise<void>;
}
