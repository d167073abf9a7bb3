import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { EXPECTED, FLAVORS, type TestCluster, testCluster } from '../support/clusters.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

async function get(
  c: TestCluster,
  path: string,
  opts: { auth?: 'none' | 'wrong'; url?: string; ca?: 'none' } = {},
): Promise<Reply> {
  const agent = new Agent({
    connect: c.caFile && opts.ca !== 'none' ? { ca: readFileSync(c.caFile) } : {},
  });
  const headers: Record<string, string> = {};
  if (c.username && opts.auth !== 'none') {
    const password = opts.auth === 'wrong' ? `${c.password}-wrong` : c.password;
    headers.authorization = `Basic ${Buffer.from(`${c.username}:${password}`).toString('base64')}`;
  }
  try {
    const res = await request(new URL(path, opts.url ?? c.url), { dispatcher: agent, headers });
    const text = await res.body.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Keep plain-text bodies as they are.
    }
    return { status: res.statusCode, headers: res.headers, body };
  } finally {
    await agent.close();
  }
}

interface NodeInfo {
  name: string;
  version: string;
  http: { bound_address: string[]; publish_address: string };
  transport: { bound_address: string[]; publish_address: string };
  process: { id: number };
}

async function localNode(c: TestCluster): Promise<NodeInfo> {
  const res = await get(c, '/_nodes/_local/http,transport,process');
  assert.equal(res.status, 200, `nodes info: ${JSON.stringify(res.body)}`);
  const nodes = Object.values((res.body as { nodes: Record<string, NodeInfo> }).nodes);
  assert.equal(nodes.length, 1);
  return nodes[0]!;
}

/** Listening TCP sockets on `port` from /proc: [local address hex, ...]. No packet leaves the box. */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [addr, p] = (cols[1] ?? '').split(':');
      // State 0A is LISTEN.
      if (p === hexPort && cols[3] === '0A') found.push(`${file.endsWith('6') ? 'v6' : 'v4'}:${addr}`);
    }
  }
  return found;
}

// 127.0.0.1 as /proc/net shows it: plain IPv4, or IPv4-mapped IPv6 (what a JVM socket often uses).
const LOOPBACK = new Set(['v4:0100007F', 'v6:0000000000000000FFFF00000100007F']);

function assertLoopbackOnly(port: number): void {
  const found = listeners(port);
  assert.equal(found.length, 1, `listeners on port ${port}: ${found.join(', ')}`);
  assert.ok(LOOPBACK.has(found[0]!), `port ${port} is bound to ${found[0]}, not 127.0.0.1`);
}

for (const id of EXPECTED) {
  describe(`local ${id} server`, () => {
    const flavor = FLAVORS[id];

    it(`is ${flavor.distribution} ${flavor.major}.x`, async () => {
      const c = testCluster(id);
      const node = await localNode(c);
      assert.equal(Number(node.version.split('.')[0]), flavor.major, `version ${node.version}`);
      const root = await get(c, '/');
      // Elasticsearch stamps every response since 7.14; OpenSearch never does.
      const product = root.headers['x-elastic-product'];
      if (flavor.distribution === 'elasticsearch') {
        assert.equal(product, 'Elasticsearch');
      } else {
        assert.equal(product, undefined);
        assert.equal(root.status, 200);
        const version = (root.body as { version: { distribution?: string; number: string } }).version;
        assert.equal(version.distribution, 'opensearch');
        assert.equal(version.number, node.version);
      }
    });

    it('listens on 127.0.0.1 only', async () => {
      const c = testCluster(id);
      const node = await localNode(c);
      for (const addrs of [node.http.bound_address, node.transport.bound_address]) {
        assert.ok(addrs.length > 0);
        for (const a of addrs) assert.match(a, /^127\.0\.0\.1:\d+$/);
      }
      assert.match(node.http.publish_address, /(^|\/)127\.0\.0\.1:\d+$/);
      const port = Number(new URL(c.url).port);
      assert.equal(node.http.bound_address[0], `127.0.0.1:${port}`);
      assertLoopbackOnly(port);
      const transportPort = Number(node.transport.bound_address[0]!.split(':').pop());
      assertLoopbackOnly(transportPort);
    });

    it('exports the pid of the server JVM', async () => {
      const c = testCluster(id);
      assert.ok(c.pid !== undefined && c.pid > 0, `CUTOVER_TEST_${id.toUpperCase()}_PID is not set`);
      const node = await localNode(c);
      assert.equal(node.process.id, c.pid);
      const cmdline = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8');
      assert.match(cmdline, /\bjava\0/);
    });

    if (id === 'es8sec' || id === 'es8tls') {
      it('rejects requests without or with wrong credentials', async () => {
        const c = testCluster(id);
        for (const auth of ['none', 'wrong'] as const) {
          const res = await get(c, '/_cluster/health', { auth });
          assert.equal(res.status, 401, `auth=${auth}: ${JSON.stringify(res.body)}`);
        }
        const ok = await get(c, '/_cluster/health');
        assert.equal(ok.status, 200);
        const who = await get(c, '/_security/_authenticate');
        assert.equal((who.body as { username: string }).username, c.username);
      });
    }

    if (id === 'es8sec') {
      it('serves plain HTTP', () => {
        assert.equal(new URL(testCluster(id).url).protocol, 'http:');
      });
    }

    if (id === 'es8tls') {
      it('serves HTTPS signed by the exported CA', async () => {
        const c = testCluster(id);
        assert.equal(new URL(c.url).protocol, 'https:');
        const ca = new X509Certificate(readFileSync(c.caFile!));
        assert.equal(createHash('sha256').update(ca.raw).digest('hex'), c.caFingerprint);
        assert.ok(ca.ca, 'CA file holds a CA certificate');
        await assert.rejects(
          get(c, '/_cluster/health', { ca: 'none' }),
          /self.signed|unable to verify|certificate/i,
        );
        const plain = new URL(c.url);
        plain.protocol = 'http:';
        // ES answers cleartext on a TLS port by closing the connection.
        await assert.rejects(get(c, '/_cluster/health', { url: plain.toString() }));
      });
    }
  });
}
