/** What a cluster can do, decided from its distribution and version (probed once per client). */

export type Distribution = 'elasticsearch' | 'opensearch';

export interface Capabilities {
  distribution: Distribution;
  version: string;
  major: number;
  minor: number;
  /** 'es': POST /<index>/_pit + DELETE /_pit; 'opensearch': POST /<index>/_search/point_in_time; null: scroll only */
  pit: 'es' | 'opensearch' | null;
  /** `_shard_doc` sort tiebreaker inside a PIT */
  shardDocSort: boolean;
  /** `seq_no_primary_term: true` returns _seq_no/_primary_term on hits */
  seqNoPrimaryTerm: boolean;
  /** server-side `_reindex` (module present) */
  reindex: boolean;
  /** painless scripts (module lang-painless present) */
  painless: boolean;
  /** `PUT <index>/_block/write`, which waits for the writes admitted before the block (ES 7.9+, every OpenSearch) */
  writeBlockApi: boolean;
}

export function parseVersion(v: string): { major: number; minor: number } {
  const m = /^(\d+)\.(\d+)/.exec(v);
  if (!m) throw new Error(`cannot parse cluster version "${v}"`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

const atLeast = (v: { major: number; minor: number }, major: number, minor: number) =>
  v.major > major || (v.major === major && v.minor >= minor);

export function capabilitiesFor(
  distribution: Distribution,
  version: string,
  modules: string[],
): Capabilities {
  const v = parseVersion(version);
  const es = distribution === 'elasticsearch';
  return {
    distribution,
    version,
    ...v,
    pit: es ? (atLeast(v, 7, 10) ? 'es' : null) : atLeast(v, 2, 4) ? 'opensearch' : null,
    shardDocSort: es ? atLeast(v, 7, 12) : false,
    seqNoPrimaryTerm: es ? atLeast(v, 6, 7) : true,
    reindex: modules.includes('reindex'),
    painless: modules.includes('lang-painless'),
    writeBlockApi: es ? atLeast(v, 7, 9) : true,
  };
}
