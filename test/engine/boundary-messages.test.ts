/**
 * What the operator reads when the boundary fails: every message names the spec field to fix and what to do,
 * no secret appears in any output, a slow failure says what it is retrying while it does, and a reader that
 * stops early (`| head -1`) is no crash.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { CLI, type CliResult, runCli } from '../support/cli.js';
import { testCluster, uniqueName } from '../support/clusters.js';
import { clusterOf, seed } from '../support/data.js';

const dir = mkdtempSync(join(tmpdir(), 'cutover-messages-'));

function specFile(name: string, spec: Record<string, unknown>): string {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(p, YAML.stringify({ name, target: { index: `${name}-v2` }, stateDir: './state', ...spec }));
  return p;
}

function assertNowhere(r: CliResult, secret: string): void {
  assert.ok(
    !r.stdout.includes(secret) && !r.stderr.includes(secret),
    `secret leaked: ${r.stderr.slice(0, 400)}`,
  );
}

/** A port nothing listens on: bound by us a moment ago, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a secret in the cluster URL', () => {
  it('is never echoed by a validation error, with or without a scheme', async () => {
    const secret = 'S3cretInUrl99';
    for (const url of [
      `http://elastic:${secret}@127.0.0.1:381150`,
      `elastic:${secret}@127.0.0.1:9200`,
      `http://elastic:${secret}/x@127.0.0.1:9200`,
    ]) {
      const r = await runCli(['plan', specFile('badurl', { source: { cluster: { url }, index: 'a' } })]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /source\.cluster\.url: /);
      assertNowhere(r, secret);
    }
  });

  it('says which credentials are used when the URL carries some and auth is set too', async () => {
    const sec = testCluster('es8sec');
    const admin = clusterOf(sec);
    const source = uniqueName('msg-src');
    await seed(admin, source, 3, (i) => ({ id: `d${i}`, doc: { n: i } }));
    const stale = 'StaleUrlPw42';
    const u = new URL(sec.url);
    u.username = sec.username!;
    u.password = stale;
    const r = await runCli(
      [
        'plan',
        specFile('twoauth', {
          source: {
            cluster: { url: u.toString(), auth: { username: sec.username, passwordEnv: 'CUTOVER_MSG_PW' } },
            index: source,
          },
        }),
      ],
      { CUTOVER_MSG_PW: sec.password! },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /source\.cluster\.url carries credentials and source\.cluster\.auth is set too: using .*source\.cluster\.auth\.passwordEnv \(CUTOVER_MSG_PW\); the credentials in the URL are ignored/,
    );
    assertNowhere(r, stale);
    assertNowhere(r, sec.password!);
    await admin.deleteIndex(source);
    await admin.close();
  });
});

describe('cluster failures name the field to fix', () => {
  it('https:// against a plain-HTTP server says to use http://', async () => {
    const es8 = testCluster('es8');
    const url = es8.url.replace(/^http:/, 'https:');
    const r = await runCli(['plan', specFile('tls', { source: { cluster: { url }, index: 'a' } })]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      r.stderr,
      /source\.cluster: the server at https:\/\/\S+ answered plain HTTP to a TLS request: use http:\/\/ in source\.cluster\.url/,
    );
    assert.doesNotMatch(r.stderr, /ssl3_get_record/);
  });

  it('a wrong password names the setting it came from and is never printed', async () => {
    const sec = testCluster('es8sec');
    const wrong = `Wrong-${sec.password}-pw`;
    const r = await runCli(
      [
        'plan',
        specFile('wrongpw', {
          source: {
            cluster: { url: sec.url, auth: { username: sec.username, passwordEnv: 'CUTOVER_MSG_PW' } },
            index: 'a',
          },
        }),
      ],
      { CUTOVER_MSG_PW: wrong },
    );
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      r.stderr,
      /-> 401 .*the credentials were refused; check .*source\.cluster\.auth\.passwordEnv \(CUTOVER_MSG_PW\)/,
    );
    assertNowhere(r, wrong);

    const u = new URL(sec.url);
    u.username = sec.username!;
    u.password = wrong;
    const inUrl = await runCli([
      'plan',
      specFile('wrongurl', { source: { cluster: { url: u.toString() }, index: 'a' } }),
    ]);
    assert.equal(inUrl.code, 5, inUrl.stderr);
    assert.match(inUrl.stderr, /the credentials were refused; check the credentials in source\.cluster\.url/);
    assertNowhere(inUrl, wrong);
  });

  it('a closed port is announced while retried, then named with the field', async () => {
    const port = await closedPort();
    const r = await runCli([
      'plan',
      specFile('closed', { source: { cluster: { url: `http://127.0.0.1:${port}` }, index: 'a' } }),
    ]);
    assert.equal(r.code, 5, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.match(
      lines[0]!,
      new RegExp(
        `^cutover: source\\.cluster: connection refused by 127\\.0\\.0\\.1:${port} .*; retrying \\(attempt 2, next in \\d+ ms`,
      ),
    );
    assert.match(
      lines.at(-1)!,
      new RegExp(
        `source\\.cluster: connection refused by 127\\.0\\.0\\.1:${port} .*; retried \\d+ time\\(s\\) over [\\d.]+ s: is the cluster running, and is source\\.cluster\\.url`,
      ),
    );
  });
});

describe('a transform with a syntax error', () => {
  it('is reported with file, line and column, also when a module it imports is broken', async () => {
    const es8 = testCluster('es8');
    writeFileSync(
      join(dir, 'broken.mjs'),
      'export default function (doc) {\n  const x = ;\n  return doc;\n}\n',
    );
    writeFileSync(join(dir, 'outer.mjs'), 'import t from "./broken.mjs";\nexport default t;\n');
    const source = { cluster: { url: es8.url }, index: 'a' };
    const r = await runCli(['plan', specFile('tbroken', { source, transform: './broken.mjs' })]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /transform: \S*broken\.mjs:2:13: SyntaxError: Unexpected token ';'/);
    const nested = await runCli(['plan', specFile('tnested', { source, transform: './outer.mjs' })]);
    assert.equal(nested.code, 2, nested.stderr);
    assert.match(
      nested.stderr,
      /transform: \S*broken\.mjs:2:13: SyntaxError: .* \(imported by \S*outer\.mjs\)/,
    );
  });
});

describe('status of a cluster that does not answer', () => {
  it('says which index it could not check and why, and exits 0 (the state is still shown)', async () => {
    const port = await closedPort();
    const r = await runCli([
      'status',
      specFile('status-down', { source: { cluster: { url: `http://127.0.0.1:${port}` }, index: 'a' } }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout + r.stderr,
      /could not check target index status-down-v2 on http:\/\/127\.0\.0\.1:\d+\/ for a write block: .*connection refused/,
    );
    assert.match(r.stdout, /migration\s+status-down/);
  });
});

describe('stdout closed by the reader', () => {
  const spec = () => specFile('epipe', { source: { cluster: { url: 'http://127.0.0.1:9' }, index: 'a' } });

  it('ends quietly when the pipe is gone before the first write', async () => {
    const path = spec();
    for (let i = 0; i < 5; i++) {
      const child = spawn(process.execPath, [CLI, 'status', path], { stdio: ['ignore', 'pipe', 'pipe'] });
      // The read end closes before the child writes: its first write meets EPIPE, deterministically.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0, stderr);
      assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
    }
  });

  it('ends quietly in a shell pipeline whose reader is already gone', () => {
    const path = spec();
    for (let i = 0; i < 5; i++) {
      // `| head -1` meets EPIPE only when head exits between two writes (a race); a reader that exits at once
      // makes every write meet it.
      const r = spawnSync(
        'bash',
        ['-c', `"${process.execPath}" "${CLI}" status "${path}" | true; exit \${PIPESTATUS[0]}`],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /EPIPE|Unhandled/);
    }
  });
});
