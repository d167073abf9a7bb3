/**
 * Helpers of the benchmarks (never part of the test suite): deterministic ~1 KB documents written once as
 * pre-built _bulk NDJSON files, a concurrent bulk loader, and a child-process runner that reports wall time,
 * CPU time and peak RSS.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cluster } from '../src/cluster/client.js';

// ---- documents ---------------------------------------------------------------------------------------

/** mulberry32: tiny seeded PRNG, so every run (and the raw ceiling) sees byte-identical documents. */
/** Small seeded PRNG (mulberry32): reproducible data and workloads. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = 'ka lo mi ne tor va shi ru den pa qui zel bo fa gri'.split(' ');

function vocabulary(rand: () => number, size: number): string[] {
  const words = new Set<string>();
  while (words.size < size) {
    const n = 1 + Math.floor(rand() * 4);
    let w = '';
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)];
    words.add(w);
  }
  return [...words];
}

export const MAPPINGS = {
  dynamic: 'strict',
  properties: {
    title: { type: 'text' },
    body: { type: 'text' },
    tags: { type: 'keyword' },
    category: { type: 'keyword' },
    price: { type: 'float' },
    quantity: { type: 'integer' },
    created: { type: 'date' },
    active: { type: 'boolean' },
    user: { properties: { id: { type: 'long' }, name: { type: 'keyword' } } },
  },
} as const;

export const docId = (i: number) => `d${String(i).padStart(8, '0')}`;
export const idNumber = (id: string) => Number.parseInt(id.slice(1), 10);

export interface DataSet {
  dir: string;
  docs: number;
  /** documents per file */
  chunk: number;
  files: string[];
  /** bytes of the documents' JSON (_source), action lines excluded */
  sourceBytes: number;
  /** bytes of all files (action lines included) */
  ndjsonBytes: number;
}

/**
 * `docs` documents of ~1 KB in files of `chunk` documents each; each file is a complete _bulk body with
 * `{"index":{"_id":...}}` action lines (no _index: sent to /<index>/_bulk). Reused when already there.
 */
export async function ensureDataSet(root: string, docs: number, chunk: number, seed = 42): Promise<DataSet> {
  const dir = path.join(root, `docs-${docs}-chunk-${chunk}-seed-${seed}`);
  const manifestFile = path.join(dir, 'manifest.json');
  if (existsSync(manifestFile)) return JSON.parse(readFileSync(manifestFile, 'utf8')) as DataSet;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const rand = prng(seed);
  const vocab = vocabulary(rand, 5000);
  // Skewed word choice (squares favour the head of the list), like real text.
  const word = () => vocab[Math.floor(rand() * rand() * vocab.length)]!;
  const words = (n: number) => Array.from({ length: n }, word).join(' ');
  const categories = Array.from({ length: 50 }, (_, i) => `cat-${i}`);
  const base = Date.UTC(2020, 0, 1);
  const files: string[] = [];
  let sourceBytes = 0;
  let ndjsonBytes = 0;
  for (let start = 0; start < docs; start += chunk) {
    const parts: string[] = [];
    for (let i = start; i < Math.min(docs, start + chunk); i++) {
      const doc = JSON.stringify({
        title: words(6 + Math.floor(rand() * 6)),
        body: words(70 + Math.floor(rand() * 25)),
        tags: [word(), word(), word()],
        category: categories[Math.floor(rand() * categories.length)],
        price: Math.round(rand() * 100_000) / 100,
        quantity: Math.floor(rand() * 1000),
        created: new Date(base + Math.floor(rand() * 5 * 365 * 86_400_000)).toISOString(),
        active: rand() < 0.8,
        user: { id: Math.floor(rand() * 1_000_000), name: `user-${Math.floor(rand() * 20_000)}` },
      });
      sourceBytes += Buffer.byteLength(doc);
      parts.push(`{"index":{"_id":"${docId(i)}"}}\n${doc}\n`);
    }
    const text = parts.join('');
    ndjsonBytes += Buffer.byteLength(text);
    const file = path.join(dir, `bulk-${String(files.length).padStart(6, '0')}.ndjson`);
    await writeFile(file, text);
    files.push(file);
  }
  const set: DataSet = { dir, docs, chunk, files, sourceBytes, ndjsonBytes };
  await writeFile(manifestFile, JSON.stringify(set));
  return set;
}

// ---- loading ---------------------------------------------------------------------------------------------

export interface LoadResult {
  seconds: number;
  requests: number;
  docs: number;
  bytes: number;
  /** sum of the `took` of every bulk, ms */
  tookMs: number;
}

/**
 * Sends the pre-built files to `/<index>/_bulk`, `filesPerRequest` files per request, `concurrency` requests
 * in flight. Each request body is read from disk just before it is sent (page-cached after generation).
 */
export async function loadFiles(
  cluster: Cluster,
  index: string,
  set: DataSet,
  opts: { concurrency: number; filesPerRequest: number },
): Promise<LoadResult> {
  const groups: string[][] = [];
  for (let i = 0; i < set.files.length; i += opts.filesPerRequest)
    groups.push(set.files.slice(i, i + opts.filesPerRequest));
  let next = 0;
  let docs = 0;
  let bytes = 0;
  let tookMs = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    for (let g = next++; g < groups.length; g = next++) {
      const bufs = await Promise.all(groups[g]!.map((f) => readFile(f)));
      const body = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
      const res = await cluster.request<{
        took: number;
        errors: boolean;
        items: Array<Record<string, { status: number; error?: unknown }>>;
      }>({
        method: 'POST',
        path: `/${index}/_bulk`,
        body,
        ndjson: true,
        query: { filter_path: 'took,errors,items.*.status,items.*.error' },
      });
      if (res.body.errors) {
        const bad = res.body.items.map((it) => Object.values(it)[0]).find((r) => r && r.status >= 300);
        throw new Error(`bulk into ${index} had errors: ${JSON.stringify(bad).slice(0, 300)}`);
      }
      docs += res.body.items.length;
      bytes += body.length;
      tookMs += res.body.took;
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, groups.length) }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, requests: groups.length, docs, bytes, tookMs };
}

// ---- processes -----------------------------------------------------------------------------------------

const CLK_TCK = 100;

/** utime + stime of a process, seconds (Linux /proc); null when it cannot be read. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 overall.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** CPU seconds the whole machine spent busy (all cores, /proc/stat), to see what else ran meanwhile. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  // cpu  user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (f[i] ?? 0), 0);
  return busy / CLK_TCK;
}

export interface Measured {
  code: number | null;
  wallSeconds: number;
  /** of the measured process itself (children included with /usr/bin/time) */
  userSeconds: number | null;
  systemSeconds: number | null;
  peakRssMb: number | null;
  /** how peak RSS was obtained */
  rssSource: '/usr/bin/time' | 'VmHWM poll';
  stdout: string;
  stderrTail: string;
}

const TIME = '/usr/bin/time';

/** Direct children of a process (Linux /proc), empty when they cannot be read. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Runs a command to completion and measures it. Peak RSS: getrusage's ru_maxrss through /usr/bin/time when
 * installed, else /proc/<pid>/status VmHWM polled every 200 ms (can miss the last 200 ms of growth).
 */
export function measure(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; stderrFile?: string; timeoutMs?: number } = {},
): Promise<Measured> {
  const useTime = existsSync(TIME);
  const timeFile = useTime ? path.join(opts.cwd ?? process.cwd(), `.time-${process.pid}-${Date.now()}`) : '';
  const argv = useTime ? ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args] : args;
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(useTime ? TIME : cmd, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hwmKb = 0;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.length > 4_000_000) stderr = stderr.slice(-1_000_000);
    });
    const poll = useTime
      ? undefined
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
          } catch {
            // exited between polls
          }
        }, 200);
    // /usr/bin/time does not pass SIGTERM on: the measured command is signalled itself, then time.
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          if (child.pid !== undefined) for (const pid of childrenOf(child.pid)) signal(pid, 'SIGTERM');
          child.kill('SIGTERM');
        }, opts.timeoutMs).unref()
      : undefined;
    child.on('error', reject);
    child.on('close', async (code) => {
      if (poll) clearInterval(poll);
      if (timer) clearTimeout(timer);
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (opts.stderrFile) await writeFile(opts.stderrFile, stderr).catch(() => undefined);
      let userSeconds: number | null = null;
      let systemSeconds: number | null = null;
      let peakRssMb: number | null = hwmKb ? hwmKb / 1024 : null;
      if (useTime) {
        try {
          const lines = (await readFile(timeFile, 'utf8')).trim().split('\n');
          const [, u, s, m] = lines[lines.length - 1]!.split(' ').map(Number);
          userSeconds = u ?? null;
          systemSeconds = s ?? null;
          peakRssMb = m ? m / 1024 : null;
        } catch {
          // no time output: the command could not be run
        }
        await rm(timeFile, { force: true });
      }
      resolve({
        code,
        wallSeconds,
        userSeconds,
        systemSeconds,
        peakRssMb,
        rssSource: useTime ? '/usr/bin/time' : 'VmHWM poll',
        stdout,
        stderrTail: stderr.slice(-3000),
      });
    });
  });
}

/** Results file: written whole to a temp file and renamed, so a crash mid-run leaves the previous version. */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** A number for a markdown table (en-US grouping, `d` decimals), or "-" when there is none. */
export const num = (x: unknown, d = 0): string =>
  typeof x === 'number'
    ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : '-';

/** Append a markdown table to `out` (empty cells as "-"), followed by a blank line. */
export function markdownTable(out: string[], head: string[], rows: unknown[][]): void {
  out.push(`| ${head.join(' | ')} |`);
  out.push(`|${head.map(() => '---').join('|')}|`);
  for (const row of rows)
    out.push(`| ${row.map((c) => (c === undefined || c === null ? '-' : String(c))).join(' | ')} |`);
  out.push('');
}
