/**
 * The forward capture of a live strategy (source -> target, by `_seq_no` rounds), built the same way for every
 * mode: one per command, so its position, dropped-id registry and yield gate are shared by every step.
 */
import { captureTuning } from '../../cutover/revert-window.js';
import { LiveCapture, type LiveCaptureOptions } from '../live.js';
import type { CaptureContext } from '../strategy.js';

export function forwardCapture(c: CaptureContext, mode: Partial<LiveCaptureOptions> = {}): LiveCapture {
  return new LiveCapture({
    source: c.source,
    target: c.target,
    sourceIndex: c.state.sourceIndex!,
    targetIndex: c.spec.target.index,
    store: c.store,
    transform: c.transform,
    versioning: c.spec.copy.versioning,
    ...captureTuning(c),
    // Half the switch threshold: the rounds keep headroom under it while the copy and the id scans wait.
    yieldAboveLagMs: c.spec.capture.copyYields ? (c.spec.capture.maxLagSeconds * 1000) / 2 : undefined,
    ...mode,
    targetSide: 'target',
  });
}
