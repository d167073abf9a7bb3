/**
 * Field-by-field comparison of the source and target mappings. Each change is classified:
 *   safe     — every existing value indexes and reads back the same;
 *   lossy    — values index but something is lost (precision, a field, exact matching, unknown fields);
 *   breaking — some existing values will be rejected by the new mapping (dead letters).
 * The sample dry run is what proves it on real documents; this says what to look for.
 */

export type ChangeClass = 'safe' | 'lossy' | 'breaking';

export interface MappingChange {
  path: string;
  change: string;
  class: ChangeClass;
}

import { isObj, type Obj } from '../store/json.js';

interface FieldDef {
  type: string;
  def: Obj;
}

/** Flatten `properties` (and multi-field `fields`) into dotted paths. */
export function flattenFields(
  mappings: Obj,
  prefix = '',
  out = new Map<string, FieldDef>(),
): Map<string, FieldDef> {
  const props = isObj(mappings.properties) ? mappings.properties : {};
  for (const [name, raw] of Object.entries(props)) {
    if (!isObj(raw)) continue;
    const path = prefix ? `${prefix}.${name}` : name;
    const type = typeof raw.type === 'string' ? raw.type : isObj(raw.properties) ? 'object' : 'object';
    out.set(path, { type, def: raw });
    if (isObj(raw.properties)) flattenFields(raw, path, out);
    if (isObj(raw.fields)) {
      for (const [sub, subDef] of Object.entries(raw.fields)) {
        if (isObj(subDef)) out.set(`${path}.${sub}`, { type: String(subDef.type ?? 'object'), def: subDef });
      }
    }
  }
  return out;
}

const INTEGER_RANK: Record<string, number> = { byte: 1, short: 2, integer: 3, long: 4, unsigned_long: 5 };
const FLOAT_RANK: Record<string, number> = { half_float: 1, float: 2, double: 3 };
const NUMERIC = new Set([...Object.keys(INTEGER_RANK), ...Object.keys(FLOAT_RANK), 'scaled_float']);
const STRINGY = new Set(['text', 'keyword', 'match_only_text', 'wildcard', 'constant_keyword']);

export function classifyTypeChange(from: string, to: string): { class: ChangeClass; why: string } {
  if (from === to) return { class: 'safe', why: 'same type' };
  if (INTEGER_RANK[from] && INTEGER_RANK[to]) {
    return INTEGER_RANK[to]! > INTEGER_RANK[from]!
      ? { class: 'safe', why: 'wider integer' }
      : { class: 'breaking', why: `values outside the ${to} range are rejected` };
  }
  if (FLOAT_RANK[from] && FLOAT_RANK[to]) {
    return FLOAT_RANK[to]! > FLOAT_RANK[from]!
      ? { class: 'safe', why: 'wider float' }
      : { class: 'lossy', why: `precision drops to ${to}` };
  }
  if (INTEGER_RANK[from] && FLOAT_RANK[to])
    return { class: 'lossy', why: `large integers lose precision as ${to}` };
  if (FLOAT_RANK[from] && INTEGER_RANK[to]) return { class: 'lossy', why: 'fractions are truncated' };
  if (NUMERIC.has(from) && to === 'scaled_float')
    return { class: 'lossy', why: 'values are rounded to the scaling factor' };
  if (NUMERIC.has(from) && STRINGY.has(to))
    return { class: 'safe', why: `numbers index as ${to} strings (range queries become lexical)` };
  if (STRINGY.has(from) && NUMERIC.has(to))
    return { class: 'breaking', why: `strings that are not numbers are rejected by ${to}` };
  if (from === 'text' && to === 'keyword')
    return { class: 'lossy', why: 'no full-text search; values longer than ignore_above are not indexed' };
  if (from === 'keyword' && to === 'text')
    return { class: 'lossy', why: 'no exact match, sorting or aggregations on the field' };
  if (STRINGY.has(from) && to === 'date')
    return { class: 'breaking', why: 'strings not in the date format are rejected' };
  if (STRINGY.has(from) && to === 'boolean')
    return { class: 'breaking', why: 'only true/false strings are accepted' };
  if (from === 'date' && STRINGY.has(to))
    return { class: 'safe', why: 'dates index as strings (range queries become lexical)' };
  if (from === 'object' && to === 'nested')
    return { class: 'safe', why: 'queries on it must become nested queries' };
  if (from === 'nested' && to === 'object')
    return { class: 'lossy', why: 'array elements are flattened (cross-object matches)' };
  if (from === 'object' || to === 'object')
    return { class: 'breaking', why: `an ${from} cannot be indexed as ${to}` };
  return { class: 'breaking', why: `${from} values may not be valid ${to} values` };
}

export function diffMappings(source: Obj, target: Obj): MappingChange[] {
  const changes: MappingChange[] = [];
  const s = flattenFields(source);
  const t = flattenFields(target);
  for (const [path, sf] of s) {
    const tf = t.get(path);
    if (!tf) {
      changes.push({ path, change: `removed (${sf.type})`, class: 'lossy' });
      continue;
    }
    if (sf.type !== tf.type) {
      const c = classifyTypeChange(sf.type, tf.type);
      changes.push({ path, change: `${sf.type} -> ${tf.type}: ${c.why}`, class: c.class });
    }
    if (sf.type === 'date' && tf.type === 'date' && (sf.def.format ?? null) !== (tf.def.format ?? null)) {
      changes.push({
        path,
        change: `date format ${JSON.stringify(sf.def.format ?? 'default')} -> ${JSON.stringify(tf.def.format ?? 'default')}`,
        class: 'breaking',
      });
    }
    for (const key of ['analyzer', 'search_analyzer', 'normalizer']) {
      if ((sf.def[key] ?? null) !== (tf.def[key] ?? null)) {
        changes.push({
          path,
          change: `${key} ${JSON.stringify(sf.def[key] ?? 'default')} -> ${JSON.stringify(tf.def[key] ?? 'default')}`,
          class: 'safe',
        });
      }
    }
    if (
      tf.type === 'keyword' &&
      typeof tf.def.ignore_above === 'number' &&
      tf.def.ignore_above !== sf.def.ignore_above
    ) {
      changes.push({
        path,
        change: `ignore_above ${sf.def.ignore_above ?? 'none'} -> ${tf.def.ignore_above}`,
        class: 'lossy',
      });
    }
    if (tf.def.index === false && sf.def.index !== false)
      changes.push({ path, change: 'no longer indexed', class: 'lossy' });
    if (tf.def.coerce === false && sf.def.coerce !== false)
      changes.push({ path, change: 'coerce off: numbers sent as strings are rejected', class: 'breaking' });
  }
  for (const [path, tf] of t)
    if (!s.has(path)) changes.push({ path, change: `added (${tf.type})`, class: 'safe' });
  const sd = String(source.dynamic ?? 'true');
  const td = String(target.dynamic ?? 'true');
  if (sd !== td) {
    const cls: ChangeClass =
      td === 'strict' ? 'breaking' : td === 'false' || td === 'runtime' ? 'lossy' : 'safe';
    changes.push({
      path: '(dynamic)',
      change: `${sd} -> ${td}${td === 'strict' ? ': documents with unmapped fields are rejected' : td === 'false' ? ': unmapped fields are kept in _source but not indexed' : ''}`,
      class: cls,
    });
  }
  if (JSON.stringify(source.dynamic_templates ?? []) !== JSON.stringify(target.dynamic_templates ?? [])) {
    changes.push({
      path: '(dynamic_templates)',
      change: 'dynamic templates differ: new fields may map to other types',
      class: 'lossy',
    });
  }
  return changes;
}
