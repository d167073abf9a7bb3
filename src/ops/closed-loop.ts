/**
 * The closed loop beside the copy: the signals collect on their own clock; after each snapshot the decision reads
 * it with the throttle's current rate, ceiling and floor, and the throttle takes the new rate with its reason.
 * Only a changed rate is said (through the reporter): a steady loop is silent. The ceiling stays the operator's
 * (copy.maxDocsPerSecond or `rate N`): the loop moves the rate under it and never above it.
 */
import type { Cluster } from '../cluster/client.js';
import type { Reporter } from './reporter.js';
import type { Throttle } from './throttle.js';
import {
  type Decision,
  decide,
  nextConcurrency,
  signalsOver,
  type Thresholds,
  throughputOf,
} from './throttle-decision.js';
import { type BulkSample, ThrottleSignals } from './throttle-signals.js';

export interface ClosedLoopOptions {
  throttle: Throttle;
  source: Cluster;
  target: Cluster;
  intervalMs: number;
  reporter: Reporter;
  thresholds?: Thresholds;
}

export interface ClosedLoop {
  /** give this to the copy's BulkWriter (onBulk) */
  onBulk(b: BulkSample): void;
  /** the decisions that changed the rate, oldest first (bounded) */
  readonly decisions: Array<Decision & { at: string; concurrency: number }>;
  readonly signals: ThrottleSignals;
  stop(): Promise<void>;
}

const MAX_DECISIONS = 200;

export function startClosedLoop(o: ClosedLoopOptions): ClosedLoop {
  const signals = new ThrottleSignals({ target: o.target, source: o.source, intervalMs: o.intervalMs });
  const decisions: ClosedLoop['decisions'] = [];
  // The reference without a ceiling: the best throughput the copy reached (a copy in pain from its first bulk
  // measures little at first; a reference that low would lift the limit again at once).
  let peak = 0;
  const off = signals.onSnapshot((s) => {
    const v = o.throttle.view();
    peak = Math.max(peak, throughputOf(s));
    const reference = v.ceiling > 0 ? v.ceiling : peak;
    o.throttle.setSignalsOver(signalsOver(s, o.thresholds));
    const d = decide(s, { rate: v.rate, ceiling: v.ceiling, floor: v.floor, reference }, o.thresholds);
    const conc = nextConcurrency(d, v.concurrency, v.maxConcurrency, o.thresholds);
    const rateMoves = d.action !== 'hold' && d.rate !== v.rate;
    if (!rateMoves && conc === v.concurrency) return;
    const concNote =
      conc === v.concurrency ? '' : `; bulks in flight ${v.concurrency} -> ${conc} of ${v.maxConcurrency}`;
    if (rateMoves) o.throttle.setRate(d.rate, d.reason);
    if (conc !== v.concurrency)
      o.throttle.setConcurrency(conc, d.over.length ? d.over.join('; ') : 'all signals clear');
    const said = { ...d, concurrency: conc, reason: `${d.reason}${concNote}`, at: new Date().toISOString() };
    decisions.push(said);
    if (decisions.length > MAX_DECISIONS) decisions.shift();
    o.reporter.info(`throttle: ${said.reason}`, {
      event: 'throttle',
      action: d.action,
      rate: d.rate,
      concurrency: conc,
    });
  });
  signals.start();
  return {
    onBulk: signals.onBulk,
    decisions,
    signals,
    async stop() {
      off();
      o.throttle.setSignalsOver([]);
      await signals.stop();
    },
  };
}
