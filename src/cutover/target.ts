/** The target index: its mappings and settings, and the temporary settings that speed up the copy. */
import type { Cluster } from '../cluster/client.js';
import { canonicalJson, isObj, type Obj } from '../store/json.js';
import type { TemporarySettings } from '../store/state.js';
import { type Translation, translateBody } from './translate.js';

export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    // null in an override removes the key (e.g. a field the new mapping drops)
    if (v === null) delete out[k];
    else out[k] = isObj(v) ? deepMerge(isObj(out[k]) ? (out[k] as Obj) : {}, v) : v;
  }
  return out;
}

/** Expand flat "index.a.b" keys into nested objects so specs may use either form. */
export function nestSettings(flat: Obj): Obj {
  let out: Obj = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    let node: Obj = {};
    const root = node;
    parts.forEach((p, i) => {
      if (i === parts.length - 1) node[p] = isObj(v) ? nestSettings(v) : v;
      else node = node[p] = {} as Obj;
    });
    out = deepMerge(out, root);
  }
  return out;
}

/**
 * Settings of the source that describe the data and may be copied. Identity (uuid, creation date, version),
 * blocks (a frozen source must not freeze the target), routing of resize and lifecycle (a rollover alias on the
 * target would fire early) stay behind.
 */
const NOT_COPIED = [
  /^index\.(uuid|creation_date|creation_date_string|provided_name|version\.|history\.uuid|resize\.|shrink\.|split\.|verified_before_close)/,
  /^index\.blocks\./,
  /^index\.routing\.allocation\.initial_recovery/,
  /^index\.lifecycle\./,
  /^index\.plugins\.index_state_management\./,
  /^index\.opendistro\.index_state_management\./,
  /^index\.(replication|soft_deletes\.retention_lease)\./,
];

export function copyableSettings(flat: Obj): Obj {
  const kept: Obj = {};
  for (const [k, v] of Object.entries(flat)) if (!NOT_COPIED.some((re) => re.test(k))) kept[k] = v;
  return kept;
}

export interface TargetBody {
  settings: Obj;
  mappings: Obj;
  /** what was changed for the target's version (translate.ts), for `plan`; empty when nothing was */
  translations?: Translation[];
}

/**
 * The target index body: the spec's mappings/settings, or the source's (copyable settings only); translated for
 * the target's version and distribution (translate.ts); then the spec's overrides, which have the last word.
 */
export async function desiredTargetBody(
  source: Cluster,
  target: Cluster,
  sourceIndex: string,
  spec: {
    targetMappings?: Obj;
    targetSettings?: Obj;
    target: { mappingOverrides?: Obj; settingOverrides?: Obj; translate?: { keep: string[] } };
  },
): Promise<TargetBody> {
  let mappings = spec.targetMappings;
  let settings = spec.targetSettings ? nestSettings(spec.targetSettings) : undefined;
  if (!mappings) mappings = Object.values(await source.getMapping(sourceIndex))[0]?.mappings ?? {};
  if (!settings) {
    const flat = Object.values(await source.getSettings(sourceIndex))[0]?.settings ?? {};
    settings = nestSettings(copyableSettings(flat));
  }
  const t = translateBody({ settings, mappings }, await target.capabilities(), spec.target.translate?.keep);
  settings = t.settings;
  mappings = t.mappings;
  if (spec.target.mappingOverrides) mappings = deepMerge(mappings, spec.target.mappingOverrides);
  if (spec.target.settingOverrides)
    settings = deepMerge(settings, nestSettings(spec.target.settingOverrides));
  return { settings, mappings, translations: t.translations };
}

/** Canonical JSON (sorted keys) for comparing mappings. */
export const canonical = canonicalJson;

/** First path where two mappings differ, for an error the operator can act on. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return undefined;
  }
  return canonical(a) === canonical(b)
    ? undefined
    : `${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

const TEMP_KEYS = ['index.number_of_replicas', 'index.refresh_interval', 'index.gc_deletes'] as const;

/** While copying: no replicas to write twice, no refreshes, and tombstones kept long enough to stop resurrections. */
export const COPY_SETTINGS: Record<(typeof TEMP_KEYS)[number], string> = {
  'index.number_of_replicas': '0',
  'index.refresh_interval': '-1',
  'index.gc_deletes': '12h',
};

/** The values the target has set explicitly right now (null: not set, the cluster default applies). */
export async function readTemporaryKeys(cluster: Cluster, index: string): Promise<TemporarySettings> {
  const s = Object.values(await cluster.getSettings(index))[0]?.settings ?? {};
  const out = {} as TemporarySettings;
  for (const k of TEMP_KEYS)
    out[k] = typeof s[k] === 'string' ? (s[k] as string) : s[k] === undefined ? null : String(s[k]);
  return out;
}

export async function applySettings(
  cluster: Cluster,
  index: string,
  values: Record<string, string | null>,
): Promise<void> {
  await cluster.putSettings(index, values);
}
