/** Talking to a running command's status server as an operator's tools would: its registration, token, API. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';

export interface Served {
  url: string;
  token: string;
  stateDir: string;
}

export async function until<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits for the run to register its status server in the migration's state directory. */
export async function served(stateDir: string, role: 'run' | 'proxy' = 'run'): Promise<Served> {
  const info = join(stateDir, 'status', `${role}.json`);
  const url = await until(`${info}`, () =>
    existsSync(info) ? (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url : undefined,
  );
  const token = readFileSync(join(stateDir, 'status', 'control.token'), 'utf8').trim();
  return { url, token, stateDir };
}

// biome-ignore lint/suspicious/noExplicitAny: the status JSON is checked field by field by the tests
export async function status(s: Served): Promise<any> {
  const r = await fetch(`${s.url}/api/status`);
  if (r.status !== 200) throw new Error(`/api/status -> ${r.status} ${await r.text()}`);
  return r.json();
}

export function processedOf(st: { copy?: { slices: Array<{ processed: number }> } }): number {
  return st.copy ? st.copy.slices.reduce((a, x) => a + x.processed, 0) : 0;
}

export async function control(
  s: Served,
  action: string,
  value?: unknown,
  token: string | undefined = s.token,
): Promise<{ status: number; body: { message?: string; error?: string } }> {
  const r = await fetch(`${s.url}/api/control/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(value === undefined ? {} : { value }),
  });
  return { status: r.status, body: (await r.json()) as { message?: string; error?: string } };
}

export async function metrics(s: Served): Promise<{ text: string; families: Map<string, PromFamily> }> {
  const r = await fetch(`${s.url}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics -> ${r.status}`);
  if (!(r.headers.get('content-type') ?? '').startsWith('text/plain'))
    throw new Error('/metrics content type');
  const text = await r.text();
  return { text, families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])) };
}

/** The sum of a counter or gauge over its samples (optionally only those with these labels). */
export function sumOf(
  fams: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const f = fams.get(name);
  if (!f) throw new Error(`metric ${name} is missing`);
  return (
    f.metrics
      .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      // A histogram's count is its +Inf bucket (this parser keeps only the buckets of labelled histograms).
      .reduce((a, m) => a + Number(m.value ?? m.count ?? m.buckets?.['+Inf'] ?? 0), 0)
  );
}

/** The copy stopped advancing: the same count twice in a row, a second apart (the page in flight has landed). */
export async function settled(s: Served): Promise<number> {
  let last = -1;
  return until('the copy to stand still', async () => {
    const now = processedOf(await status(s));
    const same = now === last;
    last = now;
    if (same) return now;
    await new Promise((r) => setTimeout(r, 1000));
    return undefined;
  });
}

export function auditOf(stateDir: string): Array<Record<string, unknown>> {
  return readFileSync(join(stateDir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
