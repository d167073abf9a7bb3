/**
 * The runbook: the steps an operator would follow by hand, in order, by phase. Each is idempotent and recorded in
 * the persisted state once done, so `run` after a crash at any moment picks up at the first step not recorded,
 * and `plan` prints the same list without touching anything. The capture strategy adds its own steps at three
 * places; nothing else here depends on the mode.
 */
import type { CaptureStrategy } from '../capture/strategy.js';
import type { Step } from './context.js';
import { copyStep } from './steps/copy.js';
import { gateStep, restoreTargetStep, verifyStep } from './steps/gates.js';
import { createTargetStep, inspectStep, sampleStep, tuneTargetStep } from './steps/prepare.js';
import { switchStep } from './steps/switch.js';

export function runbook(strategy: CaptureStrategy): Step[] {
  const own = (s: CaptureStrategy['beforeCopy'][number]): Step => ({
    ...s,
    done: (c) => !!c.state.completed[s.name],
    changes: (spec) => s.changes(spec),
  });
  return [
    // prepare
    inspectStep,
    sampleStep,
    createTargetStep,
    tuneTargetStep,
    ...strategy.beforeCopy.map(own),
    // copy
    copyStep,
    ...strategy.afterCopy.map(own),
    // gates
    restoreTargetStep,
    gateStep,
    verifyStep,
    // switch
    switchStep,
    // revert window
    ...strategy.afterSwitch.map(own),
  ];
}
