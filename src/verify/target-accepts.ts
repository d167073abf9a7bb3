/**
 * Whether the target cluster accepts the target index body, asked of the target itself: a scratch index is created
 * with exactly that body and deleted at once. A refusal becomes a finding that names the field or setting and the
 * spec override that fixes it (exit 2, nothing left on the target), never the server's raw error in the middle of
 * a run. Another version or distribution refuses what the source had (translate.ts fixes what it safely can).
 */
import type { Cluster } from '../cluster/client.js';
import { ClusterError } from '../cluster/errors.js';
import type { TargetBody } from '../cutover/target.js';
import type { Finding } from './preflight.js';

export async function targetAccepts(target: Cluster, scratch: string, body: TargetBody): Promise<Finding[]> {
  const caps = await target.capabilities();
  const who = `${caps.distribution === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} ${caps.version}`;
  if (await target.indexExists(scratch)) await target.deleteIndex(scratch);
  try {
    await target.createIndex(scratch, {
      settings: body.settings,
      mappings: body.mappings,
    });
  } catch (e) {
    if (!(e instanceof ClusterError) || e.status !== 400) throw e;
    const reason = e.rootCause?.[0]?.reason ?? e.reason;
    return [
      {
        check: 'target.accepts',
        severity: 'block',
        safety: true,
        message: `${who} on ${target.displayUrl} refuses the target index: ${reason}`,
        action: fixFor(reason),
      },
    ];
  } finally {
    await target.deleteIndex(scratch).catch(() => undefined);
  }
  return [
    {
      check: 'target.accepts',
      severity: 'ok',
      message: `${who} accepts the target mappings and settings`,
    },
  ];
}

/** The override that removes what the reason names, written out for the spec. */
export function fixFor(reason: string): string {
  const param = /[Uu]nknown parameter \[([^\]]+)\] on mapper \[([^\]]+)\]/.exec(reason);
  if (param) {
    const [, p, field] = param;
    return `remove it in the spec: target.mappingOverrides: ${JSON.stringify(nestField(field!, { [p!]: null }))} (null removes a key), or set target.mappings`;
  }
  const setting = /unknown setting \[([^\]]+)\]/.exec(reason);
  if (setting)
    return `remove it in the spec: target.settingOverrides: ${JSON.stringify({ [setting[1]!]: null })} (null removes a key), or set target.settings`;
  const field = /field \[([^\]]+)\]|mapper \[([^\]]+)\]/.exec(reason);
  const named = field?.[1] ?? field?.[2];
  return named
    ? `change or remove ${named} for the target: target.mappingOverrides (null removes a key), or target.mappings`
    : 'change the target body in the spec: target.mappingOverrides / settingOverrides (null removes a key), or target.mappings / target.settings';
}

function nestField(path: string, leaf: Record<string, unknown>): Record<string, unknown> {
  let node: Record<string, unknown> = leaf;
  for (const part of path.split('.').reverse()) node = { properties: { [part]: node } };
  return node;
}
