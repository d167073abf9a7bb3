// Throwaway probe (not committed): sequential PUTs direct vs through `cutover proxy`, state dir given by argv.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
const url = process.env.CUTOVER_TEST_ES8_URL!;
const stateDir = process.argv[2]!;
const mode = process.argv[3] ?? 'seq';
mkdirSync(stateDir, { recursive: true });
const es = new Pool(url);
await es.request({ method: 'DELETE', path: '/lat-src' }).then((r) => r.body.dump());
await (await es.request({ method: 'PUT', path: '/lat-src', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ settings: { number_of_shards: 1, number_of_replicas: 0 } }) })).body.dump();
await (await es.request({ method: 'POST', path: '/_aliases', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ actions: [{ add: { index: 'lat-src', alias: 'lat-w', is_write_index: true } }] }) })).body.dump();
const spec = join(stateDir, 'spec.yaml');
writeFileSync(spec, `name: lat\nsource: { cluster: { url: ${url} }, index: lat-src }\ntarget: { index: lat-dst }\naliases: { write: lat-w }\ncapture: { strategy: proxy }\nstateDir: ${stateDir}\n`);
const p = spawn(process.execPath, ['dist/src/cli/main.js', 'proxy', spec, '--listen', '127.0.0.1:0', '--status-listen', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
const proxyUrl = await new Promise<string>((res) => { const f = (d: Buffer) => { out += d; const m = /proxy listening on (\S+)/.exec(out); if (m) res(m[1]!); }; p.stdout.on('data', f); p.stderr.on('data', f); });
const px = new Pool(proxyUrl);
async function run(pool: Pool, n: number, tag: string) {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await pool.request({ method: 'PUT', path: `/lat-w/_doc/${tag}-${i % 500}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: i, title: 'x'.repeat(200) }) });
    await r.body.dump();
    t.push(performance.now() - s);
    if (mode === 'paced') await new Promise((r) => setTimeout(r, 5));
  }
  t.sort((a, b) => a - b);
  return { p50: +t[Math.floor(n / 2)]!.toFixed(2), p90: +t[Math.floor(n * 0.9)]!.toFixed(2), p99: +t[Math.floor(n * 0.99)]!.toFixed(2) };
}
for (let round = 0; round < 2; round++) {
  console.log('direct', JSON.stringify(await run(es, 1000, 'd')));
  console.log('proxy ', JSON.stringify(await run(px, 1000, 'p')));
}
p.kill('SIGTERM');
await px.close(); await es.close();
