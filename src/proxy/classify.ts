/**
 * What a request to the data port is, from its method, path and query alone (the body is never looked at here).
 * A request that may change a document of the migrated index must come out as `doc`, `bulk` or `by-query` with
 * `migrated` set: anything else is streamed through unjournaled. So the rule errs one way: an index expression
 * that might name the migrated index (a wildcard, `_all`, a list) counts as naming it.
 */
import type { DocOp } from './journal.js';

/** The names the application may use for the migrated index: its concrete name and every alias in the spec. */
export type MigratedNames = ReadonlySet<string>;

export interface DocWrite {
  kind: 'doc';
  op: DocOp;
  /** the index as the application named it (alias or concrete) */
  index: string;
  /** absent: the server generates it (POST /{index}/_doc) */
  id?: string;
  routing?: string;
  /** if_seq_no / if_primary_term: values from the old index, meaningless on the new one */
  optimistic: boolean;
  migrated: boolean;
}

export interface BulkWrite {
  kind: 'bulk';
  /** the index in the path (`/{index}/_bulk`): the default for action lines without `_index` */
  defaultIndex?: string;
  /** `?routing=`: the default for action lines without one */
  defaultRouting?: string;
  /** whether the bulk concerns the migrated index is known only from its action lines */
}

export interface ByQueryWrite {
  kind: 'by-query';
  op: 'delete_by_query' | 'update_by_query' | 'reindex';
  /** the index expression as named (may be a list or a wildcard); `_reindex`: its `dest.index`, once read */
  index: string;
  migrated: boolean;
  /** `_reindex`: where it writes is in the body (`dest.index`), read by the server before deciding */
  destInBody?: boolean;
}

export type Classified =
  | { kind: 'read' }
  | DocWrite
  | BulkWrite
  | ByQueryWrite
  /** `GET /_nodes/.../http`: client sniffing, answered with the proxy's own address */
  | { kind: 'sniff' }
  /** anything else that is not a read (index creation, settings, aliases...): streamed through */
  | { kind: 'other' };

export interface RequestFacts {
  classified: Classified;
  /** `?refresh=`: passed through; a held write with refresh=wait_for also waits for the refresh */
  refresh?: string;
  /** `?filter_path=`: may hide the response fields the journal needs (ids, `_index`, bulk items) */
  filterPath?: string;
}

/** Endpoints that read, even with POST (search bodies). */
const READ_ENDPOINTS = new Set([
  '_search',
  '_msearch',
  '_count',
  '_mget',
  '_explain',
  '_field_caps',
  '_validate',
  '_termvectors',
  '_mtermvectors',
  '_search_shards',
  '_rank_eval',
  '_knn_search',
  '_terms_enum',
  '_async_search',
  '_pit',
  '_search_template',
  '_msearch_template',
  '_render',
  '_sql',
  '_eql',
  '_analyze',
  '_refresh',
  '_flush',
  '_cache',
]);

/** `_nodes` sub-APIs that are not node info (they carry no http publish address). */
const NODES_NOT_INFO = new Set([
  'stats',
  'hot_threads',
  'hotthreads',
  'usage',
  'reload_secure_settings',
  '_repositories_metering',
  'shutdown',
]);

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `prod*` style pattern (Elasticsearch index expressions know only `*`). */
function wildcardMatches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`);
  return re.test(name);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * An index expression names the migrated index if any of its parts names or matches one of its names.
 * Exclusions (`-foo`) never add an index; date math (`<logs-{now/d}>`) cannot be resolved here and counts.
 */
export function namesMigrated(expression: string, names: MigratedNames): boolean {
  for (const raw of expression.split(',')) {
    const part = raw.trim();
    if (!part || part.startsWith('-')) continue;
    if (part === '_all' || part === '*' || part.startsWith('<')) return true;
    // `remote:index` names another cluster's index.
    if (part.includes(':')) continue;
    if (part.includes('*')) {
      for (const n of names) if (wildcardMatches(part, n)) return true;
    } else if (names.has(part)) return true;
  }
  return false;
}

function query(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  return v === null ? undefined : v;
}

function docWrite(
  op: DocOp,
  index: string,
  id: string | undefined,
  q: URLSearchParams,
  names: MigratedNames,
): DocWrite {
  const routing = query(q, 'routing');
  const w: DocWrite = {
    kind: 'doc',
    op: op === 'index' && query(q, 'op_type') === 'create' ? 'create' : op,
    index,
    optimistic: q.has('if_seq_no') || q.has('if_primary_term'),
    migrated: names.has(index),
  };
  if (id !== undefined) w.id = id;
  if (routing !== undefined) w.routing = routing;
  return w;
}

function classifyPath(
  method: string,
  segments: string[],
  q: URLSearchParams,
  names: MigratedNames,
): Classified {
  const m = method.toUpperCase();
  const [first, second, third] = segments;
  const n = segments.length;

  if (m === 'GET' && first === '_nodes' && !segments.some((s) => NODES_NOT_INFO.has(s)))
    return { kind: 'sniff' };
  if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return { kind: 'read' };
  if (segments.some((s) => READ_ENDPOINTS.has(s))) return { kind: 'read' };

  if (first === '_bulk' && n === 1 && (m === 'POST' || m === 'PUT')) {
    const b: BulkWrite = { kind: 'bulk' };
    const routing = query(q, 'routing');
    if (routing !== undefined) b.defaultRouting = routing;
    return b;
  }
  // `_reindex` writes into `dest.index`, named in its body: the server reads it before it decides.
  if (first === '_reindex' && n === 1 && m === 'POST')
    return { kind: 'by-query', op: 'reindex', index: '', migrated: false, destInBody: true };
  if (first === undefined || (first.startsWith('_') && first !== '_all')) return { kind: 'other' };

  const index = first;
  if (second === '_bulk' && n === 2 && (m === 'POST' || m === 'PUT')) {
    const b: BulkWrite = { kind: 'bulk', defaultIndex: index };
    const routing = query(q, 'routing');
    if (routing !== undefined) b.defaultRouting = routing;
    return b;
  }
  if ((second === '_delete_by_query' || second === '_update_by_query') && n === 2 && m === 'POST')
    return {
      kind: 'by-query',
      op: second.slice(1) as ByQueryWrite['op'],
      index,
      migrated: namesMigrated(index, names),
    };
  if (second === '_doc') {
    if (n === 2 && m === 'POST') return docWrite('index', index, undefined, q, names);
    if (n === 3 && (m === 'PUT' || m === 'POST')) return docWrite('index', index, third, q, names);
    if (n === 3 && m === 'DELETE') return docWrite('delete', index, third, q, names);
  }
  if (second === '_create' && n === 3 && (m === 'PUT' || m === 'POST'))
    return docWrite('create', index, third, q, names);
  if (second === '_update' && n === 3 && m === 'POST') return docWrite('update', index, third, q, names);
  // Elasticsearch 7.x still routes typed paths (`/{index}/{type}/{id}`): the same writes under a custom type.
  if (second !== undefined && !second.startsWith('_')) {
    const fourth = segments[3];
    if (n === 2 && m === 'POST') return docWrite('index', index, undefined, q, names);
    if (n === 3 && (m === 'PUT' || m === 'POST')) return docWrite('index', index, third, q, names);
    if (n === 3 && m === 'DELETE') return docWrite('delete', index, third, q, names);
    if (n === 4 && fourth === '_create' && (m === 'PUT' || m === 'POST'))
      return docWrite('create', index, third, q, names);
    if (n === 4 && fourth === '_update' && m === 'POST') return docWrite('update', index, third, q, names);
  }
  return { kind: 'other' };
}

/**
 * Classify one request. `path` is the raw path (percent-encoded segments, no query); `search` the raw query
 * string, with or without its `?`.
 */
export function classify(method: string, path: string, search: string, names: MigratedNames): RequestFacts {
  const q = new URLSearchParams(search.startsWith('?') ? search.slice(1) : search);
  // Empty segments (`//`, a trailing `/`) mean nothing to Elasticsearch's router either.
  const segments = path.split('/').filter(Boolean).map(decode);
  const facts: RequestFacts = { classified: classifyPath(method, segments, q, names) };
  const refresh = query(q, 'refresh');
  const filterPath = query(q, 'filter_path');
  if (refresh !== undefined) facts.refresh = refresh;
  if (filterPath !== undefined) facts.filterPath = filterPath;
  return facts;
}

/** The names of the migrated index the spec knows: concrete, the spec's source.index, write and read aliases. */
export function migratedNames(sourceIndex: string, names: readonly string[]): Set<string> {
  return new Set([sourceIndex, ...names].filter((n) => n.length > 0));
}
