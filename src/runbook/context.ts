/**
 * What every step works with, built once per command and complete: the spec, both clusters, the state and its
 * store, the audit trail, the reporter, the transform and the capture strategy chosen for this migration. No step
 * builds a context of its own or fills one in later.
 */
import type { CaptureContext, CaptureStrategy } from '../capture/strategy.js';
import type { LoadedSpec } from '../spec/load.js';

export interface Ctx extends CaptureContext {
  strategy: CaptureStrategy;
  /** switch aliases now even when the spec says cutover.mode = manual (the `cutover` command) */
  cutoverNow: boolean;
  /** go on despite preflight findings that are not about safety */
  force: boolean;
  /** the operator's before-switch hook (alerts.hooksPath): why the switch must not happen now, if it must not */
  vetoSwitch?: () => Promise<string | undefined>;
}

/** A step of the runbook: idempotent, recorded in the state once done, described for `plan` before it runs. */
export interface Step {
  name: string;
  title: string;
  done(c: Ctx): boolean;
  /** what the step will change, in words an operator can check */
  changes(spec: LoadedSpec, c: Ctx): string[];
  /** 'pause': stop here, the next command resumes (manual cutover, a rollback asking for the lock) */
  run(c: Ctx): Promise<'continue' | 'pause'>;
}
