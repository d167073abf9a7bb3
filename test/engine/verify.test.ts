/** The proof finds planted differences, passes on a clean migration, holds under live writes, and gates cutover. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sampled } from '../../src/verify/compare.js';
import { runCli, startCli } from '../support/cli.js';
import { aliasTargets, scenario, transformDoc } from '../support/scenario.js';

for (const kind of ['es8', 'os3'] as const) {
  describe(`proof on ${kind}`, () => {
    it('passes on a clean migration and finds a planted missing, extra and changed document', async () => {
      const s = await scenario(kind, 1500, { cutover: { mode: 'manual' } });
      const run = await runCli(['run', s.specPath]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /proof passed: versions of all 1500 source documents compared/);

      const first = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'proof.json'), 'utf8'));
      assert.equal(first.passed, true);
      assert.equal(first.mode, 'versions');
      assert.equal(first.sourceChecked, 1500);
      assert.equal(first.targetChecked, s.expected.size);
      // Versions agree for every copied document; the ones the transform drops are absent, so their content
      // (through the transform) is what says they should be.
      assert.equal(first.versionMismatches, s.seeded.size - s.expected.size);
      assert.equal(first.droppedByTransform, s.seeded.size - s.expected.size);
      assert.ok(first.contentChecked > first.versionMismatches, 'a content sample beside the mismatches');

      // Nothing changed: the repeated proof re-reads nothing. One source document changes: only its shard is re-read.
      const clean = await runCli(['--json', 'verify', s.specPath]);
      assert.equal(clean.code, 0, clean.stderr);
      const again = JSON.parse(clean.stdout);
      assert.equal(again.passed, true);
      assert.match(again.confidence, /nothing changed since the proof of .*: no slice re-read/);
      assert.equal(again.sourceChecked, 0);
      const touched = [...s.expected.keys()][5]!;
      const touchedRouting = s.expected.get(touched)!.routing;
      await s.c.bulk(
        `${JSON.stringify({ index: { _index: s.source, _id: touched, routing: touchedRouting } })}\n${JSON.stringify({ title: 'changed at the source', qty: '5', tags: [], n: 5 })}\n`,
        { refresh: true },
      );
      const partial = await runCli(['--json', 'verify', s.specPath]);
      const pr = JSON.parse(partial.stdout);
      assert.equal(partial.code, 3);
      assert.match(pr.confidence, /only source slice\(s\) \d changed since the proof/);
      assert.ok(pr.sourceChecked > 0 && pr.sourceChecked < 1500, `re-read ${pr.sourceChecked}`);
      assert.deepEqual(
        pr.differences.map((d: { id: string }) => d.id),
        [touched],
      );
      // Put the source back as it was so the planted differences below are the only ones.
      await s.c.bulk(
        `${JSON.stringify({ index: { _index: s.source, _id: touched, routing: touchedRouting } })}\n${JSON.stringify(s.seeded.get(touched)!.source)}\n`,
        { refresh: true },
      );

      // Plant one of each difference on the target.
      const ids = [...s.expected.keys()];
      const missing = ids[10]!;
      const changed = ids[20]!;
      const routingOf = (id: string) => s.expected.get(id)!.routing;
      const changedDoc = {
        ...(s.expected.get(changed)!.source as Record<string, unknown>),
        title: 'tampered',
      };
      await s.c.bulk(
        `${JSON.stringify({ delete: { _index: s.target, _id: missing, routing: routingOf(missing) } })}\n` +
          `${JSON.stringify({ index: { _index: s.target, _id: changed, routing: routingOf(changed), version: 10_000_000, version_type: 'external' } })}\n${JSON.stringify(changedDoc)}\n` +
          `${JSON.stringify({ index: { _index: s.target, _id: 'planted-extra' } })}\n${JSON.stringify({ title: 'extra' })}\n`,
        { refresh: true },
      );
      const bad = await runCli(['--json', 'verify', s.specPath]);
      assert.equal(bad.code, 3, bad.stderr);
      const r = JSON.parse(bad.stdout);
      assert.equal(r.passed, false);
      assert.deepEqual([r.missing, r.extra, r.changed], [1, 1, 1]);
      const byKind = Object.fromEntries(r.differences.map((d: { kind: string }) => [d.kind, d]));
      assert.equal(byKind.missing.id, missing);
      assert.equal(byKind.extra.id, 'planted-extra');
      assert.equal(byKind.changed.id, changed);
      assert.deepEqual(byKind.changed.fields, ['title']);
      assert.ok(
        JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'proof.json'), 'utf8')).differences.length === 3,
      );

      // Sample mode states its confidence.
      const sample = await runCli([
        '--json',
        'verify',
        s.specPath,
        '--mode',
        'sample',
        '--sample-rate',
        '0.5',
      ]);
      const sr = JSON.parse(sample.stdout);
      assert.equal(sr.mode, 'sample');
      assert.ok(sr.sourceChecked > 500 && sr.sourceChecked < 1000, `sampled ${sr.sourceChecked}`);
      assert.match(sr.confidence, /sample of \d+ documents \(50\.00%\)/);

      // The switch is refused on a failed proof; aliases stay on the source.
      const cut = await runCli(['cutover', s.specPath]);
      assert.equal(cut.code, 3, cut.stderr);
      assert.match(cut.stderr, /cutover refused: the proof before the switch found 3 difference\(s\)/);
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
      await s.c.close();
    });

    it('reports no false differences while documents change during the proof', async () => {
      const s = await scenario(kind, 3000, { cutover: { mode: 'manual' }, copy: { batchDocs: 200 } });
      assert.equal((await runCli(['run', s.specPath])).code, 0);
      // A writer keeps changing documents on both sides, source first, target a moment later (as a capture
      // would), while the proof runs.
      const proof = startCli(['--json', 'verify', s.specPath]);
      let stop = false;
      let writes = 0;
      const ids = [...s.expected.keys()];
      const writer = (async () => {
        let version = 50_000_000;
        while (!stop) {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          const routing = s.expected.get(id)!.routing;
          const doc = { title: `rewritten ${writes}`, qty: String(writes % 100), tags: ['w'], n: writes };
          await s.c.bulk(
            `${JSON.stringify({ index: { _index: s.source, _id: id, routing } })}\n${JSON.stringify(doc)}\n`,
            { refresh: true },
          );
          await new Promise((r) => setTimeout(r, 30));
          await s.c.bulk(
            `${JSON.stringify({ index: { _index: s.target, _id: id, routing, version: ++version, version_type: 'external' } })}\n${JSON.stringify(transformDoc(doc, id))}\n`,
            { refresh: true },
          );
          writes++;
        }
      })();
      const r = await proof.done;
      stop = true;
      await writer;
      assert.ok(writes > 5, `writer made ${writes} changes during the proof`);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const report = JSON.parse(r.stdout);
      assert.deepEqual([report.missing, report.extra, report.changed], [0, 0, 0]);
      await s.c.close();
    });

    it('versions mode sees every state the copy did not write; a content change under the same version only the full proof sees', async () => {
      const s = await scenario(kind, 600, { cutover: { mode: 'manual' } });
      assert.equal((await runCli(['run', s.specPath])).code, 0);
      // A document outside the 1% content sample, rewritten on the target under the version it already has:
      // the target's version still says "the state the copy wrote for this source state".
      const id = [...s.expected.keys()].find((i) => !sampled(i, 0.01))!;
      const routing = s.expected.get(id)!.routing;
      const t = await s.c.mget(s.target, [{ _id: id, routing }], { source: false });
      const version = t.docs[0]!._version!;
      /** The target's copy of `id` rewritten with another title, under the given version. */
      const rewrite = (v: number, versionType: 'external' | 'external_gte', title: string) =>
        s.c.request({
          method: 'PUT',
          path: `/${s.target}/_doc/${encodeURIComponent(id)}`,
          query: {
            version: String(v),
            version_type: versionType,
            refresh: 'true',
            ...(routing ? { routing } : {}),
          },
          body: { ...(s.expected.get(id)!.source as Record<string, unknown>), title },
        });
      await rewrite(version, 'external_gte', 'same version, other bytes');
      const versions = await runCli(['--json', 'verify', s.specPath, '--mode', 'versions']);
      assert.equal(versions.code, 0, versions.stderr);
      assert.equal(
        JSON.parse(versions.stdout).changed,
        0,
        'outside what versions mode compares (docs/guarantees.md)',
      );
      const full = await runCli(['--json', 'verify', s.specPath, '--mode', 'full']);
      assert.equal(full.code, 3, full.stderr);
      const r = JSON.parse(full.stdout);
      assert.deepEqual(
        r.differences.map((d: { id: string; kind: string; fields?: string[] }) => [d.kind, d.id, d.fields]),
        [['changed', id, ['title']]],
      );
      // The same document rewritten under a newer version: versions mode finds it (no sample needed).
      await rewrite(version + 1, 'external', 'newer version, other bytes');
      const again = await runCli(['--json', 'verify', s.specPath, '--mode', 'versions']);
      assert.equal(again.code, 3, again.stderr);
      const a = JSON.parse(again.stdout);
      assert.deepEqual(
        a.differences.map((d: { id: string; kind: string }) => [d.kind, d.id]),
        [['changed', id]],
      );
      assert.equal(a.versionMismatches, 1 + s.seeded.size - s.expected.size);
      await s.c.close();
    });

    it('refuses an ignore path that is not in the mapping', async () => {
      const s = await scenario(kind, 100, { verify: { ignore: ['title', 'no.such.field'] } });
      const r = await runCli(['run', s.specPath]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /verify\.ignore: "no\.such\.field" not in the mapping/);
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
      await s.c.close();
    });
  });
}
