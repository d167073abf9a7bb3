/**
 * Markdown tables from a bench/copy.ts results file, for docs/benchmarks.md:
 *
 *   node --import tsx bench/report.ts bench/out/copy-1000000.json
 */
import { readFileSync } from 'node:fs';
import { markdownTable, num } from './lib.js';

// biome-ignore lint/suspicious/noExplicitAny: free-form results document
type Json = any;

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node --import tsx bench/report.ts <results.json>\n');
  process.exit(2);
}
const r: Json = JSON.parse(readFileSync(file, 'utf8'));
const out: string[] = [];
const p = (s = '') => out.push(s);
const n = num;
const table = (head: string[], rows: unknown[][]) => markdownTable(out, head, rows);
/** Cores used by other processes during the run; ⚠ when 0.3 or more (the run competed for the 2 cores). */
const other = (x: Json) => {
  const wall = x.wallSeconds ?? x.loadAndRefreshSeconds ?? x.reindexAndRefreshSeconds ?? x.loadSeconds;
  const cores =
    x.otherCores ?? (typeof x.otherCpuSeconds === 'number' && wall ? x.otherCpuSeconds / wall : null);
  return cores === null ? '-' : `${n(cores, 2)}${cores < 0.3 ? '' : ' ⚠'}`;
};

p(
  `Results of ${file} (${r.date}, ${r.data?.docs} docs of ${r.data?.avgDocBytes} B avg, ${r.data?.sourceMb} MB)`,
);
p();
for (const side of ['es', 'os', 'es9'] as const) {
  const s = r[side];
  if (!s) continue;
  p(`### ${s.kind} ${s.version} (heap ${s.heapMb} MB)`);
  p();
  if (s.source)
    p(
      `Source load: ${n(s.source.docsPerSecond)} docs/s (${s.source.loadSeconds} s, ${s.source.bulkConcurrency} x ${s.source.docsPerBulk}-doc bulks), ${s.source.storeMb} MB on disk, ${s.source.segments} segments; other cores ${other(s.source)}`,
    );
  p();
  if (s.cutover?.length)
    table(
      [
        'cutover run',
        'rep',
        'wall s',
        'docs/s',
        'MB/s',
        'copy phase s',
        'copy docs/s',
        'peak RSS MB',
        'client CPU s',
        'server CPU s',
        'other cores',
      ],
      s.cutover.map((c: Json) => [
        c.variant,
        c.rep,
        n(c.wallSeconds, 1),
        n(c.docsPerSecond),
        n(c.mbPerSecond, 1),
        n(c.copyPhaseSeconds, 1),
        n(c.copyPhaseDocsPerSecond),
        n(c.peakRssMb),
        n(c.clientCpuSeconds, 1),
        n(c.serverCpuSeconds, 1),
        other(c),
      ]),
    );
  if (s.raw?.length)
    table(
      [
        'raw ingest',
        'rep',
        'docs/bulk x in flight',
        'load+refresh s',
        'docs/s',
        'load-only docs/s',
        'MB/s',
        'server CPU s',
        'other cores',
      ],
      s.raw.map((x: Json) => [
        `like ${x.matchedVariant}`,
        x.rep,
        `${x.docsPerBulk} x ${x.concurrency}`,
        n(x.loadAndRefreshSeconds, 1),
        n(x.docsPerSecond),
        n(x.loadOnlyDocsPerSecond),
        n(x.mbPerSecond, 1),
        n(x.serverCpuSeconds, 1),
        other(x),
      ]),
    );
  if (s.elasticdump?.length)
    table(
      [
        'elasticdump',
        'ok',
        'wall s',
        'docs/s',
        'MB/s',
        'peak RSS MB',
        'client CPU s',
        'server CPU s',
        'other cores',
      ],
      s.elasticdump.map((x: Json) => [
        (x.flags ?? []).join(' '),
        x.ok,
        n(x.wallSeconds, 1),
        n(x.docsPerSecond),
        n(x.mbPerSecond, 1),
        n(x.peakRssMb),
        n(x.clientCpuSeconds, 1),
        n(x.serverCpuSeconds, 1),
        other(x),
      ]),
    );
  if (s.reindex?.length)
    table(
      [
        '_reindex',
        'rep',
        'reindex s',
        '+refresh s',
        'docs/s',
        'reindex-only docs/s',
        'server CPU s',
        'other cores',
      ],
      s.reindex.map((x: Json) => [
        x.variant,
        x.rep,
        n(x.reindexSeconds, 1),
        n(x.reindexAndRefreshSeconds, 1),
        n(x.docsPerSecond),
        n(x.reindexOnlyDocsPerSecond),
        n(x.serverCpuSeconds, 1),
        other(x),
      ]),
    );
  if (s.reads?.length)
    table(
      ['read pass sort', 'round', 'seconds', 'docs/s', 'server took (sum) s', 'complete', 'dup', 'missing'],
      s.reads.map((x: Json) =>
        x.error
          ? [x.sort, x.round, 'error', x.error.slice(0, 80), '', '', '', '']
          : [
              x.sort,
              x.round,
              n(x.seconds, 1),
              n(x.docsPerSecond),
              n(x.serverTookMs / 1000, 1),
              x.complete,
              x.duplicates,
              x.missing,
            ],
      ),
    );
}
p('### Ratios');
p();
p('```json');
p(JSON.stringify(r.ratios, null, 2));
p('```');
process.stdout.write(`${out.join('\n')}\n`);
