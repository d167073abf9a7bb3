/** What a search answers with, as cutover reads it (shared by the client and the search page scanner). */
export interface Hit<S = Record<string, unknown>> {
  _index: string;
  _id: string;
  _routing?: string;
  _seq_no?: number;
  _primary_term?: number;
  _version?: number;
  _source?: S;
  /** the `_source` exactly as the server sent it, unparsed: a view into the page's bytes (search-page.ts) */
  _raw?: Buffer;
  sort?: unknown[];
}

export interface SearchResponse<S = Record<string, unknown>> {
  took: number;
  timed_out: boolean;
  pit_id?: string;
  _scroll_id?: string;
  _shards: { total: number; successful: number; failed: number; failures?: unknown[] };
  hits: { total?: { value: number; relation: string } | number; hits: Hit<S>[] };
}
