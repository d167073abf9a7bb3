/** Bad input: a clear error naming the field or value, a non-zero exit, and nothing changed on the cluster. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { aliasTargets, scenario } from '../support/scenario.js';

describe('bad input (es8)', () => {
  it('rejects an invalid spec naming the field and the value', async () => {
    const s = await scenario('es8', 10);
    s.writeSpec({ target: { index: 'Bad Name' }, copy: { batchDocs: 0 }, surprise: true });
    const r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /target\.index: .*\(got "Bad Name"\)/);
    assert.match(r.stderr, /copy\.batchDocs: .*\(got 0\)/);
    assert.match(r.stderr, /unknown field\(s\) surprise/);
    const missing = await runCli(['run', join(s.dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read spec .*nope\.yaml: ENOENT/);
    writeFileSync(join(s.dir, 'broken.yaml'), 'name: [unclosed');
    const broken = await runCli(['run', join(s.dir, 'broken.yaml')]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /not valid YAML/);
    await s.c.close();
  });

  it('refuses a transform that cannot be loaded, and leaves no lock behind', async () => {
    const s = await scenario('es8', 20);
    s.writeSpec({ transform: './no-such-transform.mjs' });
    const r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /transform: cannot load .*no-such-transform\.mjs/);
    assert.equal(await s.c.indexExists(s.target), false);
    s.writeSpec({});
    const ok = await runCli(['run', s.specPath]);
    assert.equal(ok.code, 0, `a failed start must not leave a stale lock: ${ok.stderr.slice(-300)}`);
    await s.c.close();
  });

  it('refuses a missing source, an existing target, a missing alias and an alias on several indices', async () => {
    const s = await scenario('es8', 10);
    s.writeSpec({ source: { index: 'no-such-index-anywhere' } });
    let r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /source\.index: no index or alias named "no-such-index-anywhere"/);

    await s.c.createIndex(s.target, {});
    s.writeSpec({});
    r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`target\\.index: "${s.target}" already exists`));
    r = await runCli(['run', s.specPath, '--reuse-target']);
    assert.equal(r.code, 2, 'reuse with other mappings is refused');
    assert.match(r.stderr, /mappings differ from the spec's at properties/);
    await s.c.deleteIndex(s.target);

    s.writeSpec({ aliases: { read: [`${s.source}-nope`] } });
    r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`alias "${s.source}-nope" does not exist`));

    const other = `${s.source}-other`;
    await s.c.createIndex(other, { aliases: { [s.readAlias]: {} } });
    s.writeSpec({ source: { index: s.source } });
    r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`alias "${s.readAlias}" points at several indices`));

    assert.equal(await s.c.indexExists(s.target), false, 'no target was created by any refused run');
    assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
    await s.c.close();
  });
});
