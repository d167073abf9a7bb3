/**
 * The registry: the one place that maps `capture.strategy` to its object. Adding a mode means one file in this
 * folder and one line here (and its name in the spec schema).
 */
import type { LoadedSpec } from '../../spec/load.js';
import type { CaptureStrategy } from '../strategy.js';
import { appendOnlyCapture } from './append-only.js';
import { noCapture } from './none.js';
import { proxyCapture } from './proxy.js';
import { seqnoCapture } from './seqno.js';
import { timestampCapture } from './timestamp.js';

type Mode = LoadedSpec['capture']['strategy'];

const STRATEGIES: Record<Mode, (spec: LoadedSpec) => CaptureStrategy> = {
  none: noCapture,
  seqno: seqnoCapture,
  timestamp: timestampCapture,
  'append-only': appendOnlyCapture,
  proxy: proxyCapture,
};

/** A fresh strategy object for one command (live modes keep their capture in it). */
export function captureStrategy(spec: LoadedSpec): CaptureStrategy {
  return STRATEGIES[spec.capture.strategy](spec);
}
