/**
 * `cutover demo`: a local Elasticsearch, an index `products-v1` behind a read alias and a write alias, and a
 * migration to `products-v2` that changes a field type and renames a field through a transform. Ends with a
 * document-by-document comparison of source and target and the alias check.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../cluster/client.js';
import { type ServerKind, startLocalCluster } from '../local/servers.js';
import { createReporter } from '../ops/progress.js';
import { buildReport, formatReport } from '../ops/report.js';
import { Migration } from '../plan/migrator.js';
import { resolveSpec } from '../spec/load.js';
import { formatFindings } from '../verify/preflight.js';
import { formatProof, type ProofReport } from '../verify/proof.js';

const out = (s: string) => process.stdout.write(`${s}\n`);

export async function runDemo(opts: { docs: number; kind: ServerKind }): Promise<void> {
  out(`Starting a local ${opts.kind} server (downloaded once from Maven Central into the cache)...`);
  const server = await startLocalCluster({ kind: opts.kind });
  out(`  ${server.distribution} ${server.version} at ${server.url}`);
  const es = new Cluster({ url: server.url });
  try {
    out(
      `\nCreating products-v1 (3 shards) with ${opts.docs} documents, aliases products (read) and products-write (write)...`,
    );
    await es.createIndex('products-v1', {
      settings: { number_of_shards: 3, number_of_replicas: 0 },
      mappings: {
        properties: {
          name: { type: 'text' },
          price: { type: 'keyword' },
          category: { type: 'keyword' },
          stock: { type: 'integer' },
        },
      },
      aliases: { products: {}, 'products-write': { is_write_index: true } },
    });
    for (let start = 0; start < opts.docs; start += 2000) {
      let nd = '';
      for (let i = start; i < Math.min(opts.docs, start + 2000); i++) {
        nd += `${JSON.stringify({ index: { _index: 'products-v1', _id: `p${i}` } })}\n${JSON.stringify({ name: `Product ${i}`, price: (i % 997) + 0.99 + '', category: `c${i % 17}`, stock: i % 50 })}\n`;
      }
      const r = await es.bulk(nd);
      if (r.errors) throw new Error('demo data load failed');
    }
    const dir = mkdtempSync(join(tmpdir(), 'cutover-demo-'));
    const transformFile = join(dir, 'transform.mjs');
    writeFileSync(
      transformFile,
      `// price was a keyword string; the new mapping makes it a float. "stock" becomes "quantity".\nexport default (doc) => {\n  const { stock, ...rest } = doc;\n  return { ...rest, price: Number(doc.price), quantity: stock };\n};\n`,
    );
    const spec = resolveSpec(
      {
        name: 'products-v2',
        source: { cluster: { url: server.url }, index: 'products' },
        target: {
          index: 'products-v2',
          mappingOverrides: {
            properties: { price: { type: 'float' }, quantity: { type: 'integer' }, stock: null },
          },
        },
        aliases: { read: ['products'], write: 'products-write' },
        copy: { batchDocs: 1000, concurrency: 3 },
        transform: transformFile,
        cutover: { retentionHours: 24 },
      },
      dir,
    );
    out(`\nMigration spec: price keyword -> float, stock -> quantity (transform ${transformFile})`);
    const m = new Migration(spec);
    out('\nPlan:');
    const plan = await m.plan();
    if (plan.facts) {
      out(
        `  preflight: ${plan.facts.sourceIndex} holds ${plan.facts.docs} documents in ${plan.facts.shards} shards; aliases ${plan.facts.aliases.map((a) => a.alias).join(', ')} point at it`,
      );
      out(formatFindings(plan.facts.findings));
    }
    for (const [i, s] of plan.steps.entries())
      out(`  ${i + 1}. ${s.title}\n     - ${s.changes.join('\n     - ')}`);
    out('\nRunning:');
    await m.run({ reporter: createReporter({ tty: !!process.stderr.isTTY }) });
    out(`\nReport:\n${formatReport(buildReport(m.state(), m.store.deadLetterPath))}`);
    const proof = JSON.parse(readFileSync(m.store.proofPath, 'utf8')) as ProofReport;
    out(`\nProof run by cutover before the switch:\n${formatProof(proof)}`);
    await m.close();

    // And an independent check written here, not by the engine: every source document, transformed by hand,
    // equals its target copy.
    await es.refresh('products-v2');
    let checked = 0;
    let mismatches = 0;
    for (let start = 0; start < opts.docs; start += 1000) {
      const ids = Array.from({ length: Math.min(1000, opts.docs - start) }, (_, k) => `p${start + k}`);
      const [src, dst] = await Promise.all([es.mget('products-v1', ids), es.mget('products-v2', ids)]);
      src.docs.forEach((d, k) => {
        const t = dst.docs[k];
        const s = d._source as { stock: number; price: string } & Record<string, unknown>;
        const { stock, ...rest } = s;
        const want = JSON.stringify({ ...rest, price: Number(s.price), quantity: stock });
        if (!t?.found || JSON.stringify(t._source) !== want) mismatches++;
        checked++;
      });
    }
    const aliases = await es.getAlias('products');
    const writeAlias = await es.getAlias('products-write');
    out(`\nIndependent check: ${checked} documents compared one by one, ${mismatches} differences.`);
    out(
      `Aliases: products -> ${Object.keys(aliases).join(', ')}; products-write -> ${Object.keys(writeAlias).join(', ')}`,
    );
    if (mismatches > 0) process.exitCode = 1;
  } finally {
    await es.close();
    await server.stop();
  }
}
