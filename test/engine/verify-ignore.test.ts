/**
 * verify.ignore leaves exactly the named field out of the proof: a field the copy stamps differently on every
 * pass fails the proof without it and passes with it, while a difference in any other field is still found.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { aliasTargets, scenario } from '../support/scenario.js';

/** The scenario's transform plus an audit stamp that differs on every call, as a "copied at" field would. */
const STAMPING = `import { randomUUID } from 'node:crypto';
export default function (doc, meta) {
  if (doc.drop) return null;
  const { qty, ...rest } = doc;
  return { ...rest, quantity: Number(qty), slot: meta.id.length, audit: { copy_id: randomUUID(), v: 2 } };
}
`;

interface Report {
  passed: boolean;
  changed: number;
  missing: number;
  extra: number;
  differences: Array<{ id: string; kind: string; fields?: string[] }>;
}

describe('verify.ignore on es8', () => {
  it('leaves out the ignored field only: the stamp stops failing the proof, another field still does', async () => {
    const s = await scenario('es8', 400, { cutover: { mode: 'manual' } });
    writeFileSync(join(s.dir, 'stamping.mjs'), STAMPING);
    const spec = {
      cutover: { mode: 'manual' },
      // The stamp changes content without changing versions: only a content proof of every document sees it.
      verify: { mode: 'full' },
      transform: './stamping.mjs',
      target: {
        mappingOverrides: {
          properties: { audit: { properties: { copy_id: { type: 'keyword' }, v: { type: 'integer' } } } },
        },
      },
    };
    s.writeSpec(spec);
    const proofOf = () =>
      JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'proof.json'), 'utf8')) as Report;

    // Without ignore: the proof inside `run` finds every copied document changed in that one field.
    const run = await runCli(['run', s.specPath]);
    assert.equal(run.code, 3, run.stderr);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
    const inRun = proofOf();
    assert.equal(inRun.passed, false);
    assert.equal(inRun.changed, s.expected.size);
    assert.deepEqual([inRun.missing, inRun.extra], [0, 0]);
    for (const d of inRun.differences) assert.deepEqual(d.fields, ['audit.copy_id'], d.id);

    const unignored = await runCli(['--json', 'verify', s.specPath]);
    assert.equal(unignored.code, 3, unignored.stderr);
    const u = JSON.parse(unignored.stdout) as Report;
    assert.equal(u.changed, s.expected.size);
    assert.ok(u.differences.length > 0);
    for (const d of u.differences) assert.deepEqual([d.kind, d.fields], ['changed', ['audit.copy_id']], d.id);

    // With the stamp ignored the same indices prove equal, and the rest of `audit` is still compared.
    s.writeSpec({ ...spec, verify: { mode: 'full', ignore: ['audit.copy_id'] } });
    const ignored = await runCli(['--json', 'verify', s.specPath]);
    assert.equal(ignored.code, 0, (ignored.stdout + ignored.stderr).slice(0, 1500));
    const i = JSON.parse(ignored.stdout) as Report;
    assert.equal(i.passed, true);
    assert.deepEqual([i.missing, i.extra, i.changed], [0, 0, 0]);
    assert.equal(proofOf().passed, true);

    // A difference elsewhere (one document's title, another's audit.v) is still found, and only it.
    const [titleId, auditId] = [...s.expected.keys()].slice(3, 5) as [string, string];
    const current = async (id: string) =>
      (await s.c.mget(s.target, [{ _id: id, routing: s.expected.get(id)!.routing }])).docs[0]!
        ._source as Record<string, unknown>;
    const titleDoc = { ...(await current(titleId)), title: 'tampered on the target' };
    const auditDoc = await current(auditId);
    const tamperedAudit = { ...auditDoc, audit: { ...(auditDoc.audit as object), v: 3 } };
    const put = (id: string, doc: unknown) =>
      `${JSON.stringify({ index: { _index: s.target, _id: id, routing: s.expected.get(id)!.routing, version: 10_000_000, version_type: 'external' } })}\n${JSON.stringify(doc)}\n`;
    await s.c.bulk(put(titleId, titleDoc) + put(auditId, tamperedAudit), { refresh: true });
    const caught = await runCli(['--json', 'verify', s.specPath]);
    assert.equal(caught.code, 3, caught.stderr);
    const c = JSON.parse(caught.stdout) as Report;
    assert.deepEqual([c.missing, c.extra, c.changed], [0, 0, 2]);
    assert.deepEqual(
      c.differences.map((d) => [d.id, d.kind, d.fields]).sort(),
      [
        [titleId, 'changed', ['title']],
        [auditId, 'changed', ['audit.v']],
      ].sort(),
    );

    // And the switch is refused on it.
    const cut = await runCli(['cutover', s.specPath]);
    assert.equal(cut.code, 3, cut.stderr);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
    await s.c.close();
  });
});
