/**
 * Index lifecycle (ILM on Elasticsearch, ISM on OpenSearch): a policy may roll an index over or delete it while
 * the migration runs. Preflight reports the policy and phase; the lifecycle settings are not copied to the target
 * during the copy ("parked") and are put on it right after the alias switch.
 */
import type { Cluster } from '../cluster/client.js';
import { isObj, type Obj } from '../store/json.js';
import type { Finding } from './preflight.js';

export interface LifecycleInfo {
  system: 'ilm' | 'ism';
  managed: boolean;
  policy?: string;
  phase?: string;
  action?: string;
  /** the current phase can roll the index over */
  rollover: boolean;
}

/** `GET <index>/_ilm/explain` */
export function parseIlmExplain(body: unknown, index: string): LifecycleInfo | undefined {
  const e = isObj(body) && isObj(body.indices) ? body.indices[index] : undefined;
  if (!isObj(e)) return undefined;
  if (e.managed !== true) return { system: 'ilm', managed: false, rollover: false };
  const exec = isObj(e.phase_execution) ? e.phase_execution : {};
  const def = isObj(exec.phase_definition) ? exec.phase_definition : {};
  const actions = isObj(def.actions) ? def.actions : {};
  return {
    system: 'ilm',
    managed: true,
    policy: typeof e.policy === 'string' ? e.policy : undefined,
    phase: typeof e.phase === 'string' ? e.phase : undefined,
    action: typeof e.action === 'string' ? e.action : undefined,
    rollover:
      'rollover' in actions ||
      e.action === 'rollover' ||
      (e.phase === 'hot' && !('phase_definition' in exec)),
  };
}

/** `GET _plugins/_ism/explain/<index>` */
export function parseIsmExplain(body: unknown, index: string): LifecycleInfo | undefined {
  const e = isObj(body) ? body[index] : undefined;
  if (!isObj(e)) return undefined;
  const policy = (e['index.plugins.index_state_management.policy_id'] ??
    e.policy_id ??
    e['index.opendistro.index_state_management.policy_id']) as string | null | undefined;
  if (!policy) return { system: 'ism', managed: false, rollover: false };
  const state = isObj(e.state) ? (e.state.name as string | undefined) : undefined;
  const action = isObj(e.action) ? (e.action.name as string | undefined) : undefined;
  // ISM explain does not show the policy's later actions; a rollover may follow in any state that is not final.
  return {
    system: 'ism',
    managed: true,
    policy,
    phase: state,
    action,
    rollover: action === 'rollover' || action === undefined || action === 'transition',
  };
}

/** Ask the cluster; undefined when it has no lifecycle API (the integ-test servers have neither ILM nor ISM). */
export async function explainLifecycle(cluster: Cluster, index: string): Promise<LifecycleInfo | undefined> {
  const caps = await cluster.capabilities();
  const path =
    caps.distribution === 'opensearch'
      ? `/_plugins/_ism/explain/${encodeURIComponent(index)}`
      : `/${encodeURIComponent(index)}/_ilm/explain`;
  const r = await cluster.request({ method: 'GET', path, idempotent: true, okStatuses: 'all' });
  if (r.status !== 200) return undefined;
  return caps.distribution === 'opensearch' ? parseIsmExplain(r.body, index) : parseIlmExplain(r.body, index);
}

export function lifecycleFindings(info: LifecycleInfo | undefined, index: string): Finding[] {
  if (!info)
    return [
      {
        check: 'lifecycle',
        severity: 'info',
        message: `${index}: no index lifecycle API on this cluster (ILM/ISM not installed)`,
      },
    ];
  if (!info.managed)
    return [
      {
        check: 'lifecycle',
        severity: 'ok',
        message: `${index} is not managed by ${info.system.toUpperCase()}`,
      },
    ];
  const where = `${info.system.toUpperCase()} policy "${info.policy}"${info.phase ? `, phase/state ${info.phase}` : ''}${info.action ? `, action ${info.action}` : ''}`;
  return [
    {
      check: 'lifecycle',
      severity: info.rollover ? 'warn' : 'info',
      message: `${index} is managed by ${where}${info.rollover ? ': a rollover could fire during the migration and send new writes to another index' : ''}`,
      action: info.rollover
        ? 'pause the policy for the migration (POST _ilm/stop, or ISM change_policy), or migrate in a quiet window; lifecycle settings are put on the target only after cutover'
        : 'lifecycle settings are put on the target only after cutover',
    },
  ];
}

/** Source settings that tie an index to a lifecycle policy: held back from the target until cutover. */
export function lifecycleSettings(flat: Obj): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    if (
      /^index\.(lifecycle\.(name|rollover_alias|parse_origination_date|origination_date)|plugins\.index_state_management\.policy_id|opendistro\.index_state_management\.policy_id)$/.test(
        k,
      )
    )
      out[k] = v;
  }
  return out;
}
