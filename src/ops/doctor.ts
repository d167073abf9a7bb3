/**
 * `cutover doctor`: what is wrong around a migration, read-only. Cluster health of the source and the target
 * (with the allocation explain of an unassigned shard and the reroute an operator could send), reindex, bulk and
 * search tasks running longer than a threshold, and search contexts (points in time, scrolls) left open. It
 * changes nothing; the one action it offers, cancelling a task, is a separate call the caller confirms first.
 */
import { type AllocationExplain, explainUnassigned, rerouteAdvice } from '../cluster/allocation.js';
import type { Cluster, ClusterHealth } from '../cluster/client.js';
import type { PitRecord } from '../store/pit-registry.js';

export interface DoctorCluster {
  side: string;
  url: string;
  status: ClusterHealth['status'] | 'unreachable';
  unassignedShards: number;
  error?: string;
  explain?: AllocationExplain;
  reroute?: string[];
}

export interface StuckTask {
  side: string;
  /** node:id, as `--cancel` and `_tasks/<id>/_cancel` take it */
  id: string;
  action: string;
  runningSeconds: number;
  cancellable: boolean;
  description?: string;
}

export interface SearchContexts {
  side: string;
  /** search contexts open on all nodes (scrolls and points in time hold one per shard) */
  openContexts: number;
  scrolls: number;
  /** points in time open, where the cluster counts them (OpenSearch; absent on Elasticsearch) */
  pointsInTime?: number;
}

export interface DoctorReport {
  healthy: boolean;
  /** one line per problem found; empty when healthy */
  problems: string[];
  /** things worth knowing that are not problems (a yellow single-node cluster, contexts of a running copy) */
  notes: string[];
  clusters: DoctorCluster[];
  stuckTasks: StuckTask[];
  searchContexts: SearchContexts[];
  /** the points in time this migration recorded as open */
  ownPits: PitRecord[];
}

export interface DoctorOptions {
  source: Cluster;
  target: Cluster;
  /** tasks running longer than this are listed */
  olderThanMinutes: number;
  /** a process of this migration holds its lock right now (its own PIT and bulks are expected then) */
  runnerAlive: boolean;
  /** copy.keepAlive: how long a point in time left by a stopped run stays open */
  keepAlive: string;
  /** the points in time this migration recorded as open (pit-registry.ts), and which of them a dead process left */
  ownPits?: { open: PitRecord[]; leftBehind: PitRecord[] };
}

const TASK_ACTIONS = '*reindex*,*bulk*,*search*';

function sidesOf(o: Pick<DoctorOptions, 'source' | 'target'>): Array<[string, Cluster]> {
  return o.source === o.target
    ? [['source+target', o.source]]
    : [
        ['source', o.source],
        ['target', o.target],
      ];
}

async function clusterOf(side: string, c: Cluster): Promise<DoctorCluster> {
  try {
    const h = await c.health();
    const out: DoctorCluster = {
      side,
      url: c.displayUrl,
      status: h.status,
      unassignedShards: h.unassigned_shards,
    };
    if (h.unassigned_shards > 0) {
      out.explain = await explainUnassigned(c);
      if (out.explain) out.reroute = rerouteAdvice(out.explain);
    }
    return out;
  } catch (e) {
    return {
      side,
      url: c.displayUrl,
      status: 'unreachable',
      unassignedShards: 0,
      error: (e as Error).message,
    };
  }
}

interface TaskInfo {
  node: string;
  id: number;
  action: string;
  description?: string;
  running_time_in_nanos: number;
  cancellable?: boolean;
  parent_task_id?: string;
}

async function tasksOf(side: string, c: Cluster, olderThanMinutes: number): Promise<StuckTask[]> {
  const r = await c.request<{ nodes?: Record<string, { tasks?: Record<string, TaskInfo> }> }>({
    method: 'GET',
    path: '/_tasks',
    query: { actions: TASK_ACTIONS, detailed: true },
    idempotent: true,
  });
  const out: StuckTask[] = [];
  for (const n of Object.values(r.body.nodes ?? {}))
    for (const [id, t] of Object.entries(n.tasks ?? {})) {
      // A child runs and ends with its parent: cancelling the parent is what an operator does.
      if (t.parent_task_id) continue;
      const secs = t.running_time_in_nanos / 1e9;
      if (secs < olderThanMinutes * 60) continue;
      out.push({
        side,
        id,
        action: t.action,
        runningSeconds: Math.round(secs),
        cancellable: !!t.cancellable,
        description: t.description?.slice(0, 300),
      });
    }
  return out.sort((a, b) => b.runningSeconds - a.runningSeconds);
}

async function contextsOf(side: string, c: Cluster): Promise<SearchContexts> {
  const r = await c.request<{
    nodes?: Record<
      string,
      {
        indices?: {
          search?: { open_contexts?: number; scroll_current?: number; point_in_time_current?: number };
        };
      }
    >;
  }>({
    method: 'GET',
    path: '/_nodes/stats/indices/search',
    query: {
      filter_path:
        'nodes.*.indices.search.open_contexts,nodes.*.indices.search.scroll_current,nodes.*.indices.search.point_in_time_current',
    },
    idempotent: true,
  });
  const out: SearchContexts = { side, openContexts: 0, scrolls: 0 };
  for (const n of Object.values(r.body.nodes ?? {})) {
    const s = n.indices?.search ?? {};
    out.openContexts += s.open_contexts ?? 0;
    out.scrolls += s.scroll_current ?? 0;
    if (s.point_in_time_current !== undefined)
      out.pointsInTime = (out.pointsInTime ?? 0) + s.point_in_time_current;
  }
  return out;
}

export async function doctor(o: DoctorOptions): Promise<DoctorReport> {
  const sides = sidesOf(o);
  const clusters = await Promise.all(sides.map(([s, c]) => clusterOf(s, c)));
  const reachable = sides.filter((_, i) => clusters[i]!.status !== 'unreachable');
  const stuckTasks = (await Promise.all(reachable.map(([s, c]) => tasksOf(s, c, o.olderThanMinutes)))).flat();
  const searchContexts = await Promise.all(reachable.map(([s, c]) => contextsOf(s, c)));
  const problems: string[] = [];
  const notes: string[] = [];
  for (const c of clusters) {
    if (c.status === 'unreachable') problems.push(`${c.side} cluster ${c.url} unreachable: ${c.error}`);
    else if (c.status === 'red')
      problems.push(
        `${c.side} cluster is red (${c.unassignedShards} unassigned shard(s))${c.explain ? `: ${c.explain.index}[${c.explain.shard}] ${c.explain.primary ? 'primary' : 'replica'}: ${c.explain.explanation ?? c.explain.canAllocate ?? ''}` : ''}`,
      );
    else if (c.status === 'yellow')
      notes.push(
        `${c.side} cluster is yellow (${c.unassignedShards} unassigned replica(s)): a node loss could lose data; normal on a single node`,
      );
  }
  for (const t of stuckTasks)
    problems.push(
      `${t.side} task ${t.id} (${t.action}) running for ${Math.round(t.runningSeconds / 60)} min${t.cancellable ? `: \`cutover doctor <spec> --cancel ${t.id}\` cancels it` : ' (not cancellable)'}`,
    );
  for (const s of searchContexts) {
    if (s.openContexts === 0) continue;
    const what = `${s.side}: ${s.openContexts} search context(s) open (${s.pointsInTime !== undefined ? `${s.pointsInTime} point(s) in time, ` : ''}${s.scrolls} scroll(s))`;
    if (o.runnerAlive) notes.push(`${what}; this migration's run is alive and holds its own`);
    else
      notes.push(
        `${what} while no run of this migration is alive: a point in time left by a stopped run closes by itself after copy.keepAlive (${o.keepAlive}); others belong to other clients`,
      );
  }
  const own = o.ownPits;
  if (own && own.open.length > 0) {
    const left = own.leftBehind;
    const live = own.open.filter((r) => !left.some((l) => l.id === r.id));
    if (live.length)
      notes.push(
        `${live.length} point(s) in time of this migration opened by a running process (${[...new Set(live.map((r) => `pid ${r.pid} on ${r.host}`))].join(', ')}), on ${live.map((r) => `${r.side} ${r.index}`).join(', ')}`,
      );
    if (left.length)
      notes.push(
        `${left.length} point(s) in time of this migration left by a process that died (${left.map((r) => `${r.side} ${r.index}, pid ${r.pid}, opened ${r.openedAt}`).join('; ')}): the next run closes them before it opens its own; until then they close by themselves after copy.keepAlive (${o.keepAlive} from their last use)`,
      );
  }
  return {
    healthy: problems.length === 0,
    problems,
    notes,
    clusters,
    stuckTasks,
    searchContexts,
    ownPits: own?.open ?? [],
  };
}

/** Which of the clusters runs task `id`, and what it is; undefined when neither knows it. */
export async function findTask(
  o: Pick<DoctorOptions, 'source' | 'target'>,
  id: string,
): Promise<
  { side: string; cluster: Cluster; action: string; runningSeconds: number; cancellable: boolean } | undefined
> {
  if (!/^[\w-]+:\d+$/.test(id)) throw new RangeError(`a task id looks like NODE_ID:NUMBER, got "${id}"`);
  for (const [side, cluster] of sidesOf(o)) {
    const r = await cluster.request<{ task?: TaskInfo }>({
      method: 'GET',
      path: `/_tasks/${encodeURIComponent(id)}`,
      idempotent: true,
      okStatuses: [404, 400],
    });
    const t = r.status === 200 ? r.body.task : undefined;
    if (t)
      return {
        side,
        cluster,
        action: t.action,
        runningSeconds: Math.round(t.running_time_in_nanos / 1e9),
        cancellable: !!t.cancellable,
      };
  }
  return undefined;
}

/** Ask the cluster to cancel a task (the caller has confirmed). */
export async function cancelTask(cluster: Cluster, id: string): Promise<void> {
  await cluster.request({
    method: 'POST',
    path: `/_tasks/${encodeURIComponent(id)}/_cancel`,
    idempotent: true,
  });
}

export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  for (const c of r.clusters)
    lines.push(
      `  ${c.side.padEnd(13)} ${c.url}  ${c.status}${c.unassignedShards ? `, ${c.unassignedShards} unassigned shard(s)` : ''}`,
    );
  for (const c of r.clusters) {
    if (!c.explain) continue;
    const e = c.explain;
    lines.push(
      `\n  allocation explain (${c.side}): ${e.index}[${e.shard}] ${e.primary ? 'primary' : 'replica'}, ${e.state}${e.reason ? `, ${e.reason}` : ''}${e.details ? ` (${e.details})` : ''}`,
    );
    if (e.explanation) lines.push(`    ${e.explanation}`);
    for (const n of e.nodes)
      lines.push(`    node ${n.node}: ${n.decision}${n.why.length ? `: ${n.why.join('; ')}` : ''}`);
    for (const a of c.reroute ?? []) lines.push(`    reroute: ${a}`);
  }
  lines.push(
    r.stuckTasks.length
      ? `\n  tasks running long:\n${r.stuckTasks.map((t) => `    ${t.side} ${t.id} ${t.action} ${Math.round(t.runningSeconds / 60)} min${t.description ? `: ${t.description}` : ''}`).join('\n')}`
      : '\n  tasks running long: none',
  );
  for (const s of r.searchContexts)
    lines.push(
      `  search contexts (${s.side}): ${s.openContexts} open${s.pointsInTime !== undefined ? `, ${s.pointsInTime} point(s) in time` : ''}, ${s.scrolls} scroll(s)`,
    );
  if (r.notes.length) lines.push('', ...r.notes.map((n) => `  note: ${n}`));
  lines.push(
    '',
    r.healthy
      ? '  healthy'
      : `  ${r.problems.length} problem(s):\n${r.problems.map((p) => `    - ${p}`).join('\n')}`,
  );
  return lines.join('\n');
}
