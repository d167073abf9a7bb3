/**
 * Concurrent "application writers" for live-migration chaos tests, and an exact oracle of the final state they
 * leave behind.
 *
 * Writers pick random ids from a shared, overlapping id space and index, partially update, delete, re-create and
 * (OpenSearch) script-update them through a write alias, never forcing a refresh; on request they also create
 * documents without an id (`POST /<alias>/_doc`: the id comes from the answer, a new one each time). Every
 * acknowledged write is logged with the `_index`, `_seq_no` and `_primary_term` the server answered and the
 * document state it left (the sent document for index/create, `get._source` for updates, null for deletes). A
 * write the server answered with a 4xx is refused (not applied); a write without an answer (or with a 5xx) is
 * ambiguous. An ambiguous auto-id create names no id at all: it is kept apart (`ambiguousCreates`), and the
 * comparison lets it explain at most one document nobody else wrote whose content is exactly its own.
 *
 * The oracle: for each id, the acknowledged op applied last wins, ordered by (generation of `_index` in the
 * migration's ordered index list, primary term, seq_no). Ops on the old index all precede ops on the new index
 * because the old index is write-blocked before the alias moves.
 *
 * Requests are sent once (never `idempotent`, so the transport does not retry them) with the Cluster's request
 * timeout, which must stay well above any SIGSTOP a test inflicts (`writerClusterOf` uses 120 s).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from '../../src/cluster/client.js';
import { ClusterError, parseErrorBody, TransportError } from '../../src/cluster/errors.js';
import type { RequestOptions } from '../../src/cluster/transport.js';
import type { TestCluster } from './clusters.js';
import { canon, type Docs } from './data.js';

export type Doc = Record<string, unknown>;

/**
 * `recreate-delete` and `recreate` are the two halves of a re-create (delete, then `_create` of the same id);
 * `autoid` is a create without an id (the answer names it).
 */
export type OpKind = 'index' | 'update' | 'delete' | 'recreate-delete' | 'recreate' | 'script' | 'autoid';
export const OP_KINDS: readonly OpKind[] = [
  'index',
  'update',
  'delete',
  'recreate-delete',
  'recreate',
  'script',
  'autoid',
];
type Choice = 'index' | 'update' | 'delete' | 'recreate' | 'script' | 'autoid';

export type RefusalReason = 'cluster_block_exception' | 'version_conflict' | 'document_missing' | 'other';
export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'cluster_block_exception',
  'version_conflict',
  'document_missing',
  'other',
];

/** What an op meant to do, so an ambiguous one can be replayed onto candidate states. */
export type Intent =
  | { op: 'index'; doc: Doc }
  | { op: 'create'; doc: Doc }
  | { op: 'delete' }
  | { op: 'update'; doc: Doc }
  | { op: 'script'; field: string; by: number };

export interface AckedOp {
  id: string;
  /** concrete index that applied the op (the response's `_index`) */
  index: string;
  seqNo: number;
  primaryTerm: number;
  kind: OpKind;
  /** created | updated | deleted | noop | not_found */
  result: string;
  /** the document after the op; null = absent */
  state: Doc | null;
  writer: number;
  sentAt: number;
  ackedAt: number;
}

export interface RefusedOp {
  id: string;
  kind: OpKind;
  reason: RefusalReason;
  status: number | undefined;
  type: string;
  message: string;
  writer: number;
  at: number;
}

export interface AmbiguousOp {
  /** '' for an auto-id create: its id was in the answer that never came */
  id: string;
  kind: OpKind;
  intent: Intent;
  error: string;
  writer: number;
  sentAt: number;
  at: number;
}

export interface WriterStats {
  running: boolean;
  /** requests sent */
  ops: number;
  inFlight: number;
  acked: number;
  refused: number;
  /** ambiguous ops, auto-id creates among them */
  ambiguous: number;
  /** ambiguous auto-id creates: whether they created a document, and under which id, cannot be known */
  ambiguousAutoId: number;
  ackedByKind: Record<OpKind, number>;
  ackedByIndex: Record<string, number>;
  refusedByReason: Record<RefusalReason, number>;
  lastAckAt: number | undefined;
}

export interface WriterReport extends WriterStats {
  /** every acknowledged write, in acknowledgement order */
  log: AckedOp[];
  refusals: RefusedOp[];
  /** ambiguous ops on known ids */
  ambiguousOps: AmbiguousOp[];
  /** ambiguous auto-id creates (id ''): each may have created one document under an id nobody learned */
  ambiguousCreates: AmbiguousOp[];
  /** the id space the writers drew from */
  ids: string[];
  seed: number;
  startedAt: number;
  stoppedAt: number;
}

export interface WritersOptions {
  cluster: Cluster;
  alias: string;
  /** concurrent writer loops (default 8) */
  writers?: number;
  /** size of the shared id space (`w-0` .. `w-<n-1>`, default 400), or the ids themselves */
  ids?: number | readonly string[];
  /** further existing ids (e.g. of seeded documents) the writers may also touch */
  seedIds?: readonly string[];
  /** ops per second per writer (default 25); a slow answer is not made up for by a burst afterwards */
  ratePerWriter?: number;
  /** painless scripted updates too (OpenSearch; the Elasticsearch test servers have no painless) */
  scripted?: boolean;
  /** a full document for index/create; n is unique across all writers */
  makeDoc?: (id: string, n: number) => Doc;
  /** the `doc` of a partial update; the default sometimes repeats itself so that "noop" answers happen */
  makeUpdate?: (id: string, n: number, random: () => number) => Doc;
  /** relative weights of the op kinds (defaults: index 3, update 3, delete 1.5, recreate 1, script 1.5, autoid 0) */
  mix?: Partial<Record<Choice, number>>;
  /** PRNG seed for the writers' choices (timing stays nondeterministic); default random */
  seed?: number;
}

export interface WritersHandle {
  /** stop picking new ops, wait for the ones in flight, return everything */
  stop(): Promise<WriterReport>;
  stats(): WriterStats;
}

/** The default document shape: the scenario's source shape (title, qty, tags, n) plus a counter for scripts. */
export function defaultDoc(id: string, n: number): Doc {
  return {
    title: `${id} #${n}`,
    qty: String(Math.abs(n) % 100),
    tags: ['w', `k${Math.abs(n) % 7}`],
    n,
    counter: 0,
    flag: true,
  };
}

function defaultUpdate(_id: string, n: number, random: () => number): Doc {
  // Setting the flag a document already has is a noop: documents start with `flag: true`.
  const r = random();
  return r < 0.25 ? { flag: true } : r < 0.35 ? { flag: false } : { u: n };
}

/** A Cluster for writers: one answer per request, waited for up to `timeoutMs` (SIGSTOPs of up to 30 s). */
export function writerClusterOf(t: TestCluster, timeoutMs = 120_000): Cluster {
  return new Cluster({
    url: t.url,
    auth: t.username && t.password ? { username: t.username, password: t.password } : undefined,
    tls: t.caFile ? { caFile: t.caFile } : undefined,
    requestTimeoutMs: timeoutMs,
    connections: 32,
  });
}

/** Nothing was sent: these transport failures cannot have applied the write. */
const NOT_SENT = /^(ECONNREFUSED|UND_ERR_CONNECT_TIMEOUT|ENOTFOUND|EAI_AGAIN)$/;

const SCRIPT = 'ctx._source.counter = (ctx._source.counter == null ? 0 : ctx._source.counter) + params.by';

interface WriteAck {
  _index?: string;
  _id?: string;
  _seq_no?: number;
  _primary_term?: number;
  result?: string;
  get?: { found?: boolean; _source?: Doc };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export function refusalReason(status: number | undefined, type: string): RefusalReason {
  if (type === 'cluster_block_exception') return 'cluster_block_exception';
  if (type === 'version_conflict_engine_exception' || status === 409) return 'version_conflict';
  if (type === 'document_missing_exception') return 'document_missing';
  return 'other';
}

export function startWriters(opts: WritersOptions): WritersHandle {
  const { cluster, alias } = opts;
  const writers = opts.writers ?? 8;
  const rate = opts.ratePerWriter ?? 25;
  const interval = 1000 / rate;
  const base =
    typeof opts.ids === 'object'
      ? [...opts.ids]
      : Array.from({ length: opts.ids ?? 400 }, (_, i) => `w-${i}`);
  const ids = [...new Set([...base, ...(opts.seedIds ?? [])])];
  if (ids.length === 0) throw new Error('startWriters: empty id space');
  const makeDoc = opts.makeDoc ?? defaultDoc;
  const makeUpdate = opts.makeUpdate ?? defaultUpdate;
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const weights: Array<[Choice, number]> = (
    [
      ['index', opts.mix?.index ?? 3],
      ['update', opts.mix?.update ?? 3],
      ['delete', opts.mix?.delete ?? 1.5],
      ['recreate', opts.mix?.recreate ?? 1],
      ['script', opts.scripted ? (opts.mix?.script ?? 1.5) : 0],
      ['autoid', opts.mix?.autoid ?? 0],
    ] as Array<[Choice, number]>
  ).filter(([, w]) => w > 0);
  const total = weights.reduce((s, [, w]) => s + w, 0);
  if (total <= 0) throw new Error('startWriters: no op kind has a positive weight');

  const enc = encodeURIComponent;
  const docPath = (id: string) => `/${enc(alias)}/_doc/${enc(id)}`;
  const log: AckedOp[] = [];
  const refusals: RefusedOp[] = [];
  const ambiguousOps: AmbiguousOp[] = [];
  const ambiguousCreates: AmbiguousOp[] = [];
  const st: WriterStats = {
    running: true,
    ops: 0,
    inFlight: 0,
    acked: 0,
    refused: 0,
    ambiguous: 0,
    ambiguousAutoId: 0,
    ackedByKind: zeroes(OP_KINDS),
    ackedByIndex: {},
    refusedByReason: zeroes(REFUSAL_REASONS),
    lastAckAt: undefined,
  };
  const startedAt = Date.now();
  const stopper = new AbortController();
  let counter = 0;

  const refuse = (
    w: number,
    kind: OpKind,
    id: string,
    status: number | undefined,
    type: string,
    msg: string,
  ) => {
    const reason = refusalReason(status, type);
    refusals.push({ id, kind, reason, status, type, message: msg, writer: w, at: Date.now() });
    st.refused++;
    st.refusedByReason[reason]++;
  };
  const ambiguous = (w: number, kind: OpKind, id: string, intent: Intent, sentAt: number, error: string) => {
    const a: AmbiguousOp = { id, kind, intent, error, writer: w, sentAt, at: Date.now() };
    st.ambiguous++;
    if (kind === 'autoid') {
      ambiguousCreates.push(a);
      st.ambiguousAutoId++;
    } else ambiguousOps.push(a);
  };

  /** One request, sent once. True when acknowledged. For `autoid`, `id` is '' and the answer's `_id` is logged. */
  async function send(
    w: number,
    kind: OpKind,
    id: string,
    req: RequestOptions,
    intent: Intent,
  ): Promise<boolean> {
    const sentAt = Date.now();
    st.ops++;
    st.inFlight++;
    try {
      let res: { status: number; body: WriteAck };
      try {
        res = await cluster.request<WriteAck>(req);
      } catch (e) {
        if (e instanceof ClusterError) {
          // A 5xx on a single-document write does not prove the write was not applied.
          if (e.status >= 500) ambiguous(w, kind, id, intent, sentAt, e.message);
          else refuse(w, kind, id, e.status, e.type, e.message);
          return false;
        }
        if (e instanceof TransportError) {
          if (e.code && NOT_SENT.test(e.code))
            refuse(w, kind, id, undefined, `transport:${e.code}`, e.message);
          else ambiguous(w, kind, id, intent, sentAt, e.message);
          return false;
        }
        throw e;
      }
      const b = res.body;
      if (res.status === 404 && b?.result !== 'not_found') {
        // okStatuses [404] is only set for deletes: this is an error body (e.g. index_not_found), not a tombstone.
        const { type, reason } = parseErrorBody(b);
        refuse(w, kind, id, 404, type, reason);
        return false;
      }
      if (
        !b ||
        (kind === 'autoid' && typeof b._id !== 'string') ||
        typeof b._index !== 'string' ||
        typeof b._seq_no !== 'number' ||
        typeof b._primary_term !== 'number' ||
        typeof b.result !== 'string'
      ) {
        ambiguous(w, kind, id, intent, sentAt, `acknowledged without _index/_seq_no: ${JSON.stringify(b)}`);
        return false;
      }
      let state: Doc | null;
      if (intent.op === 'delete') state = null;
      else if (intent.op === 'index' || intent.op === 'create') state = intent.doc;
      else if (b.get?._source && typeof b.get._source === 'object') state = b.get._source;
      else {
        ambiguous(
          w,
          kind,
          id,
          intent,
          sentAt,
          `update acknowledged without get._source: ${JSON.stringify(b)}`,
        );
        return false;
      }
      const ackedAt = Date.now();
      log.push({
        id: kind === 'autoid' ? b._id! : id,
        index: b._index,
        seqNo: b._seq_no,
        primaryTerm: b._primary_term,
        kind,
        result: b.result,
        state,
        writer: w,
        sentAt,
        ackedAt,
      });
      st.acked++;
      st.ackedByKind[kind]++;
      st.ackedByIndex[b._index] = (st.ackedByIndex[b._index] ?? 0) + 1;
      st.lastAckAt = ackedAt;
      return true;
    } finally {
      st.inFlight--;
    }
  }

  async function op(w: number, id: string, choice: string, random: () => number): Promise<void> {
    const n = counter++;
    switch (choice) {
      case 'index': {
        const doc = makeDoc(id, n);
        await send(w, 'index', id, { method: 'PUT', path: docPath(id), body: doc }, { op: 'index', doc });
        return;
      }
      case 'update': {
        const doc = makeUpdate(id, n, random);
        await send(
          w,
          'update',
          id,
          { method: 'POST', path: `/${enc(alias)}/_update/${enc(id)}`, body: { doc, _source: true } },
          { op: 'update', doc },
        );
        return;
      }
      case 'delete':
        await send(
          w,
          'delete',
          id,
          { method: 'DELETE', path: docPath(id), okStatuses: [404] },
          { op: 'delete' },
        );
        return;
      case 'recreate': {
        const deleted = await send(
          w,
          'recreate-delete',
          id,
          { method: 'DELETE', path: docPath(id), okStatuses: [404] },
          { op: 'delete' },
        );
        if (!deleted || stopper.signal.aborted) return;
        const doc = makeDoc(id, n);
        await send(
          w,
          'recreate',
          id,
          { method: 'PUT', path: `/${enc(alias)}/_create/${enc(id)}`, body: doc },
          { op: 'create', doc },
        );
        return;
      }
      case 'autoid': {
        // A new document every time: its content is unique (n), so an ambiguous one is recognisable if it landed.
        const doc = makeDoc('auto', n);
        await send(
          w,
          'autoid',
          '',
          { method: 'POST', path: `/${enc(alias)}/_doc`, body: doc },
          { op: 'create', doc },
        );
        return;
      }
      case 'script':
        await send(
          w,
          'script',
          id,
          {
            method: 'POST',
            path: `/${enc(alias)}/_update/${enc(id)}`,
            body: { script: { source: SCRIPT, lang: 'painless', params: { by: 1 } }, _source: true },
          },
          { op: 'script', field: 'counter', by: 1 },
        );
        return;
    }
  }

  async function pause(ms: number): Promise<void> {
    if (ms <= 0 || stopper.signal.aborted) return;
    await sleep(ms, undefined, { signal: stopper.signal }).catch(() => undefined);
  }

  async function loop(w: number): Promise<void> {
    const random = mulberry32(seed + w * 0x9e3779b1);
    await pause(random() * interval);
    while (!stopper.signal.aborted) {
      const t0 = Date.now();
      const id = ids[Math.floor(random() * ids.length)]!;
      let r = random() * total;
      let choice = weights[weights.length - 1]![0];
      for (const [k, wt] of weights) {
        if (r < wt) {
          choice = k;
          break;
        }
        r -= wt;
      }
      await op(w, id, choice, random);
      await pause(interval - (Date.now() - t0));
    }
  }

  const loops = Promise.all(Array.from({ length: writers }, (_, w) => loop(w)));
  // A bug in a loop (not a refusal) must surface at stop(), not as an unhandled rejection before it.
  loops.catch(() => undefined);

  const snapshot = (): WriterStats => ({
    ...st,
    ackedByKind: { ...st.ackedByKind },
    ackedByIndex: { ...st.ackedByIndex },
    refusedByReason: { ...st.refusedByReason },
  });

  return {
    stats: snapshot,
    async stop() {
      stopper.abort();
      await loops;
      st.running = false;
      return {
        ...snapshot(),
        log,
        refusals,
        ambiguousOps,
        ambiguousCreates,
        ids,
        seed,
        startedAt,
        stoppedAt: Date.now(),
      };
    },
  };
}

// ---- oracle --------------------------------------------------------------------------------------

/** id -> expected document (null = absent), plus what the comparison needs to be exact. */
export class ExpectedState extends Map<string, Doc | null> {
  /** the winning acknowledged op per id */
  readonly lastOp = new Map<string, AckedOp>();
  /** ops without an answer, per id: those ids may be in any of several states */
  readonly ambiguousOps = new Map<string, AmbiguousOp[]>();
  /** auto-id creates without an answer: each may have left one document under an id nobody knows */
  readonly ambiguousCreates: AmbiguousOp[] = [];
  constructor(readonly indices: readonly string[]) {
    super();
  }
  /** ids that at least one writer sent a possibly-applied write for */
  written(id: string): boolean {
    return this.has(id) || this.ambiguousOps.has(id);
  }
  get ambiguousIds(): number {
    return this.ambiguousOps.size;
  }
}

export type OracleInput =
  | readonly AckedOp[]
  | {
      log: readonly AckedOp[];
      ambiguousOps?: readonly AmbiguousOp[];
      ambiguousCreates?: readonly AmbiguousOp[];
    };

/** Negative when `a` was applied before `b`: (generation of the index, primary term, seq_no). */
export function opOrder(a: AckedOp, b: AckedOp, generation: ReadonlyMap<string, number>): number {
  const ga = generation.get(a.index);
  const gb = generation.get(b.index);
  if (ga === undefined || gb === undefined)
    throw new Error(`oracle: op on index ${ga === undefined ? a.index : b.index} outside the index list`);
  return ga - gb || a.primaryTerm - b.primaryTerm || a.seqNo - b.seqNo;
}

/**
 * For each id, the state left by the acknowledged op that was applied last. `indices` orders the generations
 * (e.g. [old, new]); it may be left out when every op was answered by the same index.
 */
export function expectedState(input: OracleInput, indices?: readonly string[]): ExpectedState {
  const log = Array.isArray(input)
    ? (input as readonly AckedOp[])
    : (input as { log: readonly AckedOp[] }).log;
  const amb = Array.isArray(input)
    ? []
    : ((input as { ambiguousOps?: readonly AmbiguousOp[] }).ambiguousOps ?? []);
  const creates = Array.isArray(input)
    ? []
    : ((input as { ambiguousCreates?: readonly AmbiguousOp[] }).ambiguousCreates ?? []);
  let order = indices;
  if (!order) {
    const seen = [...new Set(log.map((o) => o.index))];
    if (seen.length > 1)
      throw new Error(`oracle: ops on several indices (${seen.join(', ')}): pass them in generation order`);
    order = seen;
  }
  const generation = new Map(order.map((ix, i) => [ix, i]));
  if (generation.size !== order.length) throw new Error('oracle: an index is listed twice');
  const out = new ExpectedState(order);
  for (const o of log) {
    const cur = out.lastOp.get(o.id);
    if (!cur) {
      opOrder(o, o, generation); // validates the index
      out.lastOp.set(o.id, o);
      continue;
    }
    const c = opOrder(o, cur, generation);
    if (c > 0) out.lastOp.set(o.id, o);
    else if (c === 0 && canon(o.state) !== canon(cur.state)) {
      // Only a noop may share a position with the op it observed, and it reports that very state.
      throw new Error(
        `oracle: two acknowledged ops on ${o.id} at ${o.index}/${o.primaryTerm}/${o.seqNo} disagree: ` +
          `${o.kind}/${o.result} ${canon(o.state)} vs ${cur.kind}/${cur.result} ${canon(cur.state)}`,
      );
    } else if (c === 0 && cur.result === 'noop' && o.result !== 'noop') out.lastOp.set(o.id, o);
  }
  for (const id of [...out.lastOp.keys()].sort()) out.set(id, out.lastOp.get(id)!.state);
  for (const a of [...amb].sort((x, y) => x.sentAt - y.sentAt)) {
    const list = out.ambiguousOps.get(a.id) ?? [];
    list.push(a);
    out.ambiguousOps.set(a.id, list);
  }
  out.ambiguousCreates.push(...creates);
  return out;
}

/** A migration's transform of a document state; `index` null = a seeded document the writers never touched. */
export type StateTransform = (doc: Doc, ctx: { id: string; index: string | null }) => Doc | null;

export interface CompareOptions {
  transform?: StateTransform;
  /** documents that existed before the writers started: expected as they are where no writer touched them */
  seeded?: ReadonlyMap<string, Doc>;
}

export interface Comparison {
  /** expected present, absent */
  lost: string[];
  /** present with another source */
  stale: string[];
  /** expected absent (deleted by a writer) but present */
  resurrected: string[];
  /** present, never written by anyone and not seeded (or seeded but expected absent after the transform) */
  extra: string[];
  /** present and right */
  ok: number;
  /** expected absent and absent */
  absent: number;
  /** ids with an unanswered write, judged against every state they may be in */
  ambiguous: number;
  /**
   * documents nobody is known to have written whose content is exactly that of an unanswered auto-id create:
   * that create landed (each explains at most one document)
   */
  ambiguousAutoId: number;
}

interface Candidate {
  state: Doc | null;
  index: string | null;
}

function isPlainObject(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Partial-update merge as the server does it: objects merge recursively, everything else is replaced. */
export function mergeDoc(target: Doc, patch: Doc): Doc {
  const out: Doc = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    const t = out[k];
    out[k] = isPlainObject(t) && isPlainObject(v) ? mergeDoc(t, v) : v;
  }
  return out;
}

/** The state an intent leaves when applied to `state`; undefined when the server would refuse it. */
export function applyIntent(intent: Intent, state: Doc | null): Doc | null | undefined {
  switch (intent.op) {
    case 'index':
      return intent.doc;
    case 'create':
      return state === null ? intent.doc : undefined;
    case 'delete':
      return null;
    case 'update':
      return state === null ? undefined : mergeDoc(state, intent.doc);
    case 'script': {
      if (state === null) return undefined;
      const cur = state[intent.field];
      return { ...state, [intent.field]: (typeof cur === 'number' ? cur : 0) + intent.by };
    }
  }
}

const MAX_CANDIDATES = 256;

function candidatesFor(
  id: string,
  expected: ReadonlyMap<string, Doc | null>,
  seeded?: ReadonlyMap<string, Doc>,
) {
  const ex = expected instanceof ExpectedState ? expected : undefined;
  let base: Candidate;
  if (expected.has(id)) base = { state: expected.get(id) ?? null, index: ex?.lastOp.get(id)?.index ?? null };
  else base = { state: seeded?.get(id) ?? null, index: null };
  const cands: Candidate[] = [base];
  const amb = ex?.ambiguousOps.get(id);
  if (!amb) return cands;
  const key = (c: Candidate) => `${c.index}\u0000${canon(c.state)}`;
  const seen = new Set(cands.map(key));
  const landing = ex!.indices.length > 0 ? ex!.indices : [base.index];
  for (const a of amb) {
    for (const c of [...cands]) {
      const s = applyIntent(a.intent, c.state);
      if (s === undefined) continue;
      for (const index of landing) {
        const n = { state: s, index };
        if (!seen.has(key(n)) && cands.length < MAX_CANDIDATES) {
          seen.add(key(n));
          cands.push(n);
        }
      }
    }
  }
  return cands;
}

/**
 * Every id's expected state against what the index holds. `expected` should come from `expectedState` (then the
 * transform learns which index each state was written to, and ambiguous ids are judged against all their
 * possible states); a plain Map works too.
 */
export function compare(
  expected: ReadonlyMap<string, Doc | null>,
  actual: ReadonlyMap<string, Doc>,
  options: CompareOptions | StateTransform = {},
): Comparison {
  const opts: CompareOptions = typeof options === 'function' ? { transform: options } : options;
  const ex = expected instanceof ExpectedState ? expected : undefined;
  const written = (id: string) => (ex ? ex.written(id) : expected.has(id));
  const out: Comparison = {
    lost: [],
    stale: [],
    resurrected: [],
    extra: [],
    ok: 0,
    absent: 0,
    ambiguous: 0,
    ambiguousAutoId: 0,
  };
  // Unanswered auto-id creates not yet matched to a document; what one left depends on the id it got.
  const unclaimed = (ex?.ambiguousCreates ?? []).flatMap((a) =>
    a.intent.op === 'create' ? [a.intent.doc] : [],
  );
  const landings: Array<string | null> = ex?.indices.length ? [...ex.indices] : [null];
  const leftBy = (doc: Doc, id: string, got: string) =>
    landings.some((index) => {
      const d = opts.transform ? opts.transform(doc, { id, index }) : doc;
      return d !== null && canon(d) === got;
    });
  const ids = new Set<string>([
    ...expected.keys(),
    ...(ex?.ambiguousOps.keys() ?? []),
    ...(opts.seeded?.keys() ?? []),
    ...actual.keys(),
  ]);
  for (const id of [...ids].sort()) {
    const wanted = candidatesFor(id, expected, opts.seeded).map((c) =>
      c.state === null || !opts.transform ? c.state : opts.transform(c.state, { id, index: c.index }),
    );
    const a = actual.get(id);
    const got = a === undefined ? null : canon(a);
    if (ex?.ambiguousOps.has(id)) out.ambiguous++;
    if (wanted.some((w) => (w === null ? got === null : canon(w) === got))) {
      if (got === null) out.absent++;
      else out.ok++;
      continue;
    }
    const primary = wanted[0] ?? null;
    if (primary !== null && got === null) out.lost.push(id);
    else if (primary !== null) out.stale.push(id);
    else if (written(id)) out.resurrected.push(id);
    else {
      const i = got === null ? -1 : unclaimed.findIndex((doc) => leftBy(doc, id, got));
      if (i < 0) out.extra.push(id);
      else {
        unclaimed.splice(i, 1);
        out.ambiguousAutoId++;
      }
    }
  }
  return out;
}

export function isExact(c: Comparison): boolean {
  return c.lost.length + c.stale.length + c.resurrected.length + c.extra.length === 0;
}

export function describeComparison(c: Comparison): string {
  const few = (xs: string[]) => `${xs.length}${xs.length ? ` (${xs.slice(0, 5).join(',')})` : ''}`;
  return (
    `lost ${few(c.lost)} | stale ${few(c.stale)} | resurrected ${few(c.resurrected)} | extra ${few(c.extra)} | ` +
    `ok ${c.ok} | absent ${c.absent} | ambiguous ${c.ambiguous}` +
    (c.ambiguousAutoId ? ` | unanswered auto-id creates that landed ${c.ambiguousAutoId}` : '')
  );
}

/** id -> source of `readAll`/`seed` results. */
export function sourcesOf(docs: Docs): Map<string, Doc> {
  return new Map([...docs].map(([id, d]) => [id, d.source]));
}
