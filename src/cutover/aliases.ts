/**
 * Aliases: inspect them before anything changes, move them, check where they landed. On one cluster a move is
 * one atomic `_aliases` request; across clusters it is two (add on the arriving cluster, then remove from the
 * leaving one) and every reader of the placement knows the state in between ('half'), so a crash there is
 * finished by the next command, never mistaken for someone else's change.
 */
import type { AliasAction, Cluster } from '../cluster/client.js';
import { failpoint } from '../ops/failpoints.js';
import { CutoverError, EXIT, GateError, PreflightError } from '../store/errors.js';
import type { AliasRecord } from '../store/state.js';

/** The concrete index behind a name: the index itself, or the single index an alias points at. */
export async function resolveIndex(cluster: Cluster, name: string, field: string): Promise<string> {
  const viaAlias = Object.keys(await cluster.getAlias(name));
  if (viaAlias.length > 1) {
    throw new PreflightError(
      `${field}: alias "${name}" points at ${viaAlias.length} indices (${viaAlias.join(', ')}); name one index`,
    );
  }
  if (viaAlias.length === 1) return viaAlias[0]!;
  if (await cluster.indexExists(name)) return name;
  throw new PreflightError(`${field}: no index or alias named "${name}" on ${cluster.displayUrl}`);
}

/** Each alias must exist and point at exactly the source index; its options are recorded to be kept as they are. */
export async function inspectAliases(
  cluster: Cluster,
  names: string[],
  sourceIndex: string,
): Promise<AliasRecord[]> {
  const records: AliasRecord[] = [];
  for (const alias of [...new Set(names)]) {
    const found = await cluster.getAlias(alias);
    const indices = Object.keys(found);
    if (indices.length === 0)
      throw new PreflightError(
        `aliases: alias "${alias}" does not exist; create it on ${sourceIndex} first or remove it from the spec`,
      );
    if (indices.length > 1)
      throw new PreflightError(
        `aliases: alias "${alias}" points at several indices (${indices.join(', ')}); cutover moves an alias from exactly one index`,
      );
    if (indices[0] !== sourceIndex)
      throw new PreflightError(
        `aliases: alias "${alias}" points at "${indices[0]}", not at the source index "${sourceIndex}"`,
      );
    const opts = found[sourceIndex]!.aliases[alias] ?? {};
    const o = opts as {
      is_write_index?: boolean;
      filter?: unknown;
      index_routing?: string;
      search_routing?: string;
      is_hidden?: boolean;
    };
    records.push({
      alias,
      isWriteIndex: o.is_write_index,
      isHidden: o.is_hidden,
      filter: o.filter,
      indexRouting: o.index_routing,
      searchRouting: o.search_routing,
    });
  }
  return records;
}

/** The cluster acknowledged an `_aliases` request whose effect a read-back does not show. */
export class AliasReadBackError extends CutoverError {
  override readonly name = 'AliasReadBackError';
  readonly exitCode = EXIT.cluster;
}

/** One side of a switch: the cluster the aliases live on there, and the concrete index they point at. */
export interface AliasEnd {
  cluster: Cluster;
  index: string;
}

/**
 * Whether two clients talk to one cluster. The facade hands the very same client to both sides when the spec
 * names no target cluster; a target.cluster with the source's URL is the same cluster too.
 */
export function sameCluster(a: Cluster, b: Cluster): boolean {
  return a === b || a.displayUrl === b.displayUrl;
}

function addAction(r: AliasRecord, index: string): AliasAction {
  const add: Record<string, unknown> = { index, alias: r.alias };
  if (r.isWriteIndex !== undefined) add.is_write_index = r.isWriteIndex;
  if (r.isHidden !== undefined) add.is_hidden = r.isHidden;
  if (r.filter !== undefined) add.filter = r.filter;
  if (r.indexRouting !== undefined) add.index_routing = r.indexRouting;
  if (r.searchRouting !== undefined) add.search_routing = r.searchRouting;
  return { add } as AliasAction;
}

/** remove from `from` + add to `to`, all in one list: sent as one `_aliases` request it is atomic. */
export function moveActions(records: AliasRecord[], from: string, to: string): AliasAction[] {
  return records.flatMap((r) => [
    { remove: { index: from, alias: r.alias } } as AliasAction,
    addAction(r, to),
  ]);
}

/**
 * Send the switch of `records` from `from` to `to`. On one cluster: one atomic `_aliases` request. Across two
 * clusters no request is atomic, so two, in this order:
 *   1. add every alias on the arriving cluster, with the recorded options (is_write_index, filter, routing,
 *      hidden): from here on, readers and writers that use that cluster find the new index, and nobody who has
 *      moved ever sees the alias missing;
 *   2. remove them from the leaving index: writers still talking to the old cluster can no longer land in the
 *      old index by alias (they get an error, or, with action.auto_create_index, a new index named like the
 *      alias: preflight warns about that).
 * A crash between the two leaves the aliases on both sides ('half'); the next command finishes step 2.
 * `pending` limits either request to the aliases that still need it (a rerun after a crash).
 */
export async function sendSwitch(
  records: AliasRecord[],
  from: AliasEnd,
  to: AliasEnd,
  pending: { add: AliasRecord[]; remove: AliasRecord[] } = { add: records, remove: records },
): Promise<void> {
  if (sameCluster(from.cluster, to.cluster)) {
    await from.cluster.updateAliases(moveActions(records, from.index, to.index));
    return;
  }
  if (pending.add.length) await to.cluster.updateAliases(pending.add.map((r) => addAction(r, to.index)));
  failpoint('aliases.between-clusters');
  if (pending.remove.length)
    await from.cluster.updateAliases(
      pending.remove.map((r) => ({ remove: { index: from.index, alias: r.alias } }) as AliasAction),
    );
}

/**
 * 'from' / 'to': every alias on that side only. 'half' (two clusters only): every alias is on `to`, `from` or
 * both, and at least one on both: a switch stopped between its two requests. 'mixed': anything else (an alias
 * on another index, missing everywhere, or some moved and others not).
 */
export type AliasPlacement = 'from' | 'to' | 'half' | 'mixed';

interface Located {
  onFrom: boolean;
  onTo: boolean;
  foreign: boolean;
  where: string;
}

async function locate(r: AliasRecord, from: AliasEnd, to: AliasEnd): Promise<Located> {
  if (sameCluster(from.cluster, to.cluster)) {
    const indices = Object.keys(await from.cluster.getAlias(r.alias)).sort();
    const onFrom = indices.length === 1 && indices[0] === from.index;
    const onTo = indices.length === 1 && indices[0] === to.index;
    return { onFrom, onTo, foreign: !onFrom && !onTo, where: `${r.alias} -> [${indices.join(', ')}]` };
  }
  const [a, b] = await Promise.all([from.cluster.getAlias(r.alias), to.cluster.getAlias(r.alias)]);
  const atFrom = Object.keys(a).sort();
  const atTo = Object.keys(b).sort();
  const onFrom = atFrom.length === 1 && atFrom[0] === from.index;
  const onTo = atTo.length === 1 && atTo[0] === to.index;
  const foreign =
    (atFrom.length > 0 && !onFrom) || (atTo.length > 0 && !onTo) || atFrom.length + atTo.length === 0;
  return {
    onFrom,
    onTo,
    foreign,
    where: `${r.alias} -> [${atFrom.join(', ')}] on ${from.cluster.displayUrl}, [${atTo.join(', ')}] on ${to.cluster.displayUrl}`,
  };
}

/** Where the recorded aliases point now (see AliasPlacement). */
export async function aliasPlacement(
  records: AliasRecord[],
  from: AliasEnd,
  to: AliasEnd,
): Promise<{ placement: AliasPlacement; detail: string }> {
  const found = await Promise.all(records.map((r) => locate(r, from, to)));
  const detail = found.map((l) => l.where).join('; ');
  const n = records.length;
  if (found.every((l) => l.onFrom && !l.onTo)) return { placement: 'from', detail };
  if (found.every((l) => l.onTo && !l.onFrom)) return { placement: 'to', detail };
  if (n > 0 && found.every((l) => !l.foreign) && found.some((l) => l.onFrom && l.onTo))
    return { placement: 'half', detail };
  return { placement: 'mixed', detail };
}

/**
 * Move the aliases still on `from` to `to` (one atomic request on one cluster; add-then-remove across two, see
 * sendSwitch), then read them back. Idempotent per alias: those already on `to` (a crash after the request, or an
 * alias moved earlier on purpose, like the write alias of an append-only migration) are left alone, and a switch
 * across clusters stopped between its two requests is finished. An alias on any other index means someone
 * changed it: refused.
 */
export async function moveAliases(
  records: AliasRecord[],
  from: AliasEnd,
  to: AliasEnd,
): Promise<'moved' | 'already'> {
  const found = await Promise.all(records.map((r) => locate(r, from, to)));
  if (found.some((l) => l.foreign)) {
    throw new GateError(
      `aliases are not where cutover left them (${found.map((l) => l.where).join('; ')}); someone changed them: fix by hand, then rerun`,
    );
  }
  const add = records.filter((_, i) => !found[i]!.onTo);
  const remove = records.filter((_, i) => found[i]!.onFrom);
  if (add.length === 0 && remove.length === 0) return 'already';
  failpoint('aliases.before-switch');
  // On one cluster the moving aliases are exactly those on `from` (an alias cannot be on both there).
  await sendSwitch(sameCluster(from.cluster, to.cluster) ? remove : records, from, to, { add, remove });
  failpoint('aliases.after-switch');
  const after = await aliasPlacement(records, from, to);
  if (after.placement !== 'to')
    throw new AliasReadBackError(
      `alias switch was acknowledged but GET _alias shows ${after.detail}; check the aliases by hand, then rerun (the switch is idempotent)`,
    );
  return 'moved';
}

/** The two ends of a migration's switch: the source index on the source cluster, the target on the target's. */
export function migrationEnds(c: {
  source: Cluster;
  target: Cluster;
  state: { sourceIndex?: string };
  spec: { target: { index: string } };
}): { source: AliasEnd; target: AliasEnd } {
  return {
    source: { cluster: c.source, index: c.state.sourceIndex! },
    target: { cluster: c.target, index: c.spec.target.index },
  };
}
