/**
 * Why shards are unassigned, read-only: `_cluster/allocation/explain` for an unassigned primary (a red index)
 * first, else for whatever the cluster picks, summarised for an operator; and the reroute commands an operator
 * could send, each with what it costs. Nothing here sends a reroute: `allocate_stale_primary`,
 * `allocate_empty_primary` and `accept_data_loss` are the operator's decision, never cutover's.
 */
import type { Cluster } from './client.js';

/** The explain answer, summarised. */
export interface AllocationExplain {
  index: string;
  shard: number;
  primary: boolean;
  /** e.g. unassigned */
  state: string;
  /** unassigned_info.reason (INDEX_CREATED, NODE_LEFT, ALLOCATION_FAILED, ...) and its details */
  reason?: string;
  details?: string;
  /** can_allocate: no, no_valid_shard_copy, throttled, awaiting_info, ... */
  canAllocate?: string;
  explanation?: string;
  /** each node's decision, with the explanations of the deciders that said no */
  nodes: Array<{ node: string; decision: string; why: string[] }>;
}

interface ExplainBody {
  index: string;
  shard: number;
  primary: boolean;
  current_state: string;
  unassigned_info?: { reason?: string; details?: string };
  can_allocate?: string;
  allocate_explanation?: string;
  node_allocation_decisions?: Array<{
    node_name?: string;
    node_id?: string;
    node_decision?: string;
    deciders?: Array<{ decider?: string; decision?: string; explanation?: string }>;
  }>;
}

/** The first unassigned primary of a red index, if any: what the explain should be about. */
async function unassignedPrimary(c: Cluster): Promise<{ index: string; shard: number } | undefined> {
  const h = await c.request<{ indices?: Record<string, { status?: string }> }>({
    method: 'GET',
    path: '/_cluster/health',
    query: { level: 'indices', filter_path: 'indices.*.status' },
    idempotent: true,
    okStatuses: [408],
  });
  const red = Object.entries(h.body.indices ?? {}).find(([, v]) => v.status === 'red')?.[0];
  if (!red) return undefined;
  const shards = await c.request<Array<{ index: string; shard: string; prirep: string; state: string }>>({
    method: 'GET',
    path: `/_cat/shards/${encodeURIComponent(red)}`,
    query: { format: 'json', h: 'index,shard,prirep,state' },
    idempotent: true,
  });
  const p = shards.body.find((s) => s.prirep === 'p' && s.state === 'UNASSIGNED');
  return p ? { index: p.index, shard: Number(p.shard) } : undefined;
}

/**
 * Explain an unassigned shard: a red index's primary first, else the one the cluster picks. Undefined when no
 * shard is unassigned (the API answers 400 then).
 */
export async function explainUnassigned(c: Cluster): Promise<AllocationExplain | undefined> {
  const p = await unassignedPrimary(c);
  const r = await c.request<ExplainBody>({
    method: p ? 'POST' : 'GET',
    path: '/_cluster/allocation/explain',
    body: p ? { index: p.index, shard: p.shard, primary: true } : undefined,
    idempotent: true,
    okStatuses: [400, 404],
  });
  if (r.status !== 200) return undefined;
  return summariseExplain(r.body);
}

export function summariseExplain(b: ExplainBody): AllocationExplain {
  return {
    index: b.index,
    shard: b.shard,
    primary: b.primary,
    state: b.current_state,
    reason: b.unassigned_info?.reason,
    details: b.unassigned_info?.details,
    canAllocate: b.can_allocate,
    explanation: b.allocate_explanation,
    nodes: (b.node_allocation_decisions ?? []).map((n) => ({
      node: n.node_name ?? n.node_id ?? '?',
      decision: n.node_decision ?? '?',
      why: (n.deciders ?? [])
        .filter((d) => d.decision === 'NO' || d.decision === 'THROTTLE')
        .map((d) => `${d.decider ?? '?'}: ${d.explanation ?? ''}`),
    })),
  };
}

/** One line: which shard, why it is unassigned, and the first reason a node gave. */
export function formatExplain(e: AllocationExplain): string {
  const first = e.nodes.find((n) => n.why.length)?.why[0];
  return `${e.index}[${e.shard}] ${e.primary ? 'primary' : 'replica'} ${e.state}${e.reason ? ` (${e.reason})` : ''}: ${e.explanation ?? e.canAllocate ?? 'no explanation'}${first ? `; ${first}` : ''}`;
}

/**
 * What an operator could send to allocate the shard, each with its cost; printed, never run. The deciders'
 * explanations usually name the real fix (an allocation filter, a full disk): these commands come after it.
 */
export function rerouteAdvice(e: AllocationExplain): string[] {
  const out = [
    `retry allocations that failed too often (safe, loses nothing): POST _cluster/reroute?retry_failed=true`,
  ];
  if (e.primary) {
    const node = e.nodes[0]?.node ?? '<node>';
    out.push(
      `last resort when no valid copy of ${e.index}[${e.shard}] will come back (DATA LOSS: writes missing from the stale copy are gone for good; cutover never sends this): POST _cluster/reroute {"commands":[{"allocate_stale_primary":{"index":"${e.index}","shard":${e.shard},"node":"${node}","accept_data_loss":true}}]}`,
    );
  }
  return out;
}
