/**
 * A write block on an index of the migration refuses every application write, so `status` never keeps quiet
 * about one: it reads index.blocks.write from the clusters (the truth), sets it beside the freeze the state
 * records (what cutover believes), and says how to lift a block no running cutover will lift. Read-only.
 */
import type { Cluster } from '../cluster/client.js';
import type { RetryPolicy } from '../cluster/retry.js';
import { heldByLiveProcess } from '../store/lock.js';
import type { MigrationState } from '../store/state.js';
import { WRITE_BLOCK } from './freeze.js';

export interface WriteBlockStatus {
  side: 'source' | 'target';
  index: string;
  /** index.blocks.write as the cluster reports it; undefined when it could not be read */
  blocked: boolean | undefined;
  /** cutover's state records a write freeze on this index */
  recorded: boolean;
  readError?: string;
  /** lines for the operator; empty when there is nothing to say */
  notes: string[];
}

export interface BlockStatusInput {
  source: Cluster;
  target: Cluster;
  state: MigrationState;
  targetIndex: string;
  specPath: string;
  /** the migration's lock file: whether a cutover process runs for it */
  lockPath: string;
}

/**
 * `status` is a quick look, often taken because something is wrong: a cluster that does not answer is reported
 * after a few seconds rather than retried for the runner's whole budget.
 */
const STATUS_RETRY: RetryPolicy = { initialMs: 200, maxMs: 1_000, budgetMs: 3_000 };

async function readBlock(c: Cluster, index: string): Promise<boolean | undefined> {
  const r = await c.request<Record<string, { settings?: { index?: { blocks?: { write?: unknown } } } }>>({
    method: 'GET',
    path: `/${encodeURIComponent(index)}/_settings`,
    query: { filter_path: `*.settings.${WRITE_BLOCK}` },
    idempotent: true,
    okStatuses: [404],
    retry: STATUS_RETRY,
  });
  if (r.status === 404) return undefined;
  return String(Object.values(r.body ?? {})[0]?.settings?.index?.blocks?.write) === 'true';
}

export async function writeBlockStatus(i: BlockStatusInput): Promise<WriteBlockStatus[]> {
  const sides: Array<{ side: 'source' | 'target'; index?: string; cluster: Cluster }> = [
    { side: 'source', index: i.state.sourceIndex, cluster: i.source },
    { side: 'target', index: i.targetIndex, cluster: i.target },
  ];
  const runnerAlive = heldByLiveProcess(i.lockPath);
  const out: WriteBlockStatus[] = [];
  for (const s of sides) {
    if (!s.index) continue;
    const recorded = i.state.frozen?.side === s.side && i.state.frozen.index === s.index;
    const st: WriteBlockStatus = { side: s.side, index: s.index, blocked: undefined, recorded, notes: [] };
    try {
      st.blocked = await readBlock(s.cluster, s.index);
    } catch (e) {
      st.readError = (e as Error).message;
    }
    const where = `${s.side} index ${s.index} on ${s.cluster.displayUrl}`;
    const byHand = `curl -X PUT '${s.cluster.displayUrl.replace(/\/$/, '')}/${s.index}/_settings' -H 'content-type: application/json' -d '{"${WRITE_BLOCK}": null}'`;
    if (st.blocked) {
      st.notes.push(
        `WRITE BLOCK: ${where} has ${WRITE_BLOCK}=true; every application write to it is refused (403).`,
      );
      if (runnerAlive && recorded)
        st.notes.push(
          'A running cutover set it for a write freeze and lifts it within cutover.freezeBudgetMs; if it stays, stop that process (its freeze guard then lifts it at once).',
        );
      else if (recorded)
        st.notes.push(
          `No cutover process runs: \`cutover run ${i.specPath}\` lifts it first thing (or \`cutover rollback\`), or lift it by hand: ${byHand}`,
        );
      else
        st.notes.push(
          `cutover did not record setting it (someone else did, or an older run): if it is not wanted, lift it by hand: ${byHand}`,
        );
    } else if (st.blocked === undefined && recorded) {
      st.notes.push(
        `WRITE BLOCK POSSIBLE: the state records a write freeze on ${where} since ${i.state.frozen?.startedAt ?? '?'}, and the index setting could not be read (${st.readError ?? 'index not found'}); \`cutover run ${i.specPath}\` lifts it first thing.`,
      );
    } else if (recorded && !runnerAlive) {
      st.notes.push(
        `the state records a write freeze on ${where} since ${i.state.frozen?.startedAt ?? '?'}, but the index is writable (the freeze guard or an operator lifted it); the next run clears the record.`,
      );
    } else if (st.readError) {
      st.notes.push(`could not check ${where} for a write block: ${st.readError}`);
    }
    out.push(st);
  }
  return out;
}
