/**
 * The migration as a runbook: an ordered list of steps an operator would follow by hand, each idempotent and
 * each recorded in the persisted state once done. `run` after a crash at any moment picks up at the first step
 * not recorded; `plan` prints the same list without touching anything.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { CaptureState, LiveCapture } from '../capture/live.js';
import { Cluster } from '../cluster/client.js';
import { backfill, loadCheckpoints, totalsOf } from '../copy/backfill.js';
import { FileDeadLetters } from '../copy/dead-letters.js';
import { loadTransform, type TransformFn } from '../copy/transform.js';
import { aliasPlacement, inspectAliases, moveAliases, resolveIndex } from '../cutover/aliases.js';
import { liftWriteBlock } from '../cutover/freeze.js';
import { guardLiftOf } from '../cutover/freeze-guard.js';
import {
  applySettings,
  COPY_SETTINGS,
  canonical,
  desiredTargetBody,
  firstDifference,
  readTemporaryKeys,
  type TargetBody,
} from '../cutover/target.js';
import { failpoint } from '../ops/failpoints.js';
import { type Reporter, silentReporter } from '../ops/reporter.js';
import { clusterConfig, type LoadedSpec } from '../spec/load.js';
import { explainLifecycle, lifecycleFindings, lifecycleSettings } from '../verify/lifecycle.js';
import { blocking, type Finding, formatFindings, preflight, privileges } from '../verify/preflight.js';
import { type ProofReport, prove } from '../verify/proof.js';
import { type SampleResult, sampleDryRun } from '../verify/sample.js';
import { readJson, writeJsonAtomic } from './atomic-file.js';
import { AuditLog } from './audit.js';
import { GateError, PreflightError } from './errors.js';
import {
  convergeAndSwitch,
  isLive,
  liveCapture,
  softDeleteField,
  captureSummary as summary,
} from './live-switch.js';
import { acquireLock, heldByLiveProcess, type Lock } from './lock.js';
import { drainedRollback, keepOldIndexInSync, requestHandover, revertWindowOpen } from './revert.js';
import { type AliasRecord, type MigrationState, newState, StateStore } from './state.js';

export interface StepInfo {
  name: string;
  title: string;
  /** what the step will change, in words an operator can check */
  changes: string[];
  done: boolean;
}

export interface RunOptions {
  reporter?: Reporter;
  signal?: AbortSignal;
  takeOverLock?: boolean;
  /** switch aliases now even when the spec says cutover.mode = manual (the `cutover` command) */
  cutoverNow?: boolean;
  /** override preflight findings that are not about safety */
  force?: boolean;
}

export type RunOutcome = 'cut-over' | 'awaiting-cutover';

export interface Ctx {
  spec: LoadedSpec;
  source: Cluster;
  target: Cluster;
  store: StateStore;
  state: MigrationState;
  audit: AuditLog;
  reporter: Reporter;
  signal?: AbortSignal;
  transform: TransformFn;
  body?: TargetBody;
  cutoverNow: boolean;
  force?: boolean;
  /** seqno/timestamp capture, created on first use */
  live?: LiveCapture;
}

interface Step {
  name: string;
  title: string;
  done(s: MigrationState): boolean;
  changes(c: Omit<Ctx, 'transform'>): string[];
  run(c: Ctx): Promise<'continue' | 'pause'>;
}

const sampleIndexOf = (target: string) => `${target}-cutover-sample`;

/** What the clusters look like before anything changes; read-only, shared by `plan` and the inspect step. */
export interface Facts {
  sourceIndex: string;
  shards: number;
  docs: number;
  aliases: AliasRecord[];
  targetReused: boolean;
  source: string;
  target: string;
  findings: Finding[];
  /** lifecycle settings of the source, put on the target only after cutover */
  parkedSettings: Record<string, unknown>;
}

async function inspect(
  c: Pick<Ctx, 'spec' | 'source' | 'target'> & { transform?: TransformFn; force?: boolean; sample?: boolean },
): Promise<Facts> {
  const aliasNames = [
    ...(c.spec.aliases?.read ?? []),
    ...(c.spec.aliases?.write ? [c.spec.aliases.write] : []),
  ];
  // Privileges first: a user who may not read the metadata would otherwise meet a bare 403 below.
  const priv = await privileges({
    source: c.source,
    sourceIndex: c.spec.source.index,
    targetIndex: c.spec.target.index,
    aliases: aliasNames.map((alias) => ({ alias })),
  });
  if (blocking(priv, false).length)
    throw new PreflightError(`preflight refused, nothing was changed:\n${formatFindings(priv)}`);
  const sourceIndex = await resolveIndex(c.source, c.spec.source.index, 'source.index');
  const aliases = await inspectAliases(c.source, aliasNames, sourceIndex);
  if (sourceIndex === c.spec.target.index)
    throw new PreflightError(`target.index: "${c.spec.target.index}" is the source index itself`);
  const caps = await c.source.capabilities();
  if (!caps.seqNoPrimaryTerm) {
    throw new PreflightError(
      `source: ${caps.distribution} ${caps.version} does not return _seq_no on hits; cutover needs it for versioned copies`,
    );
  }
  const targetCaps = await c.target.capabilities();
  const body = await desiredTargetBody(c.source, sourceIndex, c.spec);
  let targetReused = false;
  if (await c.target.indexExists(c.spec.target.index)) {
    if (!c.spec.target.reuse) {
      throw new PreflightError(
        `target.index: "${c.spec.target.index}" already exists on ${c.target.displayUrl}; pick another name, delete it, or set target.reuse (--reuse-target) if its mappings match`,
      );
    }
    const existing = Object.values(await c.target.getMapping(c.spec.target.index))[0]?.mappings ?? {};
    if (canonical(existing) !== canonical(body.mappings)) {
      throw new PreflightError(
        `target.reuse: "${c.spec.target.index}" exists but its mappings differ from the spec's at ${firstDifference(existing, body.mappings)}`,
      );
    }
    targetReused = true;
  }
  const sourceMappings = Object.values(await c.source.getMapping(sourceIndex))[0]?.mappings ?? {};
  if (c.spec.capture.strategy === 'append-only') {
    const write = c.spec.aliases?.write;
    if (!write)
      throw new PreflightError(
        'capture.strategy append-only: aliases.write is required (the write alias moves to the target first)',
      );
    if (c.spec.aliases?.read.includes(write)) {
      throw new PreflightError(
        `capture.strategy append-only: the write alias "${write}" is also a read alias; reads must stay on the source until the backfill is done, so they need an alias of their own`,
      );
    }
  }
  if (isLive(c.spec) && !c.spec.aliases?.write) {
    throw new PreflightError(
      `capture.strategy ${c.spec.capture.strategy}: aliases.write is required (the application's writes must move to the target in the same atomic request that ends the freeze)`,
    );
  }
  if (c.spec.capture.strategy === 'timestamp' && c.spec.capture.timestamp) {
    const ts = c.spec.capture.timestamp;
    const type = fieldType(sourceMappings, ts.field);
    if (type !== 'date' && type !== 'date_nanos')
      throw new PreflightError(
        `capture.timestamp.field: "${ts.field}" is ${type ? `a ${type} field` : 'not in the mapping'} of ${sourceIndex}; it must be a date the application sets on every write`,
      );
    if (ts.softDeleteField && fieldType(sourceMappings, ts.softDeleteField) !== 'boolean')
      throw new PreflightError(
        `capture.timestamp.softDeleteField: "${ts.softDeleteField}" must be a boolean field of ${sourceIndex} (got ${fieldType(sourceMappings, ts.softDeleteField) ?? 'no such field'})`,
      );
  }
  const flatSettings = Object.values(await c.source.getSettings(sourceIndex))[0]?.settings ?? {};
  if (isLive(c.spec) && String(flatSettings['index.blocks.write']) === 'true') {
    throw new PreflightError(
      `capture.strategy ${c.spec.capture.strategy}: ${sourceIndex} is already write-blocked (index.blocks.write); nothing can change it, so use capture.strategy none`,
    );
  }
  const findings: Finding[] = [
    ...priv,
    ...lifecycleFindings(await explainLifecycle(c.source, sourceIndex), sourceIndex),
    ...(await preflight({
      source: c.source,
      target: c.target,
      sourceIndex,
      targetIndex: c.spec.target.index,
      aliases,
      sourceMappings,
      targetBody: body,
    })),
  ];
  if (c.sample && c.transform && c.spec.copy.sampleSize > 0 && !targetReused) {
    const r = await sampleDryRun(
      c.source,
      c.target,
      sourceIndex,
      sampleIndexOf(c.spec.target.index),
      body,
      c.transform,
      c.spec.copy.sampleSize,
    );
    findings.push(sampleFinding(r));
  }
  if (c.spec.capture.strategy === 'append-only')
    findings.push(await appendOnlyFinding(c.source, sourceIndex, c.spec.capture.force));
  const blocks = blocking(findings, !!c.force);
  if (blocks.length) {
    throw new PreflightError(
      `preflight refused, nothing was changed:\n${formatFindings(blocks)}${blocks.some((b) => !b.safety) ? '\n(--force overrides the findings that are not about safety)' : ''}`,
    );
  }
  return {
    sourceIndex,
    shards: await c.source.primaryShards(sourceIndex),
    docs: await c.source.count(sourceIndex),
    aliases,
    targetReused,
    source: `${caps.distribution} ${caps.version}`,
    target: `${targetCaps.distribution} ${targetCaps.version}`,
    findings,
    parkedSettings: lifecycleSettings(flatSettings),
  };
}

/**
 * An index that was only ever appended to has, on every shard, exactly one live document per operation:
 * max_seq_no + 1 = the shard's document count. Any update, delete or failed operation breaks the equality.
 */
async function appendOnlyFinding(source: Cluster, index: string, forced: boolean): Promise<Finding> {
  const shards = await source.shardSeqNos(index);
  const touched: string[] = [];
  for (const [n, s] of shards.entries()) {
    const res = await source.search(
      index,
      { size: 0, track_total_hits: true },
      { preference: `_shards:${n}` },
    );
    const live = typeof res.hits.total === 'number' ? res.hits.total : (res.hits.total?.value ?? 0);
    if (s.maxSeqNo + 1 !== live)
      touched.push(`shard ${n}: ${s.maxSeqNo + 1} operations for ${live} documents`);
  }
  if (touched.length === 0)
    return {
      check: 'capture.append-only',
      severity: 'ok',
      message: `${index} was only ever appended to (one operation per document on every shard)`,
    };
  return {
    check: 'capture.append-only',
    severity: forced ? 'warn' : 'block',
    message: `${index} shows updated or deleted documents (${touched.join('; ')}): with append-only capture an update or delete made during the backfill would be lost or undone`,
    action: forced
      ? 'forced by capture.force'
      : 'use the default capture (pause writers) or set capture.force if these were one-off repairs',
  };
}

function sampleFinding(r: SampleResult): Finding {
  if (r.rejected.length === 0)
    return {
      check: 'sample',
      severity: 'ok',
      message: `sample of ${r.sampled} documents indexes cleanly into the target mapping`,
    };
  const lines = r.rejected.slice(0, 10).map((d) => `id ${JSON.stringify(d.id)}: ${d.type}: ${d.reason}`);
  return {
    check: 'sample',
    severity: 'block',
    message: `the target mapping rejects ${r.rejected.length} of ${r.sampled} sampled documents:\n        ${lines.join('\n        ')}`,
    action:
      'fix target.mappings/mappingOverrides or the transform (these documents would become dead letters)',
  };
}

const STEPS: Step[] = [
  {
    name: 'inspect',
    title: 'Inspect source, aliases and target',
    done: (s) => !!s.completed.inspect,
    changes: () => [
      'nothing: reads the source index, its aliases and shard count; checks the target name is free',
    ],
    async run(c) {
      const f = await inspect({ ...c, sample: false });
      if (f.targetReused) c.state.createdTarget = false;
      c.state.sourceIndex = f.sourceIndex;
      c.state.sourceShards = f.shards;
      c.state.parkedSettings = f.parkedSettings;
      const records = f.aliases;
      c.state.aliases = { records, write: c.spec.aliases?.write };
      c.audit.record({
        event: 'inspected',
        sourceIndex: f.sourceIndex,
        shards: c.state.sourceShards,
        aliases: records.map((r) => r.alias),
      });
      return 'continue';
    },
  },
  {
    name: 'sample',
    title: 'Dry run: index a sample into a scratch index with the target mapping',
    done: (s) => !!s.completed.sample,
    changes: (c) =>
      c.spec.copy.sampleSize === 0
        ? ['skipped (copy.sampleSize = 0)']
        : [
            `creates scratch index ${sampleIndexOf(c.spec.target.index)}, indexes ${c.spec.copy.sampleSize} transformed source documents, deletes it`,
          ],
    async run(c) {
      if (c.spec.copy.sampleSize === 0 || c.state.createdTarget === false) return 'continue';
      c.body ??= await desiredTargetBody(c.source, c.state.sourceIndex!, c.spec);
      const r = await sampleDryRun(
        c.source,
        c.target,
        c.state.sourceIndex!,
        sampleIndexOf(c.spec.target.index),
        c.body,
        c.transform,
        c.spec.copy.sampleSize,
      );
      c.audit.record({ event: 'sampled', sampled: r.sampled, rejected: r.rejected.length });
      if (r.rejected.length > 0) {
        const lines = r.rejected
          .slice(0, 10)
          .map((d) => `  id ${JSON.stringify(d.id)}: ${d.type}: ${d.reason}`);
        throw new PreflightError(
          `the target mapping rejects ${r.rejected.length} of ${r.sampled} sampled documents; nothing was changed:\n${lines.join('\n')}\nfix target.mappings/mappingOverrides or the transform`,
        );
      }
      c.reporter.info(`sample of ${r.sampled} documents indexes cleanly into the target mapping`);
      return 'continue';
    },
  },
  {
    name: 'create-target',
    title: 'Create the target index',
    done: (s) => !!s.completed['create-target'],
    changes: (c) =>
      c.spec.target.reuse
        ? [`reuses ${c.spec.target.index} if it exists with matching mappings`]
        : [
            `creates index ${c.spec.target.index} on ${c.target.displayUrl} with the target mappings and settings`,
          ],
    async run(c) {
      if (c.state.createdTarget === false) return 'continue';
      c.body ??= await desiredTargetBody(c.source, c.state.sourceIndex!, c.spec);
      if (await c.target.indexExists(c.spec.target.index)) {
        // Only reachable after a crash between the create and the state write: it is ours if the mappings match.
        const existing = Object.values(await c.target.getMapping(c.spec.target.index))[0]?.mappings ?? {};
        if (canonical(existing) !== canonical(c.body.mappings))
          throw new PreflightError(
            `target.index: "${c.spec.target.index}" appeared with other mappings (${firstDifference(existing, c.body.mappings)})`,
          );
      } else {
        await c.target.createIndex(c.spec.target.index, c.body);
        failpoint('target.after-create');
      }
      c.state.createdTarget = true;
      c.audit.record({ event: 'target-created', index: c.spec.target.index });
      return 'continue';
    },
  },
  {
    name: 'tune-target',
    title: 'Set copy-time settings on the target (recording the originals first)',
    done: (s) => !!s.temporarySettingsApplied || !!s.completed.copy,
    changes: (c) => [
      `sets ${Object.entries(copySettingsFor(c.spec.capture.strategy))
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')} on ${c.spec.target.index}; the original values are restored after the copy`,
    ],
    async run(c) {
      // Originals are read once and persisted before anything changes, so a resume never mistakes the
      // temporary values for the originals.
      if (!c.state.originalSettings) {
        c.state.originalSettings = await readTemporaryKeys(c.target, c.spec.target.index);
        c.store.save(c.state);
      }
      await applySettings(c.target, c.spec.target.index, copySettingsFor(c.spec.capture.strategy));
      failpoint('target.after-temporary-settings');
      c.state.temporarySettingsApplied = true;
      c.audit.record({
        event: 'temporary-settings-applied',
        original: c.state.originalSettings,
        temporary: copySettingsFor(c.spec.capture.strategy),
      });
      return 'continue';
    },
  },
  {
    name: 'move-write-alias',
    title: 'Append-only: move the write alias to the target before the backfill',
    done: (s) => !!s.completed['move-write-alias'],
    changes: (c) =>
      c.spec.capture.strategy !== 'append-only'
        ? ['skipped (capture.strategy is not append-only)']
        : [
            `one _aliases request: ${c.spec.aliases?.write} moves to ${c.spec.target.index}; new documents land there from now on, with no write freeze`,
            'reads stay on the source until the backfill is done, so they do not see documents written from now on until the switch',
          ],
    async run(c) {
      if (c.spec.capture.strategy !== 'append-only') return 'continue';
      const write = (c.state.aliases?.records ?? []).filter((r) => r.alias === c.spec.aliases?.write);
      const r = await moveAliases(c.source, write, c.state.sourceIndex!, c.spec.target.index);
      c.audit.record({ event: 'write-alias-moved', alias: c.spec.aliases?.write, result: r });
      return 'continue';
    },
  },
  {
    name: 'start-capture',
    title: 'Live capture: record where catch-up starts, before the copy opens its point in time',
    done: (s) => !!s.completed['start-capture'],
    changes: (c) =>
      !isLive(c.spec)
        ? ['skipped (capture.strategy is not seqno or timestamp)']
        : [
            "nothing: records each source shard's checkpoint; every change above it is applied by the catch-up rounds, in parallel with the copy and after it",
          ],
    async run(c) {
      if (!isLive(c.spec)) return 'continue';
      await liveCapture(c).start();
      c.audit.record({ event: 'capture-started', cursors: liveCapture(c).snapshot.cursors });
      return 'continue';
    },
  },
  {
    name: 'copy',
    title: 'Copy every document (PIT slices, versioned bulk writes, checkpoints)',
    done: (s) => !!s.completed.copy,
    changes: (c) => [
      `writes every document of ${c.spec.source.index} into ${c.spec.target.index} with version_type=external, version = ${c.spec.copy.versioning === 'seqno' ? 'source _seq_no + 1' : 'source _version'}`,
      `${c.spec.copy.concurrency} slice(s) at a time, ${c.spec.copy.batchDocs} docs / ${c.spec.copy.batchBytes} bytes per bulk${c.spec.copy.maxDocsPerSecond ? `, at most ${c.spec.copy.maxDocsPerSecond} docs/s` : ''}`,
      ...(isLive(c.spec) && c.spec.capture.copyYields
        ? [
            `live changes first: the copy waits while catch-up is more than ${c.spec.capture.maxLagSeconds / 2} s behind (capture.copyYields), so it slows down while the application writes a lot`,
          ]
        : []),
    ],
    async run(c) {
      const sourceIndex = c.state.sourceIndex!;
      const slices = c.state.sourceShards!;
      await c.source.refresh(sourceIndex).catch(() => undefined);
      const sourceDocs = await c.source.count(sourceIndex);
      const before = totalsOf(loadCheckpoints(c.store, slices), sourceDocs);
      c.state.copyStartedAt ??= new Date().toISOString();
      c.store.save(c.state);
      c.reporter.copyStarted(
        sourceDocs,
        before.copied + before.conflicts + before.dropped + before.deadLetters,
      );
      // Live capture: catch-up rounds run beside the backfill so the lag never grows with the index size.
      let copying = true;
      const background = isLive(c.spec)
        ? liveCapture(c)
            .background(() => !copying)
            .then(
              () => undefined,
              (e: unknown) => e,
            )
        : Promise.resolve(undefined);
      try {
        const cps = await backfill({
          source: c.source,
          target: c.target,
          sourceIndex,
          targetIndex: c.spec.target.index,
          slices,
          batchDocs: c.spec.copy.batchDocs,
          batchBytes: c.spec.copy.batchBytes,
          concurrency: c.spec.copy.concurrency,
          maxDocsPerSecond: c.spec.copy.maxDocsPerSecond,
          keepAlive: c.spec.copy.keepAlive,
          versioning: c.spec.copy.versioning,
          gzip: c.spec.copy.gzip,
          createOnly: c.spec.capture.strategy === 'append-only',
          softDeleteField: softDeleteField(c.spec),
          // Live capture: counts under the freeze need to know which documents were left off on purpose.
          onDropped: isLive(c.spec) ? (ids) => liveCapture(c).noteDropped(ids) : undefined,
          // Live changes first: the backfill waits while the catch-up rounds are behind.
          yieldTo: isLive(c.spec) ? (signal) => liveCapture(c).yieldWhileBehind(signal) : undefined,
          transform: c.transform,
          store: c.store,
          deadLetters: new FileDeadLetters(c.store.deadLetterPath),
          signal: c.signal,
          onProgress: (p) => c.reporter.copyProgress(p),
          onNotice: (m) => c.reporter.warn(m),
        });
        c.state.totals = totalsOf(cps, sourceDocs);
      } finally {
        copying = false;
        c.reporter.copyFinished();
        // A backfill error wins; the catch-up loop stops at its next check either way.
        await background;
      }
      const failed = await background;
      if (failed) throw failed;
      const held = isLive(c.spec) ? liveCapture(c).snapshot : undefined;
      if (held?.heldBackMs)
        c.reporter.info(
          `the copy waited ${(held.heldBackMs / 1000).toFixed(1)} s in ${held.heldBack} pause(s) while catch-up was more than ${c.spec.capture.maxLagSeconds / 2} s behind (capture.copyYields)`,
        );
      c.state.copyFinishedAt = new Date().toISOString();
      c.audit.record({ event: 'copied', totals: c.state.totals });
      return 'continue';
    },
  },
  {
    name: 'catch-up',
    title: 'Live capture: apply deletes found by id reconcile, catch up until the lag is small',
    done: (s) => !!s.completed['catch-up'],
    changes: (c) =>
      !isLive(c.spec)
        ? ['skipped (capture.strategy is not seqno or timestamp)']
        : [
            `versioned deletes on ${c.spec.target.index} for ids the source no longer has (tombstone version = max_seq_no + 1 of the id's source shard)`,
            `catch-up rounds until the lag (time from a round's checkpoint read to the end of the next round) is under ${c.spec.capture.maxLagSeconds} s`,
          ],
    async run(c) {
      if (!isLive(c.spec)) return 'continue';
      const live = liveCapture(c);
      // The id scan takes a while on a large index: rounds keep going beside it so the lag does not pile up
      // (versions make the two safe to race: a tombstone is never above a later re-creation).
      let reconciling = true;
      const rounds = live
        .background(() => !reconciling)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      let r: Awaited<ReturnType<typeof live.reconcile>>;
      try {
        r = await live.reconcile(undefined, undefined, { giveWay: true });
      } finally {
        reconciling = false;
        await rounds;
      }
      const roundsFailed = await rounds;
      if (roundsFailed) throw roundsFailed;
      c.reporter.info(
        `reconcile: ${r.checked} target ids checked, ${r.missingOnSource} deleted on the source since the copy read them`,
      );
      let lastNote = 0;
      for (;;) {
        c.signal?.throwIfAborted();
        const round = await live.round();
        if (round.lagMs <= c.spec.capture.maxLagSeconds * 1000) {
          c.reporter.info(`caught up: last round applied ${round.read} change(s); lag ${round.lagMs} ms`);
          break;
        }
        if (Date.now() - lastNote > 10_000) {
          c.reporter.info(
            `catching up: last round applied ${round.read} change(s); lag ${round.lagMs} ms (target: under ${c.spec.capture.maxLagSeconds} s)`,
          );
          lastNote = Date.now();
        }
      }
      c.audit.record({ event: 'caught-up', capture: summary(live) });
      return 'continue';
    },
  },
  {
    name: 'restore-target',
    title: 'Restore the target settings recorded before the copy',
    done: (s) => !!s.completed.copy && !s.temporarySettingsApplied,
    changes: (c) => [
      isLive(c.spec)
        ? 'puts back the recorded number_of_replicas and refresh_interval of the target; gc_deletes goes back after the switch (tombstones must outlive the catch-up)'
        : 'puts back the recorded number_of_replicas, refresh_interval and gc_deletes of the target',
    ],
    async run(c) {
      await restoreTargetSettings(c, isLive(c.spec));
      return 'continue';
    },
  },
  {
    name: 'gate',
    title: 'Gate: dead letters within budget, counts equal after refresh',
    done: (s) => !!s.completed.gate,
    changes: () => [
      'nothing: refreshes both indices and compares _count (source - dropped - dead letters = target)',
    ],
    async run(c) {
      const t = c.state.totals!;
      const deadLetters = t.deadLetters + (isLive(c.spec) ? liveCapture(c).snapshot.deadLetters : 0);
      if (deadLetters > c.spec.copy.maxDeadLetters) {
        throw new GateError(
          `cutover refused: ${deadLetters} document(s) were rejected by the target (allowed: ${c.spec.copy.maxDeadLetters}); see ${c.store.deadLetterPath}. Fix the mapping or transform and re-copy, or raise copy.maxDeadLetters if this loss is acceptable`,
        );
      }
      if (isLive(c.spec)) {
        // The source keeps changing: counts can only be compared while it is frozen, right before the switch.
        c.reporter.info('dead letters within budget; the count gate runs under the write freeze');
        return 'continue';
      }
      await c.source.refresh(c.state.sourceIndex!);
      await c.target.refresh(c.spec.target.index);
      const source = await c.source.count(c.state.sourceIndex!);
      const target = await c.target.count(c.spec.target.index);
      const expectedTarget = source - t.dropped - t.deadLetters;
      c.state.countGate = { source, target, expectedTarget, at: new Date().toISOString() };
      c.audit.record({ event: 'count-gate', ...c.state.countGate });
      // Append-only: the application writes to the target during the backfill, so it holds at least that many.
      const appendOnly = c.spec.capture.strategy === 'append-only';
      if (appendOnly ? target < expectedTarget : target !== expectedTarget) {
        throw new GateError(
          `cutover refused: target has ${target} documents, expected ${expectedTarget} (source ${source} - dropped ${t.dropped} - dead letters ${t.deadLetters}). Nothing was switched. Either the source was written to during the copy (live writes need a capture strategy) or documents are missing: compare the indices before retrying`,
        );
      }
      c.reporter.info(`count gate passed: ${target} documents on the target`);
      return 'continue';
    },
  },
  {
    name: 'verify',
    title: 'Proof: compare source and target document by document',
    done: (s) => !!s.completed.verify,
    changes: (c) =>
      c.spec.verify.mode === 'off'
        ? ['skipped (verify.mode = off): only the count gate stands between the copy and the switch']
        : [
            `nothing: reads ${c.spec.verify.mode === 'full' ? 'every document' : `${(c.spec.verify.sampleRate * 100).toFixed(2)}% of the documents`} on both sides and compares transformed source _source with target _source${c.spec.verify.ignore.length ? ` (ignoring ${c.spec.verify.ignore.join(', ')})` : ''}; refuses cutover above ${c.spec.verify.maxDifferences} difference(s)`,
          ],
    async run(c) {
      if (c.spec.verify.mode === 'off') return 'continue';
      const r = await runProof(c, isLive(c.spec) ? liveCapture(c) : undefined);
      c.audit.record({
        event: 'proof',
        passed: r.passed,
        missing: r.missing,
        extra: r.extra,
        changed: r.changed,
        mode: r.mode,
      });
      const diffs = r.missing + r.extra + r.changed;
      if (diffs > c.spec.verify.maxDifferences) {
        throw new GateError(
          `cutover refused: the proof found ${diffs} difference(s) (missing ${r.missing}, extra ${r.extra}, changed ${r.changed}; allowed ${c.spec.verify.maxDifferences}); first: ${r.differences
            .slice(0, 5)
            .map((d) => `${d.kind} ${JSON.stringify(d.id)}${d.fields ? ` [${d.fields.join(', ')}]` : ''}`)
            .join('; ')}. Full report: ${c.store.proofPath}`,
        );
      }
      c.reporter.info(`proof passed: ${r.confidence}`);
      return 'continue';
    },
  },
  {
    name: 'switch-aliases',
    title: 'Switch the aliases to the target in one atomic request',
    done: (s) => !!s.completed['switch-aliases'],
    changes: (c) => {
      const names = [
        ...new Set([
          ...(c.spec.aliases?.read ?? []),
          ...(c.spec.aliases?.write ? [c.spec.aliases.write] : []),
        ]),
      ];
      const manual = c.spec.cutover.mode === 'manual' ? ' (waits for `cutover cutover`)' : '';
      return names.length === 0
        ? ['no aliases in the spec: nothing to switch']
        : [
            `one _aliases request: remove ${names.join(', ')} from the source, add them to ${c.spec.target.index}${manual}`,
          ];
    },
    async run(c) {
      if (c.spec.cutover.mode === 'manual' && !c.cutoverNow) {
        c.state.phase = 'awaiting-cutover';
        c.reporter.info('copy verified; waiting for `cutover cutover <spec>` to switch the aliases');
        return 'pause';
      }
      if (c.cutoverNow && c.spec.verify.mode !== 'off') {
        // Time has passed since the copy was proven: prove it again right before the switch.
        const p = await runProof(c, isLive(c.spec) ? liveCapture(c) : undefined);
        const diffs = p.missing + p.extra + p.changed;
        c.audit.record({
          event: 'proof',
          passed: p.passed,
          missing: p.missing,
          extra: p.extra,
          changed: p.changed,
          mode: p.mode,
          beforeSwitch: true,
        });
        if (diffs > c.spec.verify.maxDifferences) {
          throw new GateError(
            `cutover refused: the proof before the switch found ${diffs} difference(s) (missing ${p.missing}, extra ${p.extra}, changed ${p.changed}); first: ${p.differences
              .slice(0, 5)
              .map((d) => `${d.kind} ${JSON.stringify(d.id)}`)
              .join('; ')}. Full report: ${c.store.proofPath}`,
          );
        }
      }
      const r = isLive(c.spec)
        ? await convergeAndSwitch(c)
        : await moveAliases(
            c.source,
            c.state.aliases?.records ?? [],
            c.state.sourceIndex!,
            c.spec.target.index,
          );
      // Tombstones were kept through the switch; nothing can resurrect a document on the target any more.
      await restoreTargetSettings(c);
      if (Object.keys(c.state.parkedSettings ?? {}).length) {
        // Lifecycle policy back on, now that the target is the index the aliases (and a rollover alias) name.
        await c.target.putSettings(c.spec.target.index, c.state.parkedSettings!);
        c.audit.record({ event: 'lifecycle-settings-applied', settings: c.state.parkedSettings });
      }
      const now = new Date();
      c.state.cutoverAt = now.toISOString();
      c.state.retainUntil = new Date(now.getTime() + c.spec.cutover.retentionHours * 3_600_000).toISOString();
      // Also after a crash between the alias request and this step's end ('already'): the cursors were saved.
      if (isLive(c.spec) && c.spec.cutover.revertWindowMinutes > 0 && c.state.revertCursors)
        c.state.revertUntil ??= new Date(
          now.getTime() + c.spec.cutover.revertWindowMinutes * 60_000,
        ).toISOString();
      c.audit.record({
        event: 'aliases-switched',
        result: r,
        to: c.spec.target.index,
        retainUntil: c.state.retainUntil,
      });
      c.state.phase = 'cut-over';
      return 'continue';
    },
  },
  {
    name: 'revert-window',
    title: "Revert window: copy the new index's changes back to the old one until the window closes",
    done: (s) => !!s.completed['revert-window'],
    changes: (c) =>
      !isLive(c.spec) || c.spec.cutover.revertWindowMinutes === 0
        ? [
            'skipped (cutover.revertWindowMinutes = 0): a rollback after the switch does not bring back writes made since',
          ]
        : [
            `for ${c.spec.cutover.revertWindowMinutes} min after the switch: tails ${c.spec.target.index} by _seq_no and writes its changes into the old index (versions offset by 2^52); \`cutover rollback\` inside the window drains it under a short freeze and loses no write`,
          ],
    async run(c) {
      if (!revertWindowOpen(c)) return 'continue';
      return (await keepOldIndexInSync(c)) === 'handover' ? 'pause' : 'continue';
    },
  },
];

/** The proof expects soft-deleted documents to be absent from the target, as the copy makes them. */
function withSoftDeletes(t: TransformFn, field: string | undefined): TransformFn {
  if (!field) return t;
  return (doc, meta) => (doc[field] === true ? null : t(doc, meta));
}

function fieldType(mappings: Record<string, unknown>, path: string): string | undefined {
  let node: unknown = mappings;
  for (const part of path.split('.')) {
    const props = (node as { properties?: Record<string, unknown> } | undefined)?.properties;
    if (!props || !(part in props)) return undefined;
    node = props[part];
  }
  return (node as { type?: string }).type ?? 'object';
}

/** Field paths of a mapping, for checking verify.ignore against what exists. */
function mappingHasPath(mappings: Record<string, unknown>, path: string): boolean {
  let node: unknown = mappings;
  for (const part of path.split('.')) {
    const props = (
      node as { properties?: Record<string, unknown>; fields?: Record<string, unknown> } | undefined
    )?.properties;
    if (!props || !(part in props)) return false;
    node = props[part];
  }
  return true;
}

/**
 * Copy-time settings. With append-only capture the application writes to the target during the copy, so its
 * replicas stay: those writes are acknowledged to users and must not live on a single copy.
 */
function copySettingsFor(strategy: string): Record<string, string> {
  if (strategy !== 'append-only') return COPY_SETTINGS;
  const { 'index.number_of_replicas': _replicas, ...rest } = COPY_SETTINGS;
  return rest;
}

interface ProofWatermarks {
  at: string;
  passed: boolean;
  settingsKey: string;
  source: number[];
  target: number[];
}

/** A proof is only reusable under the same comparison rules: ignore list, sample rate and transform code. */
function proofSettingsKey(c: Pick<Ctx, 'spec'>): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify([c.spec.verify.mode, c.spec.verify.sampleRate, c.spec.verify.ignore, c.spec.target.index]),
  );
  if (c.spec.transformPath) h.update(readFileSync(c.spec.transformPath));
  return h.digest('hex');
}

/** `live`: catch-up rounds (and id scans) keep running beside the proof; absent for `cutover verify`. */
async function runProof(
  c: Pick<Ctx, 'spec' | 'source' | 'target' | 'store' | 'state' | 'transform' | 'reporter' | 'signal'>,
  live?: LiveCapture,
): Promise<ProofReport> {
  const sourceIndex = c.state.sourceIndex!;
  const mappings = Object.values(await c.target.getMapping(c.spec.target.index))[0]?.mappings ?? {};
  const unknown = c.spec.verify.ignore.filter((p) => !mappingHasPath(mappings, p));
  if (unknown.length) {
    throw new PreflightError(
      `verify.ignore: ${unknown.map((p) => JSON.stringify(p)).join(', ')} not in the mapping of ${c.spec.target.index}; a typo here would silently hide differences`,
    );
  }
  await Promise.all([c.source.refresh(sourceIndex), c.target.refresh(c.spec.target.index)]);
  const knownMissing = new Set<string>();
  if ((c.state.totals?.deadLetters ?? 0) > 0 && existsSync(c.store.deadLetterPath)) {
    // Bounded: the dead-letter gate already refused more than copy.maxDeadLetters.
    for (const line of readFileSync(c.store.deadLetterPath, 'utf8').split('\n'))
      if (line) knownMissing.add((JSON.parse(line) as { id: string }).id);
  }
  // Watermarks: a shard whose max_seq_no has not moved since a passed proof holds the same documents, so a
  // repeated proof re-reads only the shards that changed (and the target only if anything changed).
  const [sourceMarks, targetMarks] = await Promise.all([
    c.source.shardSeqNos(sourceIndex),
    c.target.shardSeqNos(c.spec.target.index),
  ]);
  const settingsKey = proofSettingsKey(c);
  const previous = readJson<ProofWatermarks>(c.store.proofWatermarksPath);
  let sourceSlices: number[] | undefined;
  let skipTargetPass = false;
  if (
    previous?.passed &&
    previous.settingsKey === settingsKey &&
    previous.source.length === sourceMarks.length &&
    JSON.stringify(previous.target) === JSON.stringify(targetMarks.map((m) => m.maxSeqNo))
  ) {
    sourceSlices = sourceMarks.flatMap((m, i) => (m.maxSeqNo === previous.source[i] ? [] : [i]));
    skipTargetPass = sourceSlices.length === 0;
  }
  // Live capture keeps applying source changes while the proof reads, so a candidate difference that is only
  // "not caught up yet" resolves on a re-read instead of failing the proof.
  let proving = true;
  const background = live
    ? live
        .background(() => !proving, true)
        .then(
          () => undefined,
          (e: unknown) => e,
        )
    : Promise.resolve(undefined);
  const r = await prove({
    recheckAttempts: live ? 12 : undefined,
    recheckDelayMs: live ? 1000 : undefined,
    deferRechecks: !!live,
    source: c.source,
    target: c.target,
    sourceIndex,
    targetIndex: c.spec.target.index,
    transform: withSoftDeletes(c.transform, softDeleteField(c.spec)),
    ignore: c.spec.verify.ignore,
    sampleRate: c.spec.verify.mode === 'full' ? 1 : c.spec.verify.sampleRate,
    batchDocs: c.spec.copy.batchDocs,
    keepAlive: c.spec.copy.keepAlive,
    concurrency: c.spec.copy.concurrency,
    knownMissing,
    signal: c.signal,
    sourceSlices,
    // Append-only: documents on the target that the source lacks are the application's new writes.
    skipTargetPass: skipTargetPass || c.spec.capture.strategy === 'append-only',
  }).finally(() => {
    proving = false;
  });
  const failed = await background;
  if (failed) throw failed;
  if (sourceSlices) {
    r.confidence +=
      sourceSlices.length === 0
        ? `; nothing changed since the proof of ${previous!.at}: no slice re-read`
        : `; only source slice(s) ${sourceSlices.join(', ')} changed since the proof of ${previous!.at} and were re-read`;
  }
  writeJsonAtomic(c.store.proofWatermarksPath, {
    at: new Date().toISOString(),
    passed: r.passed,
    settingsKey,
    source: sourceMarks.map((m) => m.maxSeqNo),
    target: targetMarks.map((m) => m.maxSeqNo),
  } satisfies ProofWatermarks);
  writeJsonAtomic(c.store.proofPath, r);
  return r;
}

export async function restoreTargetSettings(
  c: Pick<Ctx, 'state' | 'target' | 'spec' | 'audit' | 'store'>,
  keepGcDeletes = false,
): Promise<void> {
  if (c.state.temporarySettingsApplied && c.state.originalSettings) {
    const { 'index.gc_deletes': _gc, ...rest } = c.state.originalSettings;
    const settings = keepGcDeletes ? rest : c.state.originalSettings;
    await applySettings(c.target, c.spec.target.index, settings);
    c.state.temporarySettingsApplied = false;
    c.state.gcDeletesPending = keepGcDeletes;
    c.store.save(c.state);
    c.audit.record({ event: 'target-settings-restored', settings });
  } else if (!keepGcDeletes && c.state.gcDeletesPending && c.state.originalSettings) {
    const settings = { 'index.gc_deletes': c.state.originalSettings['index.gc_deletes'] };
    await applySettings(c.target, c.spec.target.index, settings);
    c.state.gcDeletesPending = false;
    c.store.save(c.state);
    c.audit.record({ event: 'target-settings-restored', settings });
  }
}

export class Migration {
  readonly store: StateStore;
  readonly audit: AuditLog;
  readonly source: Cluster;
  readonly target: Cluster;

  constructor(readonly spec: LoadedSpec) {
    this.store = new StateStore(spec.migrationDir);
    this.audit = new AuditLog(this.store.auditPath);
    this.source = new Cluster(clusterConfig(spec.source.cluster, 'source.cluster'));
    this.target = spec.target.cluster
      ? new Cluster(clusterConfig(spec.target.cluster, 'target.cluster'))
      : this.source;
  }

  state(): MigrationState {
    return this.store.load() ?? newState(this.spec.name, this.spec.target.index);
  }

  /**
   * The runbook with what each step changes. Reads the clusters (a plan that cannot see the source is no plan)
   * and refuses bad input exactly as `run` would; writes nothing.
   */
  async plan(opts: { force?: boolean } = {}): Promise<{ facts?: Facts; steps: StepInfo[] }> {
    const state = this.state();
    const transform = await loadTransform(this.spec.transformPath);
    const facts = state.completed.inspect
      ? undefined
      : await inspect({
          spec: this.spec,
          source: this.source,
          target: this.target,
          transform,
          sample: true,
          force: opts.force,
        });
    const c = this.context(state, transform, {});
    return {
      facts,
      steps: STEPS.map((s) => ({ name: s.name, title: s.title, changes: s.changes(c), done: s.done(state) })),
    };
  }

  private context(state: MigrationState, transform: TransformFn, opts: RunOptions): Ctx {
    return {
      spec: this.spec,
      source: this.source,
      target: this.target,
      store: this.store,
      state,
      audit: this.audit,
      reporter: opts.reporter ?? silentReporter,
      signal: opts.signal,
      transform,
      cutoverNow: !!opts.cutoverNow,
      force: opts.force,
    };
  }

  private lock(command: string, opts: RunOptions): Lock {
    const lock = acquireLock(this.store.lockPath, command, { takeOverStale: opts.takeOverLock });
    if (lock.tookOver) {
      (opts.reporter ?? silentReporter).warn(lock.tookOver.message);
      this.audit.record({ event: 'lock-taken-over', command, from: lock.tookOver.owner });
    }
    return lock;
  }

  /** Execute or resume. Returns when cut over, or when waiting for a manual cutover. */
  async run(opts: RunOptions = {}, command = 'run'): Promise<RunOutcome> {
    // Everything that can fail before the steps (a transform that does not load, an unreadable state file)
    // runs before the lock is taken, so such a failure never leaves a lock behind.
    const transform = await loadTransform(this.spec.transformPath);
    const state = this.state();
    if (state.phase === 'rolled-back' || state.phase === 'cleaned-up') {
      throw new PreflightError(
        `migration ${this.spec.name} was ${state.phase}; start a new one under another name`,
      );
    }
    const lock = this.lock(command, opts);
    const c = this.context(state, transform, opts);
    let current = '';
    try {
      state.phase = state.phase === 'cut-over' ? 'cut-over' : 'running';
      this.audit.record({ event: 'run-started', command, resumed: Object.keys(state.completed).length > 0 });
      await this.liftStaleFreeze(state, c.reporter);
      for (const step of STEPS) {
        if (step.done(state)) continue;
        current = step.name;
        c.reporter.step(step.name, step.title);
        const r = await step.run(c);
        if (r === 'pause') {
          this.store.save(state);
          return (state.phase as string) === 'awaiting-cutover' ? 'awaiting-cutover' : 'cut-over';
        }
        failpoint(`step.${step.name}.before-save`);
        state.completed[step.name] = new Date().toISOString();
        this.store.save(state);
      }
      state.phase = 'cut-over';
      this.store.save(state);
      return 'cut-over';
    } catch (e) {
      state.lastError = {
        at: new Date().toISOString(),
        step: current,
        message: e instanceof Error ? e.message : String(e),
      };
      state.phase = 'failed';
      this.store.save(state);
      // Leave the target as an operator would want it while they investigate: with its own settings back.
      await restoreTargetSettings(c).catch((err) =>
        c.reporter.warn(
          `could not restore target settings: ${(err as Error).message}; the next run restores them`,
        ),
      );
      this.audit.record({ event: 'run-failed', step: current, error: state.lastError.message });
      throw e;
    } finally {
      lock.release();
    }
  }

  /** A run killed inside a write freeze left the block on: the application cannot write until it is lifted. */
  private async liftStaleFreeze(state: MigrationState, reporter: Reporter): Promise<void> {
    if (!state.frozen) return;
    const f = state.frozen;
    const cluster = f.side === 'source' ? this.source : this.target;
    await liftWriteBlock(cluster, f.index);
    // The writers were refused from the block until now: that freeze is reported as it really was.
    const started = f.startedAt ? Date.parse(f.startedAt) : Date.now();
    const guard = guardLiftOf(this.audit.path, f.index, f.startedAt);
    const until = guard
      ? `its freeze guard lifted the block at ${guard.at}`
      : 'the block stayed until this run lifted it';
    const [from, to] =
      f.side === 'source'
        ? [state.sourceIndex!, this.spec.target.index]
        : [this.spec.target.index, state.sourceIndex!];
    const where = await aliasPlacement(this.source, state.aliases?.records ?? [], from, to);
    const path = f.side === 'source' ? this.store.capturePath : this.store.revertPath;
    const capture = readJson<CaptureState>(path);
    if (capture) {
      capture.freezes.push({
        attempt: f.attempt ?? capture.freezes.length + 1,
        startedAt: f.startedAt ?? new Date(started).toISOString(),
        durationMs: (guard ? Date.parse(guard.at) : Date.now()) - started,
        switched: (state.aliases?.records.length ?? 0) > 0 && where.placement === 'to',
        reason: `the run was stopped inside the freeze; ${until}`,
        appliedInFreeze: 0,
        deletedInFreeze: 0,
      });
      writeJsonAtomic(path, capture);
    }
    this.audit.record({ event: 'stale-freeze-lifted', index: f.index, frozenSince: f.startedAt });
    reporter.warn(
      `lifted the write block a stopped run left on ${f.index} (in place since ${f.startedAt ?? '?'}; ${until})`,
    );
    state.frozen = undefined;
    this.store.save(state);
  }

  /**
   * Move the aliases back onto the source in one request. The target is kept. Inside the revert window of a live
   * migration the reverse sync is drained first (under a short freeze of the new index), so no write made since
   * the switch is lost; a run still keeping the window open is asked to hand over its lock.
   */
  async rollback(opts: RunOptions = {}): Promise<'aliases-restored' | 'nothing-to-move'> {
    if (
      revertWindowOpen({ spec: this.spec, state: this.state() }) &&
      heldByLiveProcess(this.store.lockPath)
    ) {
      (opts.reporter ?? silentReporter).info(
        'asking the running migration to stop its revert window and hand over',
      );
      await requestHandover({ store: this.store }, () => !heldByLiveProcess(this.store.lockPath));
    }
    const lock = this.lock('rollback', opts);
    try {
      const state = this.state();
      if (!state.sourceIndex)
        throw new PreflightError(`migration ${this.spec.name} has not started: nothing to roll back`);
      await this.liftStaleFreeze(state, opts.reporter ?? silentReporter);
      const records = state.aliases?.records ?? [];
      let result: 'aliases-restored' | 'nothing-to-move' = 'nothing-to-move';
      const where = records.length
        ? await aliasPlacement(this.source, records, state.sourceIndex, this.spec.target.index)
        : undefined;
      if (where?.placement === 'to' && revertWindowOpen({ spec: this.spec, state })) {
        const c = this.context(state, await loadTransform(this.spec.transformPath), opts);
        const f = await drainedRollback(c);
        this.audit.record({ event: 'rollback-drained', freezeMs: f.durationMs });
        result = 'aliases-restored';
      } else if (records.length) {
        if (where?.placement === 'to' && isLive(this.spec) && state.cutoverAt)
          (opts.reporter ?? silentReporter).warn(
            `writes made on ${this.spec.target.index} since the switch at ${state.cutoverAt} are not on ${state.sourceIndex} (no revert window open): readers lose sight of them`,
          );
        const r = await moveAliases(this.source, records, this.spec.target.index, state.sourceIndex);
        if (r === 'moved') result = 'aliases-restored';
      }
      await restoreTargetSettings({
        state,
        target: this.target,
        spec: this.spec,
        audit: this.audit,
        store: this.store,
      });
      state.phase = 'rolled-back';
      state.rolledBackAt = new Date().toISOString();
      this.store.save(state);
      this.audit.record({ event: 'rolled-back', result });
      return result;
    } finally {
      lock.release();
    }
  }

  /** Delete the old (source) index: only after cutover, after the retention window, and when named exactly. */
  async cleanup(confirmIndex: string | undefined, opts: RunOptions = {}, now = new Date()): Promise<string> {
    const lock = this.lock('cleanup', opts);
    try {
      const state = this.state();
      if (state.phase !== 'cut-over' || !state.sourceIndex || !state.retainUntil) {
        throw new PreflightError(
          `cleanup: migration ${this.spec.name} is "${state.phase}", not cut over; nothing is deleted`,
        );
      }
      if (now < new Date(state.retainUntil)) {
        throw new PreflightError(
          `cleanup: the old index ${state.sourceIndex} is retained until ${state.retainUntil} (cutover.retentionHours); rollback stays possible until then`,
        );
      }
      if (confirmIndex !== state.sourceIndex) {
        throw new PreflightError(
          `cleanup deletes index "${state.sourceIndex}": confirm with --confirm-delete ${state.sourceIndex}`,
        );
      }
      const where = await aliasPlacement(
        this.source,
        state.aliases?.records ?? [],
        state.sourceIndex,
        this.spec.target.index,
      );
      if ((state.aliases?.records.length ?? 0) > 0 && where.placement !== 'to') {
        throw new PreflightError(
          `cleanup: aliases do not all point at the target (${where.detail}); refusing to delete ${state.sourceIndex}`,
        );
      }
      await this.source.deleteIndex(state.sourceIndex);
      state.phase = 'cleaned-up';
      this.store.save(state);
      this.audit.record({ event: 'old-index-deleted', index: state.sourceIndex });
      return state.sourceIndex;
    } finally {
      lock.release();
    }
  }

  /** `cutover verify`: the proof on demand, after the copy; changes nothing. */
  async verify(opts: { signal?: AbortSignal; reporter?: Reporter } = {}): Promise<ProofReport> {
    const state = this.state();
    if (!state.completed.copy)
      throw new PreflightError(
        `verify: migration ${this.spec.name} has not finished copying (phase ${state.phase})`,
      );
    const transform = await loadTransform(this.spec.transformPath);
    return runProof({
      spec: this.spec,
      source: this.source,
      target: this.target,
      store: this.store,
      state,
      transform,
      reporter: opts.reporter ?? silentReporter,
      signal: opts.signal,
    });
  }

  async close(): Promise<void> {
    await this.source.close();
    if (this.target !== this.source) await this.target.close();
  }
}
