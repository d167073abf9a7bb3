/** A source index behind read/write aliases, a spec file and a transform, on a real test cluster. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Cluster } from '../../src/cluster/client.js';
import { type TestClusterId, testCluster, uniqueName } from './clusters.js';
import { clusterOf, type Docs, seed } from './data.js';

export interface Scenario {
  kind: TestClusterId;
  c: Cluster;
  url: string;
  source: string;
  target: string;
  readAlias: string;
  writeAlias: string;
  dir: string;
  specPath: string;
  seeded: Docs;
  /** what the target must hold after the transform */
  expected: Docs;
  writeSpec(patch?: Record<string, unknown>): string;
}

/**
 * The transform used across engine tests: `qty` (string) becomes `quantity` (integer), `tags` joined,
 * documents with `drop: true` are dropped. Written as a plain ESM file, as a user would.
 */
export const TRANSFORM = `export default function (doc, meta) {
  if (doc.drop) return null;
  const { qty, ...rest } = doc;
  return { ...rest, quantity: Number(qty), slot: meta.id.length };
}
`;

export function transformDoc(doc: Record<string, unknown>, id: string): Record<string, unknown> | null {
  if (doc.drop) return null;
  const { qty, ...rest } = doc;
  return { ...rest, quantity: Number(qty), slot: id.length };
}

export function makeDoc(i: number): { id: string; doc: Record<string, unknown>; routing?: string } {
  return {
    id: `d${i}`,
    routing: i % 7 === 0 ? `r${i % 3}` : undefined,
    doc: {
      title: `document ${i}`,
      qty: String(i % 100),
      tags: ['a', `t${i % 5}`],
      n: i,
      ...(i % 97 === 13 ? { drop: true } : {}),
    },
  };
}

export const SOURCE_MAPPINGS = {
  properties: {
    title: { type: 'text' },
    qty: { type: 'keyword' },
    tags: { type: 'keyword' },
    n: { type: 'long' },
    drop: { type: 'boolean' },
  },
};

export async function scenario(
  kind: TestClusterId,
  count: number,
  spec: Record<string, unknown> = {},
): Promise<Scenario> {
  const t = testCluster(kind);
  const c = clusterOf(t);
  const source = uniqueName('src');
  const readAlias = `${source}-read`;
  const writeAlias = `${source}-write`;
  const seeded = await seed(c, source, count, makeDoc, {
    settings: { number_of_shards: 3, number_of_replicas: 0 },
    mappings: SOURCE_MAPPINGS,
    aliases: { [readAlias]: {}, [writeAlias]: { is_write_index: true } },
  });
  const expected: Docs = new Map();
  for (const [id, d] of seeded) {
    const out = transformDoc(d.source, id);
    if (out) expected.set(id, { source: out, routing: d.routing });
  }
  const dir = mkdtempSync(join(tmpdir(), 'cutover-test-'));
  writeFileSync(join(dir, 'transform.mjs'), TRANSFORM);
  const target = `${source}-v2`;
  const specPath = join(dir, 'spec.yaml');
  const base = {
    name: 'm1',
    source: { cluster: { url: t.url }, index: readAlias },
    target: {
      index: target,
      mappingOverrides: {
        properties: { qty: null, quantity: { type: 'integer' }, slot: { type: 'integer' } },
      },
      settingOverrides: { 'index.refresh_interval': '2s' },
    },
    aliases: { read: [readAlias], write: writeAlias },
    copy: { batchDocs: 100, concurrency: 2 },
    // Tests of the copy engine pin a point-in-time copy; live capture (the default with a write alias) has its
    // own tests, which set capture.strategy.
    capture: { strategy: 'none' },
    transform: './transform.mjs',
    stateDir: './state',
  };
  const s: Scenario = {
    kind,
    c,
    url: t.url,
    source,
    target,
    readAlias,
    writeAlias,
    dir,
    specPath,
    seeded,
    expected,
    writeSpec(patch = {}) {
      writeFileSync(specPath, YAML.stringify(merge(structuredClone(base), patch)));
      return specPath;
    },
  };
  s.writeSpec(spec);
  return s;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(b)) {
    if (v === null) {
      delete a[k];
      continue;
    }
    const cur = a[k];
    a[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object'
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return a;
}

export async function aliasTargets(c: Cluster, alias: string): Promise<string[]> {
  return Object.keys(await c.getAlias(alias)).sort();
}

/**
 * Scenarios whose indices are deleted when each test ends, pass or fail (`afterEach(t.drop)`): a whole run leaves
 * many indices on one node. `extra` names more indices a test may create from a scenario.
 */
export function trackedScenarios(extra: (s: Scenario) => string[] = () => []) {
  const made: Scenario[] = [];
  return {
    async scenario(...args: Parameters<typeof scenario>): Promise<Scenario> {
      const s = await scenario(...args);
      made.push(s);
      return s;
    },
    async drop(): Promise<void> {
      for (const s of made.splice(0)) {
        for (const i of [s.source, s.target, ...extra(s)]) await s.c.deleteIndex(i).catch(() => undefined);
        await s.c.close();
      }
    },
  };
}
