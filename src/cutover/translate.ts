/**
 * Translation of the target index body between versions and distributions: what the source has that the target
 * refuses is dropped or rewritten here, and every change is returned so `plan` lists it. Nothing is changed
 * silently, and `target.translate.keep` names the changes an operator does not want (the target then refuses the
 * body, and preflight says so with the field and the fix).
 *
 * Only what a target refuses outright is translated, and only where dropping it loses no data; what changes
 * behaviour (an index-time `boost` changes scoring) is left to the operator: the target-accepts check names it with
 * the override that removes it.
 */
import type { Capabilities } from '../cluster/capabilities.js';
import { isObj, type Obj } from '../store/json.js';

export interface Translation {
  /** the name `target.translate.keep` uses */
  id: string;
  /** what was done, for `plan` */
  change: string;
}

const ROOT_MAPPING_KEYS = new Set([
  'properties',
  'dynamic',
  'dynamic_templates',
  'dynamic_date_formats',
  'date_detection',
  'numeric_detection',
  '_source',
  '_routing',
  '_meta',
  '_field_names',
  '_size',
  'runtime',
  'subobjects',
  '_data_stream_timestamp',
  'enabled',
]);

const name = (c: Capabilities) =>
  `${c.distribution === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} ${c.major}`;

/** ES 8+ and OpenSearch 2+ only create indices with soft deletes. */
const refusesSoftDeletesOff = (t: Capabilities) =>
  (t.distribution === 'elasticsearch' && t.major >= 8) || (t.distribution === 'opensearch' && t.major >= 2);

/** Index settings removed in Elasticsearch 8 (refused as unknown on a new index). */
const REMOVED_IN_ES8: Record<string, string> = {
  'index.max_adjacency_matrix_filters': 'replaced by indices.query.bool.max_clause_count in Elasticsearch 8',
  'index.frozen': 'frozen indices are gone in Elasticsearch 8',
  'index.search.throttled': 'frozen indices are gone in Elasticsearch 8',
  'index.mapping.single_type': 'a 6.x leftover: indices have one type since 7',
};

/**
 * Translate `body` (nested settings, mappings) for `target`. `keep` lists translation ids left undone.
 * Returns a new body; the input is not changed.
 */
export function translateBody(
  body: { settings: Obj; mappings: Obj },
  target: Capabilities,
  keep: readonly string[] = [],
): { settings: Obj; mappings: Obj; translations: Translation[] } {
  const settings = structuredClone(body.settings);
  let mappings = structuredClone(body.mappings);
  const translations: Translation[] = [];
  const apply = (id: string, change: string, act: () => void) => {
    if (keep.includes(id)) return;
    act();
    translations.push({ id, change });
  };
  const index = isObj(settings.index) ? settings.index : undefined;

  // `_type` leftover: mappings still wrapped in a type name (`{ "_doc": { "properties": ... } }`).
  const roots = Object.keys(mappings);
  if (roots.length === 1 && !ROOT_MAPPING_KEYS.has(roots[0]!) && isObj(mappings[roots[0]!])) {
    const typeName = roots[0]!;
    const inner = mappings[typeName] as Obj;
    if (Object.keys(inner).some((k) => ROOT_MAPPING_KEYS.has(k)))
      apply('_type', `unwrapped the mapping type "${typeName}" (indices have no types since 7)`, () => {
        mappings = inner;
      });
  }

  const softDeletes = isObj(index?.soft_deletes) ? (index.soft_deletes as Obj) : undefined;
  if (softDeletes && String(softDeletes.enabled) === 'false' && refusesSoftDeletesOff(target))
    apply(
      'index.soft_deletes.enabled',
      `dropped index.soft_deletes.enabled=false (refused by ${name(target)}): the target index gets soft deletes on, which _seq_no capture needs anyway`,
      () => {
        delete softDeletes.enabled;
        if (Object.keys(softDeletes).length === 0) delete index!.soft_deletes;
      },
    );

  const fieldNames = isObj(mappings._field_names) ? mappings._field_names : undefined;
  if (fieldNames && 'enabled' in fieldNames && target.distribution === 'elasticsearch' && target.major >= 8)
    apply(
      '_field_names',
      `mapping translation: dropped _field_names.enabled=${String(fieldNames.enabled)} (refused by ${name(target)}; exists queries work as before)`,
      () => {
        delete fieldNames.enabled;
        if (Object.keys(fieldNames).length === 0) delete mappings._field_names;
      },
    );

  if (target.distribution === 'elasticsearch' && target.major >= 8 && index) {
    for (const [key, why] of Object.entries(REMOVED_IN_ES8)) {
      const path = key.split('.').slice(1);
      const parent = path
        .slice(0, -1)
        .reduce<Obj | undefined>((n, p) => (isObj(n?.[p]) ? (n[p] as Obj) : undefined), index);
      const leaf = path.at(-1)!;
      if (parent && leaf in parent)
        apply(
          key,
          `dropped ${key}=${JSON.stringify(parent[leaf])} (unknown to ${name(target)}: ${why})`,
          () => {
            delete parent[leaf];
          },
        );
    }
  }
  return { settings, mappings, translations };
}
