/** Canonical comparison of documents: key order never matters, ignored paths are left out, differing fields named. */

import { canonicalJson, isObj, type Obj } from '../store/json.js';

export { canonicalJson };

/** A copy of `doc` without the dotted `paths` (e.g. "meta.updated_at"). */
export function withoutPaths(doc: Obj, paths: readonly string[]): Obj {
  if (paths.length === 0) return doc;
  const out = structuredClone(doc);
  for (const p of paths) {
    const parts = p.split('.');
    let node: unknown = out;
    for (let i = 0; i < parts.length - 1 && isObj(node); i++) node = node[parts[i]!];
    if (isObj(node)) delete node[parts[parts.length - 1]!];
  }
  return out;
}

/** Dotted paths of the leaves where two documents differ (at most `limit`). */
export function differingFields(a: unknown, b: unknown, limit = 20, path = '', out: string[] = []): string[] {
  if (out.length >= limit) return out;
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      differingFields(a[k], b[k], limit, path ? `${path}.${k}` : k, out);
    }
  } else if (canonicalJson(a) !== canonicalJson(b)) {
    out.push(path || '(document)');
  }
  return out;
}

/** Stable 32-bit hash (FNV-1a) of an id: the same documents are sampled on both sides and on every run. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function sampled(id: string, rate: number): boolean {
  return rate >= 1 || idHash(id) / 0x1_0000_0000 < rate;
}
