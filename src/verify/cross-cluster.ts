/**
 * What preflight says about the two clusters when they differ: the version gap (named, so an upgrade or a
 * downgrade is never a surprise), each translation of the target body, the aliases the switch will create on the
 * target cluster (they must be free there), and writers left on the source cluster after the switch (an alias
 * name they write to would be auto-created as an index there).
 */
import type { Capabilities } from '../cluster/capabilities.js';
import type { Cluster } from '../cluster/client.js';
import type { Translation } from '../cutover/translate.js';
import type { Finding } from './preflight.js';

const label = (c: Capabilities) =>
  `${c.distribution === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} ${c.version}`;

export function versionGap(source: Capabilities, target: Capabilities, sameCluster: boolean): Finding {
  if (sameCluster)
    return {
      check: 'versions',
      severity: 'ok',
      message: `source and target on one cluster (${label(source)})`,
    };
  const gap =
    source.distribution !== target.distribution
      ? `platform move (${source.distribution} -> ${target.distribution})`
      : target.major > source.major
        ? `major upgrade (${source.major} -> ${target.major})`
        : target.major < source.major
          ? `major DOWNGRADE (${source.major} -> ${target.major})`
          : target.minor > source.minor
            ? 'minor upgrade'
            : target.minor < source.minor
              ? 'minor downgrade'
              : 'same version';
  const down = /DOWNGRADE|downgrade/.test(gap);
  return {
    check: 'versions',
    severity: down ? 'warn' : 'info',
    message: `source ${label(source)} -> target ${label(target)}: ${gap}`,
    action: down
      ? 'the target is older: mapping parameters and settings only the source version knows are refused (preflight names them); check the application works against the older version'
      : undefined,
  };
}

export function translationFindings(translations: readonly Translation[]): Finding[] {
  return translations.map((t) => ({
    check: 'translate',
    severity: 'info' as const,
    message: t.change.startsWith('mapping translation') ? t.change : `translation: ${t.change}`,
    action: `target.translate.keep: [${t.id}] leaves it as the source has it`,
  }));
}

/** Across clusters the switch creates the aliases on the target cluster: nothing may hold their names there. */
export async function targetAliasNamesFree(target: Cluster, names: string[]): Promise<Finding[]> {
  const taken: string[] = [];
  for (const n of names) {
    const onAlias = Object.keys(await target.getAlias(n));
    if (onAlias.length) taken.push(`alias ${n} already points at ${onAlias.join(', ')}`);
    else if (await target.indexExists(n)) taken.push(`an index is named ${n}`);
  }
  if (taken.length === 0)
    return names.length
      ? [
          {
            check: 'target.aliases',
            severity: 'ok',
            message: `alias names free on ${target.displayUrl} (${names.join(', ')}): the switch creates them there`,
          },
        ]
      : [];
  return [
    {
      check: 'target.aliases',
      severity: 'block',
      safety: true,
      message: `the switch creates the aliases on ${target.displayUrl}, but there ${taken.join('; ')}`,
      action: 'remove them from the target cluster (or pick other alias names) and run plan again',
    },
  ];
}

/**
 * After a switch across clusters the write alias is gone from the source cluster. A writer still talking to it
 * and writing to that name would, with action.auto_create_index allowing it (the default), create an index of that
 * name and be acknowledged: writes lost for the migration. Said before anything moves, with the setting to change.
 */
export async function autoCreateRisk(source: Cluster, writeAlias: string | undefined): Promise<Finding[]> {
  if (!writeAlias) return [];
  const r = await source.request<{
    persistent?: Record<string, unknown>;
    transient?: Record<string, unknown>;
    defaults?: Record<string, unknown>;
  }>({
    method: 'GET',
    path: '/_cluster/settings',
    query: { include_defaults: true, flat_settings: true, filter_path: '*.action.auto_create_index' },
    idempotent: true,
  });
  const b = r.body;
  const value = String(
    b.transient?.['action.auto_create_index'] ??
      b.persistent?.['action.auto_create_index'] ??
      b.defaults?.['action.auto_create_index'] ??
      'true',
  );
  if (!allowsAutoCreate(value, writeAlias))
    return [
      {
        check: 'source.auto-create',
        severity: 'ok',
        message: `action.auto_create_index (${value}) keeps writers left on the source from creating an index named ${writeAlias} after the switch`,
      },
    ];
  return [
    {
      check: 'source.auto-create',
      severity: 'warn',
      message: `after the switch ${writeAlias} no longer exists on the source cluster, and action.auto_create_index is "${value}": a writer still on the source writing to ${writeAlias} would create an index of that name there and be acknowledged (\`cutover source-writes\` finds it afterwards)`,
      action: `move every writer to the target cluster right after the switch, or forbid that name first: PUT _cluster/settings {"persistent": {"action.auto_create_index": "-${writeAlias},${value === 'true' ? '+*' : value}"}}`,
    },
  ];
}

/** action.auto_create_index: true/false, or comma-separated +/- patterns where the first match decides. */
export function allowsAutoCreate(value: string, name: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  for (const raw of value.split(',').map((p) => p.trim())) {
    if (!raw) continue;
    const allow = !raw.startsWith('-');
    const pat = raw.replace(/^[+-]/, '');
    const re = new RegExp(`^${pat.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    if (re.test(name)) return allow;
  }
  return false;
}
