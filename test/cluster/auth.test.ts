/**
 * Security-enabled Elasticsearch: basic auth, API keys, TLS verified by CA file or pinned fingerprint, and a
 * canary password that must appear nowhere: not in output, errors, state files or reports, even on failure.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { Cluster } from '../../src/cluster/client.js';
import { ClusterError, TransportError } from '../../src/cluster/errors.js';
import { runCli } from '../support/cli.js';
import { testCluster, uniqueName } from '../support/clusters.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('security-enabled Elasticsearch 8', () => {
  const sec = testCluster('es8sec');
  const admin = new Cluster({ url: sec.url, auth: { username: sec.username!, password: sec.password! } });

  it('authenticates with basic auth and refuses a wrong password with a typed 401', async () => {
    const caps = await admin.capabilities();
    assert.equal(caps.major, 8);
    const wrong = new Cluster({
      url: sec.url,
      auth: { username: sec.username!, password: 'not-the-password' },
    });
    await assert.rejects(
      wrong.health(),
      (e: unknown) => e instanceof ClusterError && e.status === 401 && e.type === 'security_exception',
    );
    const anonymous = new Cluster({ url: sec.url });
    await assert.rejects(anonymous.health(), (e: unknown) => e instanceof ClusterError && e.status === 401);
    await wrong.close();
    await anonymous.close();
  });

  it('authenticates with an API key', async () => {
    const r = await admin.request<{ encoded: string }>({
      method: 'POST',
      path: '/_security/api_key',
      body: { name: uniqueName('key') },
    });
    const keyed = new Cluster({ url: sec.url, auth: { apiKey: r.body.encoded } });
    const h = await keyed.health();
    assert.ok(['green', 'yellow'].includes(h.status));
    const bad = new Cluster({ url: sec.url, auth: { apiKey: Buffer.from('nope:nope').toString('base64') } });
    await assert.rejects(bad.health(), (e: unknown) => e instanceof ClusterError && e.status === 401);
    await keyed.close();
    await bad.close();
  });

  it('never shows a canary password: successful run, failing run, credentials in the URL', async () => {
    const canary = `Canary-${randomBytes(6).toString('hex')}`;
    const user = uniqueName('canary').replace(/-/g, '_');
    const role = `${user}_role`;
    const source = uniqueName('sec-src');
    await admin.request({
      method: 'PUT',
      path: `/_security/role/${role}`,
      body: { cluster: ['monitor'], indices: [{ names: [`${source}*`], privileges: ['all'] }] },
    });
    await admin.request({
      method: 'PUT',
      path: `/_security/user/${user}`,
      body: { password: canary, roles: [role] },
    });
    await admin.createIndex(source, { settings: { number_of_shards: 2, number_of_replicas: 0 } });
    await admin.bulk(`{"index":{"_index":"${source}","_id":"1"}}\n{"a":1}\n`, { refresh: true });

    const dir = mkdtempSync(join(tmpdir(), 'cutover-canary-'));
    const spec = (s: Record<string, unknown>) => {
      const p = join(dir, `${randomBytes(3).toString('hex')}.yaml`);
      writeFileSync(p, YAML.stringify(s));
      return p;
    };
    const env = { CANARY_PASSWORD: canary };
    const ok = await runCli(
      [
        'run',
        spec({
          name: 'ok',
          source: {
            cluster: { url: sec.url, auth: { username: user, passwordEnv: 'CANARY_PASSWORD' } },
            index: source,
          },
          target: { index: `${source}-v2` },
        }),
      ],
      env,
    );
    assert.equal(ok.code, 0, ok.stderr);

    // No privilege on this index: the run fails with a 403 from the server.
    const denied = await runCli(
      [
        'run',
        spec({
          name: 'denied',
          source: {
            cluster: { url: sec.url, auth: { username: user, passwordEnv: 'CANARY_PASSWORD' } },
            index: '.security',
          },
          target: { index: `${source}-v3` },
        }),
      ],
      env,
    );
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /403|security_exception|unauthorized/i);

    // Credentials inside the URL, wrong port: a transport failure that prints the URL.
    const url = new URL(sec.url);
    const inUrl = await runCli([
      'plan',
      spec({
        name: 'url',
        source: { cluster: { url: `http://${user}:${canary}@127.0.0.1:1` }, index: source },
        target: { index: `${source}-v4` },
      }),
    ]);
    assert.notEqual(inUrl.code, 0);
    assert.ok(url.port);

    // Inline password in the spec file (discouraged, but it must not leak either), wrong one: 401.
    const inline = await runCli([
      'run',
      spec({
        name: 'inline',
        source: {
          cluster: { url: sec.url, auth: { username: user, password: `${canary}x` } },
          index: source,
        },
        target: { index: `${source}-v5` },
      }),
    ]);
    assert.equal(inline.code, 5, inline.stderr);

    for (const r of [ok, denied, inUrl, inline]) {
      assert.ok(
        !r.stdout.includes(canary) && !r.stderr.includes(canary),
        `canary leaked in output: ${r.stderr.slice(0, 300)}`,
      );
      assert.ok(
        !r.stderr.includes(Buffer.from(`${user}:${canary}`).toString('base64')),
        'basic auth token leaked',
      );
    }
    for (const f of filesUnder(join(dir, '.cutover'))) {
      assert.ok(!readFileSync(f, 'utf8').includes(canary), `canary leaked into ${f}`);
    }
  });
});

describe('TLS (security-enabled Elasticsearch 8 over HTTPS)', () => {
  const tls = testCluster('es8tls');
  const auth = { username: tls.username!, password: tls.password! };

  it('verifies the server with a CA file', async () => {
    const c = new Cluster({ url: tls.url, auth, tls: { caFile: tls.caFile } });
    assert.equal((await c.capabilities()).major, 8);
    await c.close();
  });

  it('verifies the server with a pinned CA fingerprint', async () => {
    const c = new Cluster({ url: tls.url, auth, tls: { caFingerprint: tls.caFingerprint } });
    assert.equal((await c.capabilities()).major, 8);
    await c.close();
  });

  it('refuses an unknown certificate by default and a wrong fingerprint', async () => {
    const plain = new Cluster({ url: tls.url, auth });
    await assert.rejects(
      plain.health(),
      (e: unknown) => e instanceof TransportError && /certificate|self.signed|verify/i.test(e.message),
    );
    const wrong = new Cluster({ url: tls.url, auth, tls: { caFingerprint: 'ab'.repeat(32) } });
    await assert.rejects(
      wrong.health(),
      (e: unknown) => e instanceof TransportError && /fingerprint/.test(e.message),
    );
    await plain.close();
    await wrong.close();
  });
});
