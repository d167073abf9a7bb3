/**
 * What the clusters look like before anything changes, and whether the migration may start: read-only, shared by
 * `plan` and the runbook's inspect and sample steps, so the plan refuses exactly what `run` would.
 */
import type { CaptureStrategy } from '../capture/strategy.js';
import type { Cluster } from '../cluster/client.js';
import { checkBucket } from '../copy/slice-board.js';
import type { TransformFn } from '../copy/transform.js';
import { inspectAliases, resolveIndex, sameCluster } from '../cutover/aliases.js';
import { canonical, desiredTargetBody, firstDifference, type TargetBody } from '../cutover/target.js';
import type { LoadedSpec } from '../spec/load.js';
import { PreflightError } from '../store/errors.js';
import type { AliasRecord } from '../store/state.js';
import { autoCreateRisk, targetAliasNamesFree, translationFindings, versionGap } from './cross-cluster.js';
import { findDateViolators } from './date-violators.js';
import { explainLifecycle, lifecycleFindings, lifecycleSettings } from './lifecycle.js';
import { fieldType } from './mapping-paths.js';
import { blocking, type Finding, formatFindings, preflight, privileges } from './preflight.js';
import { type SampleResult, sampleDryRun } from './sample.js';
import { targetAccepts } from './target-accepts.js';
import { findViolators, violatorFindings } from './violators.js';

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

export interface InspectInput {
  spec: LoadedSpec;
  source: Cluster;
  target: Cluster;
  strategy: CaptureStrategy;
  transform: TransformFn;
  force?: boolean;
  /** run the sample dry run too (plan does; run has a step of its own for it) */
  sample?: boolean;
  /** copy.workers: the shared copy this migration began, if any (its bucket is its own) */
  state?: { copyId?: string };
}

export const sampleIndexOf = (target: string) => `${target}-cutover-sample`;

/** Every alias name of the spec, once each. */
export function specAliasNames(spec: Pick<LoadedSpec, 'aliases'>): string[] {
  return [...new Set([...(spec.aliases?.read ?? []), ...(spec.aliases?.write ? [spec.aliases.write] : [])])];
}

export async function inspect(c: InspectInput): Promise<Facts> {
  const aliasNames = specAliasNames(c.spec);
  // Privileges first: a user who may not read the metadata would otherwise meet a bare 403 below.
  const priv = await privileges({
    source: c.source,
    ...(sameCluster(c.source, c.target) ? {} : { target: c.target }),
    sourceIndex: c.spec.source.index,
    targetIndex: c.spec.target.index,
    aliases: aliasNames.map((alias) => ({ alias })),
  });
  refuseOn(priv, false);
  const sourceIndex = await resolveIndex(c.source, c.spec.source.index, 'source.index');
  const aliases = await inspectAliases(c.source, aliasNames, sourceIndex);
  if (sourceIndex === c.spec.target.index)
    throw new PreflightError(`target.index: "${c.spec.target.index}" is the source index itself`);
  const caps = await c.source.capabilities();
  if (!caps.seqNoPrimaryTerm)
    throw new PreflightError(
      `source: ${caps.distribution} ${caps.version} does not return _seq_no on hits; cutover needs it for versioned copies`,
    );
  const targetCaps = await c.target.capabilities();
  const body = await desiredTargetBody(c.source, c.target, sourceIndex, c.spec);
  const targetReused = await reusableTarget(c, body);
  const across = !sameCluster(c.source, c.target);
  const sourceMappings = Object.values(await c.source.getMapping(sourceIndex))[0]?.mappings ?? {};
  const settings = Object.values(await c.source.getSettings(sourceIndex))[0]?.settings ?? {};
  const nf = c.spec.copy.order === 'newest-first' ? c.spec.copy.newestFirst : undefined;
  if (nf) {
    const type = fieldType(sourceMappings, nf.field);
    if (type !== 'date' && type !== 'date_nanos')
      throw new PreflightError(
        `copy.newestFirst.field: "${nf.field}" is ${type ? `a ${type} field` : 'not in the mapping'} of ${sourceIndex}; newest-first needs a date (or date_nanos) field to go back in time by`,
      );
  }
  if (c.spec.copy.engine === 'reindex') reindexEngineFits(c.spec, targetCaps, across, c.target.displayUrl);
  if (c.spec.copy.workers) await checkBucket(c.spec.copy.workers, c.spec.name, c.state?.copyId);
  const strategyFindings = await c.strategy.preflight({
    source: c.source,
    sourceIndex,
    sourceMappings,
    settings,
  });
  const head: Finding[] = [
    ...priv,
    versionGap(caps, targetCaps, !across),
    ...translationFindings(body.translations ?? []),
  ];
  const rest: Finding[] = [
    ...(across ? await targetAliasNamesFree(c.target, aliasNames) : []),
    ...(across ? await autoCreateRisk(c.source, c.spec.aliases?.write) : []),
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
    ...strategyFindings,
    ...violatorFindings(await findViolators(c.source, sourceIndex, sourceMappings, body.mappings), {
      maxDeadLetters: c.spec.copy.maxDeadLetters,
      transform: !!c.spec.transformPath,
    }),
  ];
  // The target must take the body before a sample (or the copy) tries to: a refusal is named here, exit 2. The
  // scratch index is a write: it is made only once nothing read so far refuses (a red cluster, a privilege).
  const accepts =
    targetReused || blocking([...head, ...rest], !!c.force).length > 0
      ? []
      : await targetAccepts(c.target, sampleIndexOf(c.spec.target.index), body);
  // Dates are judged by the target's own parser, in the scratch index: only once the target took the body.
  const dates =
    targetReused || blocking([...head, ...accepts, ...rest], !!c.force).length > 0
      ? []
      : violatorFindings(
          await findDateViolators({
            source: c.source,
            sourceIndex,
            sourceMappings,
            target: c.target,
            targetMappings: body.mappings,
            scratch: sampleIndexOf(c.spec.target.index),
          }),
          { maxDeadLetters: c.spec.copy.maxDeadLetters, transform: !!c.spec.transformPath },
        );
  const findings: Finding[] = [...head, ...accepts, ...rest, ...dates];
  if (c.sample && c.spec.copy.sampleSize > 0 && !targetReused && blocking(accepts, false).length === 0)
    findings.push(sampleFinding(await runSample(c, sourceIndex, body), c.spec));
  refuseOn(findings, !!c.force);
  return {
    sourceIndex,
    shards: await c.source.primaryShards(sourceIndex),
    docs: await c.source.count(sourceIndex),
    aliases,
    targetReused,
    source: `${caps.distribution} ${caps.version}`,
    target: `${targetCaps.distribution} ${targetCaps.version}`,
    findings,
    parkedSettings: lifecycleSettings(settings),
  };
}

/** A refusal carries every finding, so `plan --json` can print them as data. */
export class PreflightRefused extends PreflightError {
  override readonly name = 'PreflightRefused';
  constructor(
    message: string,
    readonly findings: Finding[],
  ) {
    super(message);
  }
}

export function refuseOn(findings: Finding[], force: boolean): void {
  const blocks = blocking(findings, force);
  if (blocks.length === 0) return;
  throw new PreflightRefused(
    `preflight refused, nothing was changed:\n${formatFindings(blocks)}${blocks.some((b) => !b.safety) ? '\n(--force overrides the findings that are not about safety)' : ''}`,
    findings,
  );
}

/** The target name must be free, or hold an index with exactly the mappings the spec asks for (target.reuse). */
async function reusableTarget(c: InspectInput, body: TargetBody): Promise<boolean> {
  if (!(await c.target.indexExists(c.spec.target.index))) return false;
  if (!c.spec.target.reuse)
    throw new PreflightError(
      `target.index: "${c.spec.target.index}" already exists on ${c.target.displayUrl}; pick another name, delete it, or set target.reuse (--reuse-target) if its mappings match`,
    );
  const existing = Object.values(await c.target.getMapping(c.spec.target.index))[0]?.mappings ?? {};
  if (canonical(existing) !== canonical(body.mappings))
    throw new PreflightError(
      `target.reuse: "${c.spec.target.index}" exists but its mappings differ from the spec's at ${firstDifference(existing, body.mappings)}`,
    );
  return true;
}

export function runSample(
  c: Pick<InspectInput, 'spec' | 'source' | 'target' | 'transform'>,
  sourceIndex: string,
  body: TargetBody,
): Promise<SampleResult> {
  return sampleDryRun(
    c.source,
    c.target,
    sourceIndex,
    sampleIndexOf(c.spec.target.index),
    body,
    c.transform,
    c.spec.copy.sampleSize,
  );
}

/**
 * The sample's verdict. The transform throwing and the mapping rejecting are told apart (they are fixed in
 * different places). Rejections within copy.maxDeadLetters only warn: the copy would dead-letter them, which the
 * operator allowed; above it the sample blocks, and --force, a larger budget or --sample-size 0 get past it.
 */
export function sampleFinding(r: SampleResult, spec: Pick<LoadedSpec, 'copy'>): Finding {
  if (r.rejected.length === 0)
    return {
      check: 'sample',
      severity: 'ok',
      message: `sample of ${r.sampled} documents indexes cleanly into the target mapping`,
    };
  const byTransform = r.rejected.filter((d) => d.type === 'transform_error');
  const byMapping = r.rejected.filter((d) => d.type !== 'transform_error');
  const parts: string[] = [];
  if (byTransform.length)
    parts.push(`the transform throws on ${byTransform.length} of ${r.sampled} sampled documents`);
  if (byMapping.length)
    parts.push(`the target mapping rejects ${byMapping.length} of ${r.sampled} sampled documents`);
  const lines = [...byTransform, ...byMapping]
    .slice(0, 10)
    .map((d) => `id ${JSON.stringify(d.id)}: ${d.type}: ${d.reason}`);
  const within = r.rejected.length <= spec.copy.maxDeadLetters;
  const fix = [
    byTransform.length ? 'fix the transform' : '',
    byMapping.length ? 'fix target.mappings/mappingOverrides or the transform' : '',
  ]
    .filter(Boolean)
    .join('; ');
  return {
    check: 'sample',
    severity: within ? 'warn' : 'block',
    message: `${parts.join(', and ')} (these would become dead letters):\n        ${lines.join('\n        ')}`,
    action: within
      ? `within copy.maxDeadLetters = ${spec.copy.maxDeadLetters}: the copy dead-letters them and goes on; ${fix} to keep them`
      : `${fix}; or accept them as dead letters with --max-dead-letters N (copy.maxDeadLetters); --force or --sample-size 0 go on to the copy, whose dead-letter gate still counts them`,
  };
}

/**
 * copy.engine reindex keeps the guarantees only where its argument holds (reindex-engine.ts): the cluster that
 * writes must have the reindex module, nothing may need a transform or an order, and the capture must end with an id
 * reconcile (none has no writes to catch; seqno and timestamp reconcile after the copy).
 */
function reindexEngineFits(
  spec: LoadedSpec,
  targetCaps: { reindex: boolean; distribution: string; version: string },
  across: boolean,
  targetUrl: string,
): void {
  const refuse = (m: string) => {
    throw new PreflightError(`copy.engine reindex: ${m}`);
  };
  if (!targetCaps.reindex)
    refuse(
      `${targetCaps.distribution} ${targetCaps.version} on ${targetUrl} has no reindex module (it runs the task${across ? ', reading from the source cluster' : ''}); install it or use copy.engine client`,
    );
  if (spec.transformPath) refuse('a transform runs in cutover, not in the cluster: use copy.engine client');
  if (spec.copy.order !== 'seqno') refuse('copy.order newest-first needs copy.engine client');
  if (spec.copy.workers)
    refuse(
      "copy.workers shares the client engine's slices; the cluster spreads its own _reindex over its nodes: drop copy.workers or use copy.engine client",
    );
  if (!['none', 'seqno', 'timestamp'].includes(spec.capture.strategy))
    refuse(
      `capture.strategy ${spec.capture.strategy} is not supported with it (only none, seqno and timestamp end the copy with the id reconcile that removes what the reindex re-created after a delete); use copy.engine client`,
    );
  const auth = spec.source.cluster.auth as Record<string, unknown> | undefined;
  if (across && auth && !('username' in auth))
    refuse(
      'a reindex from remote signs in to the source cluster with a username and password only: set source.cluster.auth.username/passwordEnv, or use copy.engine client',
    );
}
