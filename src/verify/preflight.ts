/**
 * Checks before anything changes. Each finding says what it means and what to do. `block` findings stop `run`;
 * `--force` overrides the ones that are not about safety (e.g. a yellow cluster), never the safety ones (data
 * that cannot be copied, missing privileges).
 */
import type { Cluster } from '../cluster/client.js';
import type { AliasRecord } from '../store/state.js';
import { diffMappings } from './mapping-diff.js';

export type Severity = 'ok' | 'info' | 'warn' | 'block';

export interface Finding {
  check: string;
  severity: Severity;
  message: string;
  action?: string;
  /** a safety finding cannot be forced */
  safety?: boolean;
}

type Obj = Record<string, unknown>;

export interface PreflightInput {
  source: Cluster;
  target: Cluster;
  sourceIndex: string;
  targetIndex: string;
  aliases: AliasRecord[];
  sourceMappings: Obj;
  targetBody: { settings: Obj; mappings: Obj };
}

async function clusterHealth(c: Cluster, side: string): Promise<Finding[]> {
  const h = await c.health();
  const out: Finding[] = [];
  if (h.status === 'red') {
    out.push({
      check: `${side}.health`,
      severity: 'block',
      message: `${side} cluster is red: some primary shards are unassigned`,
      action: 'fix the cluster first (GET _cluster/allocation/explain)',
    });
  } else if (h.status === 'yellow') {
    out.push({
      check: `${side}.health`,
      severity: 'warn',
      message: `${side} cluster is yellow: replicas are unassigned, a node loss would lose data`,
      action: 'acceptable on single-node clusters; otherwise fix allocation first',
    });
  } else {
    out.push({ check: `${side}.health`, severity: 'ok', message: `${side} cluster is green` });
  }
  if (h.relocating_shards + h.initializing_shards > 0) {
    out.push({
      check: `${side}.shards`,
      severity: 'warn',
      message: `${side}: ${h.relocating_shards} relocating and ${h.initializing_shards} initializing shards`,
      action: 'wait for recoveries to finish: the copy competes with them for disk and network',
    });
  }
  return out;
}

async function resources(c: Cluster, side: string): Promise<Finding[]> {
  const stats = await c.nodesStats('jvm,breaker');
  const out: Finding[] = [];
  for (const [, n] of Object.entries(stats.nodes)) {
    const node = n as {
      name?: string;
      jvm?: { mem?: { heap_used_percent?: number } };
      breakers?: Record<string, { limit_size_in_bytes: number; estimated_size_in_bytes: number }>;
    };
    const heap = node.jvm?.mem?.heap_used_percent ?? 0;
    if (heap >= 85)
      out.push({
        check: `${side}.heap`,
        severity: 'warn',
        message: `${side} node ${node.name}: heap ${heap}% used`,
        action: 'lower copy.concurrency/batchBytes or wait: bulk requests may trip circuit breakers',
      });
    for (const [name, b] of Object.entries(node.breakers ?? {})) {
      if (b.limit_size_in_bytes > 0 && b.estimated_size_in_bytes / b.limit_size_in_bytes >= 0.8) {
        out.push({
          check: `${side}.breakers`,
          severity: 'warn',
          message: `${side} node ${node.name}: ${name} breaker at ${Math.round((100 * b.estimated_size_in_bytes) / b.limit_size_in_bytes)}%`,
          action: 'the copy will see circuit_breaking_exception retries; lower copy.batchBytes',
        });
      }
    }
  }
  if (out.length === 0)
    out.push({
      check: `${side}.resources`,
      severity: 'ok',
      message: `${side}: heap and circuit breakers have room`,
    });
  return out;
}

async function disk(p: PreflightInput): Promise<Finding[]> {
  const st = await p.source.request<{ _all: { primaries: { store: { size_in_bytes: number } } } }>({
    method: 'GET',
    path: `/${encodeURIComponent(p.sourceIndex)}/_stats/store`,
    idempotent: true,
  });
  const size = st.body._all.primaries.store.size_in_bytes;
  const replicas = Number((p.targetBody.settings.index as Obj | undefined)?.number_of_replicas ?? 1);
  const need = size * (1 + (Number.isFinite(replicas) ? replicas : 1));
  const fs = await p.target.nodesStats('fs');
  let total = 0;
  let available = 0;
  for (const n of Object.values(fs.nodes)) {
    const t = (n as { fs?: { total?: { total_in_bytes?: number; available_in_bytes?: number } } }).fs?.total;
    total += t?.total_in_bytes ?? 0;
    available += t?.available_in_bytes ?? 0;
  }
  const gb = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GB`;
  // The default high watermark is 90%: above it shards move away or (flood stage, 95%) indices go read-only.
  const afterCopy = available - need;
  if (total > 0 && afterCopy < total * 0.1) {
    return [
      {
        check: 'target.disk',
        severity: 'block',
        message: `target needs about ${gb(need)} (source primaries ${gb(size)} x ${1 + replicas} copies); ${gb(available)} free of ${gb(total)} would cross the 90% high watermark`,
        action: 'free disk, add nodes, or lower target replicas (they are 0 during the copy, restored after)',
      },
    ];
  }
  return [
    {
      check: 'target.disk',
      severity: 'ok',
      message: `target has ${gb(available)} free for about ${gb(need)} of copy`,
    },
  ];
}

/**
 * With security on, ask each cluster whether its user may do exactly what the migration needs there: read the
 * source, create and write the target, move the aliases. Across clusters each side is asked for its own part,
 * with its own credentials.
 */
export async function privileges(
  p: Pick<PreflightInput, 'source' | 'sourceIndex' | 'targetIndex' | 'aliases'> & {
    /** the target's cluster when it is another one */
    target?: Cluster;
  },
): Promise<Finding[]> {
  const aliasNames = p.aliases.map((a) => a.alias);
  const sourceRead = { names: [p.sourceIndex], privileges: ['read', 'view_index_metadata'] };
  const targetWrite = {
    names: [p.targetIndex, `${p.targetIndex}-cutover-sample`],
    privileges: ['create_index', 'write', 'manage'],
  };
  if (!p.target)
    return askPrivileges(p.source, '', {
      cluster: ['monitor'],
      index: [
        sourceRead,
        targetWrite,
        ...(aliasNames.length
          ? [{ names: [...aliasNames, p.sourceIndex, p.targetIndex], privileges: ['manage'] }]
          : []),
      ],
    });
  // The switch removes the aliases on the source and adds them on the target.
  const [source, target] = await Promise.all([
    askPrivileges(p.source, 'source cluster: ', {
      cluster: ['monitor'],
      index: [
        sourceRead,
        ...(aliasNames.length ? [{ names: [...aliasNames, p.sourceIndex], privileges: ['manage'] }] : []),
      ],
    }),
    askPrivileges(p.target, 'target cluster: ', {
      cluster: ['monitor'],
      index: [
        targetWrite,
        ...(aliasNames.length ? [{ names: [...aliasNames, p.targetIndex], privileges: ['manage'] }] : []),
      ],
    }),
  ]);
  return [...source, ...target];
}

async function askPrivileges(
  cluster: Cluster,
  side: string,
  body: { cluster: string[]; index: Array<{ names: string[]; privileges: string[] }> },
): Promise<Finding[]> {
  const auth = await cluster.request({
    method: 'GET',
    path: '/_security/_authenticate',
    idempotent: true,
    okStatuses: 'all',
  });
  if (auth.status !== 200)
    return [
      {
        check: 'privileges',
        severity: 'info',
        message: `${side}security is not enabled${side ? '' : ' on the source cluster'} (or not Elasticsearch security): privileges not checked`,
      },
    ];
  const r = await cluster.request<{
    username: string;
    has_all_requested: boolean;
    cluster: Record<string, boolean>;
    index: Record<string, Record<string, boolean>>;
  }>({ method: 'POST', path: '/_security/user/_has_privileges', body, idempotent: true });
  if (r.body.has_all_requested)
    return [
      {
        check: 'privileges',
        severity: 'ok',
        message: `${side}user ${r.body.username} has every privilege the migration needs${side ? ' there' : ''}`,
      },
    ];
  const missing: string[] = [];
  for (const [priv, ok] of Object.entries(r.body.cluster)) if (!ok) missing.push(`cluster:${priv}`);
  for (const [index, privs] of Object.entries(r.body.index))
    for (const [priv, ok] of Object.entries(privs)) if (!ok) missing.push(`${index}:${priv}`);
  return [
    {
      check: 'privileges',
      severity: 'block',
      safety: true,
      message: `${side}user ${r.body.username} lacks: ${missing.join(', ')}`,
      action:
        'grant these privileges (a role for the migration user) and run plan again; nothing was changed',
    },
  ];
}

function sourceCopyable(p: PreflightInput): Finding[] {
  const src = (p.sourceMappings._source ?? {}) as {
    enabled?: boolean;
    excludes?: string[];
    includes?: string[];
  };
  if (src.enabled === false) {
    return [
      {
        check: 'source._source',
        severity: 'block',
        safety: true,
        message: `${p.sourceIndex} has _source disabled: documents cannot be read back, a copy would lose every field`,
        action: 'reindex from the system of record instead',
      },
    ];
  }
  if ((src.excludes?.length ?? 0) > 0 || (src.includes?.length ?? 0) > 0) {
    return [
      {
        check: 'source._source',
        severity: 'block',
        safety: true,
        message: `${p.sourceIndex} filters _source (includes/excludes): the filtered fields are not stored and cannot be copied`,
        action:
          'reindex from the system of record, or accept the loss by copying with a transform that documents it',
      },
    ];
  }
  return [];
}

function pipelines(p: PreflightInput): Finding[] {
  const idx = (p.targetBody.settings.index ?? {}) as Obj;
  const names = ['default_pipeline', 'final_pipeline'].filter((k) => idx[k] && idx[k] !== '_none');
  return names.map((k) => ({
    check: 'target.pipeline',
    severity: 'warn' as const,
    message: `target has ${k} "${String(idx[k])}": documents change on the way in, so the proof compares against changed documents`,
    action: 'list the fields the pipeline sets in verify.ignore, or drop the pipeline for the copy',
  }));
}

function mappingFindings(p: PreflightInput): Finding[] {
  return diffMappings(p.sourceMappings, p.targetBody.mappings).map((c) => ({
    check: `mapping.${c.class}`,
    severity: c.class === 'breaking' ? ('warn' as const) : ('info' as const),
    message: `${c.path}: ${c.change} [${c.class}]`,
    action:
      c.class === 'breaking'
        ? 'a narrowed type is checked on every source document by query (violators); the sample dry run shows the rest'
        : undefined,
  }));
}

export async function preflight(p: PreflightInput): Promise<Finding[]> {
  const same = p.source === p.target;
  const findings: Finding[] = [
    ...sourceCopyable(p),
    ...(await clusterHealth(p.source, 'source')),
    ...(same ? [] : await clusterHealth(p.target, 'target')),
    ...(await resources(p.target, 'target')),
    ...(await disk(p)),
    ...pipelines(p),
    ...mappingFindings(p),
  ];
  return findings;
}

/** Findings that stop `run`: every block, except non-safety ones when forced. */
export function blocking(findings: Finding[], force: boolean): Finding[] {
  return findings.filter((f) => f.severity === 'block' && (f.safety || !force));
}

export function formatFindings(findings: Finding[]): string {
  const mark: Record<Severity, string> = { ok: 'ok   ', info: 'info ', warn: 'WARN ', block: 'BLOCK' };
  return findings
    .map((f) => `  ${mark[f.severity]} ${f.message}${f.action ? `\n        -> ${f.action}` : ''}`)
    .join('\n');
}
