/**
 * `capture.strategy: none`: the copy is of one point in time. Nothing is captured, so the counts must agree
 * exactly after the copy: a source written to meanwhile makes the gate refuse the switch, never lose a write.
 */
import type { CaptureStrategy } from '../strategy.js';
import { pointInTime } from './point-in-time.js';

export function noCapture(): CaptureStrategy {
  return {
    ...pointInTime,
    mode: 'none',
    summary: 'none: a point-in-time copy; the switch is refused if the source changed meanwhile',
    createOnly: false,
    countGate: 'exact',
    proofSkipsTargetPass: false,
    preflight: async () => [],
    beforeCopy: [],
  };
}
