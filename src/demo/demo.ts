/**
 * `cutover demo`: a local Elasticsearch, an index `products-v1` behind a read alias and a write alias, and a
 * migration to `products-v2` that changes a field type and renames a field through a transform, while four
 * application writers keep creating, updating, deleting and re-creating products through the write alias. They
 * talk to the cluster through `cutover proxy` (capture.strategy proxy), which journals every id they touch and
 * holds their writes for the switch instead of refusing them. Ends with a document-by-document check of the
 * target against the writers' log of acknowledged writes, the measured hold, and the alias check.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JournalSyncState } from '../capture/journal-sync.js';
import { Cluster } from '../cluster/client.js';
import { ClusterError } from '../cluster/errors.js';
import { type ServerKind, startLocalCluster } from '../local/servers.js';
import { createReporter } from '../ops/progress.js';
import { openProxy } from '../proxy/open.js';
import { Migration } from '../runbook/migration.js';
import { formatReport } from '../runbook/report.js';
import { resolveSpec } from '../spec/load.js';
import { readJson } from '../store/atomic-file.js';
import { canonicalJson } from '../store/json.js';
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
        nd += `${JSON.stringify({ index: { _index: 'products-v1', _id: `p${i}` } })}\n${JSON.stringify(seedDoc(i))}\n`;
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
        // The application deletes all the time: the proxy sees each delete as it happens, so no id scan of the
        // whole index is needed, and the switch holds writes for a moment instead of refusing them.
        capture: { strategy: 'proxy' },
        proxy: { listen: '127.0.0.1:0' },
        transform: transformFile,
        cutover: { retentionHours: 24 },
      },
      dir,
    );
    out(
      `\nMigration spec: price keyword -> float, stock -> quantity (transform ${transformFile}); capture.strategy proxy; cutover.holdBudgetMs ${spec.cutover.holdBudgetMs}`,
    );
    const proxy = await openProxy(spec, { listen: '127.0.0.1:0' });
    out(
      `\nWrite proxy listening on ${proxy.dataUrl} (journal ${proxy.journalWhere}): the application's cluster URL points at it instead of ${server.url}`,
    );
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
    out(
      '\nRunning, while 4 application writers create, update, delete and re-create products through the proxy (products-write):',
    );
    const appCluster = new Cluster({ url: proxy.dataUrl });
    const app = startDemoWriters(appCluster, opts.docs);
    try {
      await m.run({ reporter: createReporter({ tty: !!process.stderr.isTTY }) });
      // The application goes on for a moment on the new index.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await app.stop();
      await appCluster.close();
      await proxy.close();
    }
    out(`\nReport:\n${formatReport(m.saveReport())}`);
    const proof = JSON.parse(readFileSync(m.store.proofPath, 'utf8')) as ProofReport;
    out(`\nProof run by cutover before the switch:\n${formatProof(proof)}`);
    const journal = readJson<JournalSyncState>(m.store.journalSyncPath);
    const hold = journal?.holds.find((h) => h.switched);
    await m.close();

    // And an independent check written here, not by the engine: the target must hold, for every product, the
    // last state the application got acknowledged (old-index states transformed by hand), or nothing if deleted.
    await es.refresh('products-v2');
    const expected = app.expected();
    let checked = 0;
    let mismatches = 0;
    const ids = [...expected.keys()];
    for (let start = 0; start < ids.length; start += 1000) {
      const chunk = ids.slice(start, start + 1000);
      const dst = await es.mget('products-v2', chunk);
      dst.docs.forEach((t, k) => {
        const e = expected.get(chunk[k]!)!;
        const want = e.doc === null ? null : e.index === 'products-v1' ? demoTransform(e.doc) : e.doc;
        const have = t?.found ? t._source : null;
        if (canonicalJson(have ?? null) !== canonicalJson(want)) mismatches++;
        checked++;
      });
    }
    const total = await es.count('products-v2');
    const present = [...expected.values()].filter((e) => e.doc !== null).length;
    if (total !== present) mismatches += Math.abs(total - present);
    const aliases = await es.getAlias('products');
    const writeAlias = await es.getAlias('products-write');
    const w = app.stats;
    out(
      `\nApplication: ${w.acked} writes acknowledged during the migration (${w.created} creates, ${w.updated} updates, ${w.deleted} deletes), ${w.refused} refused, ${w.failed} other failures.`,
    );
    for (const e of w.errors) out(`  refused or failed: ${e}`);
    if (hold)
      out(
        `Write hold at the switch: ${hold.durationMs} ms (attempt ${hold.attempt}); ${hold.heldRequests} application request(s) waited in the proxy, the longest ${hold.longestWaitMs} ms, none refused.`,
      );
    if (journal)
      out(
        `Proxy journal: ${journal.entries} entries; ${journal.copied} document(s) copied and ${journal.deleted} deleted through it, no id scan of the index.`,
      );
    out(
      `Independent check: ${checked} documents compared one by one with the writers' log, ${mismatches} differences; ${total} documents on products-v2.`,
    );
    out(
      `Aliases: products -> ${Object.keys(aliases).join(', ')}; products-write -> ${Object.keys(writeAlias).join(', ')}`,
    );
    if (mismatches > 0 || w.failed > 0 || w.refused > 0 || !hold) process.exitCode = 1;
  } finally {
    await es.close();
    await server.stop();
  }
}

function demoTransform(doc: Record<string, unknown>): Record<string, unknown> {
  const { stock, ...rest } = doc;
  return { ...rest, price: Number(doc.price), quantity: stock };
}

interface Acked {
  index: string;
  term: number;
  seqNo: number;
  doc: Record<string, unknown> | null;
}

/**
 * The demo's application: writers through products-write. Each acknowledged write is logged with the index and
 * the (primary term, seq_no) the server gave it, so the last state of every product is known exactly even with
 * several writers on the same ids. Old-index writes come before new-index ones (the old index is frozen first).
 * Once the alias points at products-v2, new products are written in the new shape, as the new application would.
 */
function startDemoWriters(es: Cluster, docs: number) {
  const last = new Map<string, Acked>();
  const stats = {
    acked: 0,
    created: 0,
    updated: 0,
    deleted: 0,
    refused: 0,
    failed: 0,
    /** the first few refusals and failures as the application saw them, with when they came */
    errors: [] as string[],
  };
  let stop = false;
  const gen = (index: string) => (index === 'products-v1' ? 0 : 1);
  const note = (id: string, a: Acked) => {
    const prev = last.get(id);
    const cmp = prev ? gen(a.index) - gen(prev.index) || a.term - prev.term || a.seqNo - prev.seqNo : 1;
    if (cmp > 0) last.set(id, a);
  };
  let onV2 = false;
  const writer = async (w: number) => {
    for (let n = 0; !stop; n++) {
      const id = Math.random() < 0.7 ? `p${Math.floor(Math.random() * docs)}` : `new-${w}-${n % 500}`;
      const roll = Math.random();
      try {
        if (roll < 0.4) {
          const doc: Record<string, unknown> = onV2
            ? { name: `New ${id}`, price: 9.99, category: 'new', quantity: n % 50 }
            : { name: `New ${id}`, price: '9.99', category: 'new', stock: n % 50 };
          const r = await es.request<{ _index: string; _primary_term: number; _seq_no: number }>({
            method: 'PUT',
            path: `/products-write/_doc/${id}`,
            body: doc,
          });
          onV2 ||= r.body._index === 'products-v2';
          note(id, { index: r.body._index, term: r.body._primary_term, seqNo: r.body._seq_no, doc });
          stats.created++;
        } else if (roll < 0.8) {
          const r = await es.request<{
            _index: string;
            _primary_term: number;
            _seq_no: number;
            get?: { _source: Record<string, unknown> };
          }>({
            method: 'POST',
            path: `/products-write/_update/${id}`,
            // Two writers updating one product at once make Elasticsearch's read-then-write `_update` answer 409
            // to one of them, migration or not: applications retry it, and so does this one. (One demo in about 15
            // counted one refused write before the reasons were printed below; this race is the likely one.)
            query: { retry_on_conflict: 3 },
            body: { doc: { name: `Renamed ${id} #${n}` }, _source: true },
            okStatuses: [404],
          });
          if (r.status === 404) continue;
          note(id, {
            index: r.body._index,
            term: r.body._primary_term,
            seqNo: r.body._seq_no,
            doc: r.body.get!._source,
          });
          stats.updated++;
        } else {
          const r = await es.request<{ _index: string; _primary_term: number; _seq_no: number }>({
            method: 'DELETE',
            path: `/products-write/_doc/${id}`,
            okStatuses: [404],
          });
          note(id, { index: r.body._index, term: r.body._primary_term, seqNo: r.body._seq_no, doc: null });
          if (r.status !== 404) stats.deleted++;
        }
        stats.acked++;
      } catch (e) {
        // A write the cluster refused (4xx) is a write the application lost; anything else failed on the way.
        if (e instanceof ClusterError && e.status < 500) stats.refused++;
        else stats.failed++;
        if (stats.errors.length < 5) stats.errors.push(`${new Date().toISOString()} ${(e as Error).message}`);
      }
      // About 40 writes/s per writer: a busy application, not a load test.
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Promise.all([0, 1, 2, 3].map(writer));
  return {
    stats,
    async stop() {
      stop = true;
      await running;
    },
    /** id -> last acknowledged state; untouched products keep their seeded state (as an old-index write) */
    expected(): Map<string, { index: string; doc: Record<string, unknown> | null }> {
      const out = new Map<string, { index: string; doc: Record<string, unknown> | null }>();
      for (let i = 0; i < docs; i++) out.set(`p${i}`, { index: 'products-v1', doc: seedDoc(i) });
      for (const [id, a] of last) out.set(id, { index: a.index, doc: a.doc });
      return out;
    },
  };
}

function seedDoc(i: number): Record<string, unknown> {
  return { name: `Product ${i}`, price: `${(i % 997) + 0.99}`, category: `c${i % 17}`, stock: i % 50 };
}
