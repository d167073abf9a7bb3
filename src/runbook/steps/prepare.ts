/**
 * Before the copy: read the clusters and refuse bad input while nothing has changed yet, prove a sample of the
 * documents fits the target mapping, create the target, and set the copy-time settings (originals recorded first).
 */
import { canonical, desiredTargetBody, firstDifference } from '../../cutover/target.js';
import { applyCopySettings } from '../../cutover/target-settings.js';
import { failpoint } from '../../ops/failpoints.js';
import { PreflightError } from '../../store/errors.js';
import { inspect, refuseOn, runSample, sampleFinding, sampleIndexOf } from '../../verify/inspect.js';
import type { Step } from '../context.js';

export const inspectStep: Step = {
  name: 'inspect',
  title: 'Inspect source, aliases and target',
  done: (c) => !!c.state.completed.inspect,
  changes: () => [
    'nothing: reads the source index, its aliases and shard count; checks the target name is free',
  ],
  async run(c) {
    const f = await inspect({ ...c, sample: false });
    if (f.targetReused) c.state.createdTarget = false;
    c.state.sourceIndex = f.sourceIndex;
    c.state.sourceShards = f.shards;
    c.state.parkedSettings = f.parkedSettings;
    c.state.aliases = { records: f.aliases, write: c.spec.aliases?.write };
    c.audit.record({
      event: 'inspected',
      sourceIndex: f.sourceIndex,
      shards: f.shards,
      aliases: f.aliases.map((r) => r.alias),
    });
    return 'continue';
  },
};

export const sampleStep: Step = {
  name: 'sample',
  title: 'Dry run: index a sample into a scratch index with the target mapping',
  done: (c) => !!c.state.completed.sample,
  changes: (spec) =>
    spec.copy.sampleSize === 0
      ? ['skipped (copy.sampleSize = 0)']
      : [
          `creates scratch index ${sampleIndexOf(spec.target.index)}, indexes ${spec.copy.sampleSize} transformed source documents, deletes it`,
        ],
  async run(c) {
    if (c.spec.copy.sampleSize === 0 || c.state.createdTarget === false) return 'continue';
    const body = await desiredTargetBody(c.source, c.target, c.state.sourceIndex!, c.spec);
    const r = await runSample(c, c.state.sourceIndex!, body);
    c.audit.record({ event: 'sampled', sampled: r.sampled, rejected: r.rejected.length });
    const finding = sampleFinding(r, c.spec);
    refuseOn([finding], c.force);
    if (finding.severity === 'ok') c.reporter.info(finding.message);
    else c.reporter.warn(`${finding.message}${finding.action ? `\n  -> ${finding.action}` : ''}`);
    return 'continue';
  },
};

export const createTargetStep: Step = {
  name: 'create-target',
  title: 'Create the target index',
  done: (c) => !!c.state.completed['create-target'],
  changes: (spec, c) =>
    spec.target.reuse
      ? [`reuses ${spec.target.index} if it exists with matching mappings`]
      : [
          `creates index ${spec.target.index} on ${c.target.displayUrl} with the target mappings and settings`,
        ],
  async run(c) {
    if (c.state.createdTarget === false) return 'continue';
    const body = await desiredTargetBody(c.source, c.target, c.state.sourceIndex!, c.spec);
    if (await c.target.indexExists(c.spec.target.index)) {
      // Only reachable after a crash between the create and the state write: it is ours if the mappings match.
      const existing = Object.values(await c.target.getMapping(c.spec.target.index))[0]?.mappings ?? {};
      if (canonical(existing) !== canonical(body.mappings))
        throw new PreflightError(
          `target.index: "${c.spec.target.index}" appeared with other mappings (${firstDifference(existing, body.mappings)})`,
        );
    } else {
      await c.target.createIndex(c.spec.target.index, { settings: body.settings, mappings: body.mappings });
      failpoint('target.after-create');
    }
    c.state.createdTarget = true;
    c.audit.record({ event: 'target-created', index: c.spec.target.index });
    return 'continue';
  },
};

export const tuneTargetStep: Step = {
  name: 'tune-target',
  title: 'Set copy-time settings on the target (recording the originals first)',
  done: (c) => !!c.state.temporarySettingsApplied || !!c.state.completed.copy,
  changes: (spec, c) => [
    `sets ${Object.entries(c.strategy.copySettings())
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')} on ${spec.target.index}; the original values are restored after the copy`,
  ],
  async run(c) {
    const settings = c.strategy.copySettings();
    await applyCopySettings(c, settings);
    failpoint('target.after-temporary-settings');
    c.state.temporarySettingsApplied = true;
    c.audit.record({
      event: 'temporary-settings-applied',
      original: c.state.originalSettings,
      temporary: settings,
    });
    return 'continue';
  },
};
