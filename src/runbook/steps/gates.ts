/**
 * Between the copy and the switch: the target's own settings back, then the gates that refuse a switch that
 * could lose data — dead letters within budget, counts (as the strategy gates them), and the per-document proof.
 */
import { restoreTargetSettings } from '../../cutover/target-settings.js';
import { GateError } from '../../store/errors.js';
import type { Step } from '../context.js';
import { proveAndJudge } from '../proof-gate.js';

export const restoreTargetStep: Step = {
  name: 'restore-target',
  title: 'Restore the target settings recorded before the copy',
  done: (c) => !!c.state.completed.copy && !c.state.temporarySettingsApplied,
  changes: (_spec, c) => [
    c.strategy.keepsTombstonesUntilSwitch
      ? 'puts back the recorded number_of_replicas and refresh_interval of the target; gc_deletes goes back after the switch (tombstones must outlive the catch-up)'
      : 'puts back the recorded number_of_replicas, refresh_interval and gc_deletes of the target',
  ],
  async run(c) {
    await restoreTargetSettings(c, c.strategy.keepsTombstonesUntilSwitch);
    return 'continue';
  },
};

export const gateStep: Step = {
  name: 'gate',
  title: 'Gate: dead letters within budget, counts equal after refresh',
  done: (c) => !!c.state.completed.gate,
  changes: (_spec, c) => [
    c.strategy.countGate === 'under-freeze'
      ? 'nothing: checks dead letters; the counts are compared while writes are frozen (or held by the proxy), right before the switch'
      : 'nothing: refreshes both indices and compares _count (source - dropped - dead letters = target)',
  ],
  async run(c) {
    const t = c.state.totals!;
    const deadLetters = t.deadLetters + c.strategy.captureDeadLetters(c);
    if (deadLetters > c.spec.copy.maxDeadLetters) {
      throw new GateError(
        `cutover refused: ${deadLetters} document(s) were rejected by the target (allowed: ${c.spec.copy.maxDeadLetters}); see ${c.store.deadLetterPath}. Fix the mapping or transform, then \`cutover run --retry-dead-letters\` copies exactly those documents again; or raise copy.maxDeadLetters if this loss is acceptable`,
      );
    }
    if (c.strategy.countGate === 'under-freeze') {
      // The source keeps changing: counts can only be compared while it is frozen, right before the switch.
      c.reporter.info(
        'dead letters within budget; the count gate runs right before the switch, while writes are frozen or held',
      );
      return 'continue';
    }
    await c.source.refresh(c.state.sourceIndex!);
    await c.target.refresh(c.spec.target.index);
    const source = await c.source.count(c.state.sourceIndex!);
    const target = await c.target.count(c.spec.target.index);
    const expectedTarget = source - t.dropped - t.deadLetters;
    c.state.countGate = { source, target, expectedTarget, at: new Date().toISOString() };
    c.audit.record({ event: 'count-gate', ...c.state.countGate });
    const atLeast = c.strategy.countGate === 'at-least';
    if (atLeast ? target < expectedTarget : target !== expectedTarget) {
      throw new GateError(
        `cutover refused: target has ${target} documents, expected ${atLeast ? 'at least ' : ''}${expectedTarget} (source ${source} - dropped ${t.dropped} - dead letters ${t.deadLetters}). Nothing was switched. Either the source was written to during the copy (live writes need a capture strategy) or documents are missing: compare the indices before retrying`,
      );
    }
    c.reporter.info(`count gate passed: ${target} documents on the target`);
    return 'continue';
  },
};

export const verifyStep: Step = {
  name: 'verify',
  title: 'Proof: compare source and target document by document',
  done: (c) => !!c.state.completed.verify,
  changes: (spec) =>
    spec.verify.mode === 'off'
      ? ['skipped (verify.mode = off): only the count gate stands between the copy and the switch']
      : [
          `nothing: ${
            spec.verify.mode === 'versions'
              ? `compares every id's version on both sides (ids and versions only), and the transformed source _source with the target _source for ${(spec.verify.sampleRate * 100).toFixed(2)}% of the ids and for every id whose versions disagree (verify.mode full compares every document's content)`
              : `reads ${spec.verify.mode === 'full' ? 'every document' : `${(spec.verify.sampleRate * 100).toFixed(2)}% of the documents`} on both sides and compares transformed source _source with target _source`
          }${spec.verify.ignore.length ? ` (ignoring ${spec.verify.ignore.join(', ')})` : ''}; refuses cutover above ${spec.verify.maxDifferences} difference(s)`,
        ],
  async run(c) {
    if (c.spec.verify.mode === 'off') return 'continue';
    const r = await proveAndJudge(c, 'after the copy');
    c.reporter.info(`proof passed: ${r.confidence}`);
    return 'continue';
  },
};
