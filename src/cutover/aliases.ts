/** Aliases: inspect them before anything changes, move them in one atomic request, check where they landed. */
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
    };
    records.push({
      alias,
      isWriteIndex: o.is_write_index,
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

/** remove from `from` + add to `to`, all in one list: sent as one `_aliases` request it is atomic. */
export function moveActions(records: AliasRecord[], from: string, to: string): AliasAction[] {
  const actions: AliasAction[] = [];
  for (const r of records) {
    actions.push({ remove: { index: from, alias: r.alias } });
    const add: Record<string, unknown> = { index: to, alias: r.alias };
    if (r.isWriteIndex !== undefined) add.is_write_index = r.isWriteIndex;
    if (r.filter !== undefined) add.filter = r.filter;
    if (r.indexRouting !== undefined) add.index_routing = r.indexRouting;
    if (r.searchRouting !== undefined) add.search_routing = r.searchRouting;
    actions.push({ add } as AliasAction);
  }
  return actions;
}

export type AliasPlacement = 'from' | 'to' | 'mixed';

/** Where the recorded aliases point now: all at `from`, all at `to`, or anything else. */
export async function aliasPlacement(
  cluster: Cluster,
  records: AliasRecord[],
  from: string,
  to: string,
): Promise<{ placement: AliasPlacement; detail: string }> {
  const where: string[] = [];
  let atFrom = 0;
  let atTo = 0;
  for (const r of records) {
    const indices = Object.keys(await cluster.getAlias(r.alias)).sort();
    where.push(`${r.alias} -> [${indices.join(', ')}]`);
    if (indices.length === 1 && indices[0] === from) atFrom++;
    else if (indices.length === 1 && indices[0] === to) atTo++;
  }
  const placement: AliasPlacement =
    atFrom === records.length ? 'from' : atTo === records.length ? 'to' : 'mixed';
  return { placement, detail: where.join('; ') };
}

/**
 * Move the aliases still on `from` to `to` in one atomic request, then read them back. Idempotent per alias: those
 * already on `to` (a crash after the request, or an alias moved earlier on purpose, like the write alias of an
 * append-only migration) are left alone. An alias on any other index means someone changed it: refused.
 */
export async function moveAliases(
  cluster: Cluster,
  records: AliasRecord[],
  from: string,
  to: string,
): Promise<'moved' | 'already'> {
  const pending: AliasRecord[] = [];
  const where: string[] = [];
  let foreign = false;
  for (const r of records) {
    const indices = Object.keys(await cluster.getAlias(r.alias)).sort();
    where.push(`${r.alias} -> [${indices.join(', ')}]`);
    if (indices.length === 1 && indices[0] === from) pending.push(r);
    else if (!(indices.length === 1 && indices[0] === to)) foreign = true;
  }
  if (foreign) {
    throw new GateError(
      `aliases are not where cutover left them (${where.join('; ')}); someone changed them: fix by hand, then rerun`,
    );
  }
  if (pending.length === 0) return 'already';
  failpoint('aliases.before-switch');
  await cluster.updateAliases(moveActions(pending, from, to));
  failpoint('aliases.after-switch');
  const after = await aliasPlacement(cluster, pending, from, to);
  if (after.placement !== 'to')
    throw new AliasReadBackError(
      `alias switch was acknowledged but GET _alias shows ${after.detail}; check the aliases by hand, then rerun (the switch is idempotent)`,
    );
  return 'moved';
}
