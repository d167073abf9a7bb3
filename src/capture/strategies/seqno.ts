/**
 * `capture.strategy: seqno` (the default with a write alias): catch-up rounds read each source shard's changes
 * by `_seq_no` above the position recorded before the copy; nothing is required of the application.
 */
import type { LoadedSpec } from '../../spec/load.js';
import type { CaptureStrategy } from '../strategy.js';
import { liveRounds } from './live-rounds.js';

export function seqnoCapture(spec: LoadedSpec): CaptureStrategy {
  return liveRounds(spec, {
    mode: 'seqno',
    summary:
      'seqno: catch-up rounds by _seq_no during and after the copy, deletes by id reconcile, the switch under a budgeted write freeze',
    preflight: async () => [],
  });
}
