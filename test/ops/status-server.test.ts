/**
 * The status server during real migrations run through the CLI: /metrics parses as Prometheus text and its
 * counters move; /api/status is the same as JSON; control without the token is refused (401) and audited, bad
 * values are refused (400) and change nothing; pause stops the checkpoints from moving, rate shows in /metrics,
 * resume finishes exactly; `cutover ctl`, the throttle and panic flag files, and panic keeping the checkpoints
 * (the rerun finishes and `verify` proves every document). The dashboard in a real headless Chromium: progress
 * moves through server-sent events, Pause and Resume work from the page, no console error, no external request.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED } from '../support/clusters.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { aliasTargets, type Scenario, trackedScenarios } from '../support/scenario.js';
import {
  auditOf,
  control,
  metrics,
  processedOf,
  type Served,
  served,
  settled,
  status,
  sumOf,
  until,
} from '../support/status.js';

const SECRET = 'S3cret-never-shown';
// The closed loop off: the rates these tests set and read are the operator's alone (its own suite tests it).
const STEADY = { enabled: false };
const KINDS = (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k));
const tracked = trackedScenarios();
afterEach(tracked.drop);

function stateDirOf(s: Scenario): string {
  return join(s.dir, 'state', 'm1');
}

async function exact(s: Scenario): Promise<void> {
  const d = diffDocs(s.expected, await readAll(s.c, s.target));
  assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
  assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
}

/** GET with a Host header of our choosing (fetch may not set it), as a page under a rebound DNS name would send. */
function getWithHost(url: string, host: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet(
      url,
      { headers: { host, ...(token ? { authorization: `Bearer ${token}` } : {}) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
  });
}

async function pausedAndStill(srv: Served): Promise<void> {
  const p1 = await settled(srv);
  // Nothing may move while paused: wait a while, then the checkpoints must say the same.
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(processedOf(await status(srv)), p1, 'the copy advanced while paused');
}

for (const kind of KINDS) {
  describe(`status server on ${kind}`, () => {
    it('metrics and status move; control needs the token, refuses bad values, pauses, paces and resumes', async () => {
      // Slow until paused, fast once resumed (rate 3000): room to observe, little time spent.
      const s = await tracked.scenario(kind, 4000, {
        copy: { batchDocs: 50, concurrency: 1, maxDocsPerSecond: 300, throttle: STEADY },
      });
      // A credential in the spec (the test server ignores it): it must show nowhere the status server answers.
      s.writeSpec({
        copy: { batchDocs: 50, concurrency: 1, maxDocsPerSecond: 300, throttle: STEADY },
        source: { cluster: { url: s.url, auth: { username: 'ops', password: SECRET } } },
      });
      const run = startCli(['--json', 'run', s.specPath, '--listen', '127.0.0.1:0']);
      const srv = await served(stateDirOf(s));
      assert.equal(statSync(join(srv.stateDir, 'status', 'control.token')).mode & 0o777, 0o600);

      const first = await until('copy progress', async () => {
        const st = await status(srv);
        return processedOf(st) > 0 ? st : undefined;
      });
      assert.equal(first.migration, 'm1');
      assert.equal(first.command, 'run');
      assert.equal(first.step.name, 'copy');
      assert.equal(first.copy.sourceDocs, 4000);
      assert.equal(first.copy.slices.length, 3);
      assert.equal(first.throttle.rate, 300);
      assert.ok(
        Array.isArray(first.auditTail) &&
          first.auditTail.some((a: { event: string }) => a.event === 'run-started'),
      );

      const m1 = await metrics(srv);
      assert.equal(m1.families.get('cutover_documents_processed_total')?.type, 'COUNTER');
      assert.equal(m1.families.get('cutover_bulk_duration_seconds')?.type, 'HISTOGRAM');
      assert.ok(sumOf(m1.families, 'cutover_bulk_duration_seconds') > 0, 'bulk latency observed');
      assert.equal(sumOf(m1.families, 'cutover_source_documents', { migration: 'm1' }), 4000);
      assert.equal(sumOf(m1.families, 'cutover_throttle_rate_documents_per_second'), 300);
      assert.equal(sumOf(m1.families, 'cutover_throttle_paused'), 0);
      assert.ok(!m1.text.includes(srv.token), 'the token never shows in /metrics');
      for (const text of [m1.text, JSON.stringify(first), await (await fetch(srv.url)).text()])
        assert.ok(!text.includes(SECRET), 'no credential in metrics, status or the page');
      // A loopback peer that names another host (a rebound DNS name) reads nothing without the token.
      assert.equal(await getWithHost(`${srv.url}/api/status`, 'rebound.example'), 401);
      assert.equal(await getWithHost(`${srv.url}/metrics`, 'rebound.example', srv.token), 200);
      // The watchdog's reading of the clusters' health, as a state set.
      const health = await until('a health reading in /metrics', async () => {
        const f = (await metrics(srv)).families.get('cutover_cluster_health');
        return f?.metrics.length ? f : undefined;
      });
      for (const x of health.metrics) {
        assert.ok(['green', 'yellow', 'red', 'unreachable'].includes(x.labels!.status!));
        assert.match(x.labels!.side!, /source|target/);
      }
      const before = sumOf(m1.families, 'cutover_documents_processed_total');
      await until('the processed counter to move', async () =>
        sumOf((await metrics(srv)).families, 'cutover_documents_processed_total') > before ? true : undefined,
      );

      // No token, a wrong one: refused, audited, nothing changed.
      assert.equal((await control(srv, 'pause', undefined, null as unknown as undefined)).status, 401);
      assert.equal((await control(srv, 'pause', undefined, 'f'.repeat(64))).status, 401);
      assert.equal((await status(srv)).throttle.paused, false);
      assert.ok(auditOf(srv.stateDir).some((a) => a.event === 'control-refused'));
      // Bad values: 400 naming the field and the value; the throttle is as it was.
      const badRate = await control(srv, 'rate', -1);
      assert.equal(badRate.status, 400);
      assert.match(badRate.body.error!, /rate: -1/);
      const badBatch = await control(srv, 'batch', 0);
      assert.equal(badBatch.status, 400);
      assert.match(badBatch.body.error!, /batch: 0/);
      const unknown = await control(srv, 'explode');
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.error!, /unknown action "explode"/);
      const noFlag = await control(srv, 'postpone');
      assert.equal(noFlag.status, 409);
      assert.match(noFlag.body.error!, /postponeFlagFile/);
      const unchanged = (await status(srv)).throttle;
      assert.deepEqual([unchanged.rate, unchanged.batchDocs, unchanged.paused], [300, undefined, false]);

      const paused = await control(srv, 'pause');
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal((await status(srv)).throttle.paused, true);
      await pausedAndStill(srv);
      assert.equal(sumOf((await metrics(srv)).families, 'cutover_throttle_paused'), 1);

      assert.equal((await control(srv, 'rate', 3000)).status, 200);
      assert.equal((await control(srv, 'batch', 200)).status, 200);
      const m2 = await metrics(srv);
      assert.equal(sumOf(m2.families, 'cutover_throttle_rate_documents_per_second'), 3000);
      assert.equal(sumOf(m2.families, 'cutover_throttle_ceiling_documents_per_second'), 3000);
      assert.equal(sumOf(m2.families, 'cutover_throttle_batch_documents'), 200);
      assert.ok(sumOf(m2.families, 'cutover_control_actions_total', { action: 'pause' }) >= 1);

      assert.equal((await control(srv, 'resume')).status, 200);
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      await exact(s);
      assert.ok(!existsSync(join(srv.stateDir, 'status', 'run.json')), 'the registration goes with the run');
      const controls = auditOf(srv.stateDir).filter((a) => a.event === 'control');
      assert.deepEqual(
        controls.map((a) => a.action),
        ['pause', 'rate', 'batch', 'resume'],
      );
      for (const a of controls) {
        assert.equal(a.by, 'control token holder');
        assert.match(String(a.from), /127\.0\.0\.1/);
        assert.ok(a.at);
      }
      assert.equal(controls[1]!.value, 3000);
    });

    it('ctl, the throttle and panic flag files; panic keeps the checkpoints and the rerun is proven', async () => {
      const s = await tracked.scenario(kind, 2000, {
        copy: { batchDocs: 50, concurrency: 2, maxDocsPerSecond: 250, throttle: STEADY },
      });
      const throttleFlag = join(s.dir, 'throttle.flag');
      const panicFlag = join(s.dir, 'panic.flag');
      writeFileSync(throttleFlag, '');
      const run = startCli([
        '--json',
        'run',
        s.specPath,
        '--listen',
        '127.0.0.1:0',
        '--throttle-flag-file',
        throttleFlag,
        '--panic-flag-file',
        panicFlag,
      ]);
      const srv = await served(stateDirOf(s));
      const st = await until('the copy step, held by the flag file', async () => {
        const x = await status(srv);
        return x.step?.name === 'copy' ? x : undefined;
      });
      assert.deepEqual(
        st.throttle.pausedBy.map((p: { by: string }) => p.by),
        ['flag-file'],
      );
      await pausedAndStill(srv);
      assert.equal(processedOf(await status(srv)), 0, 'nothing copied while the throttle flag exists');

      const ctl = await runCli(['ctl', s.specPath, 'status']);
      assert.equal(ctl.code, 0, ctl.stderr);
      assert.equal(JSON.parse(ctl.stdout).migration, 'm1');
      const rate = await runCli(['ctl', s.specPath, 'rate', '600']);
      assert.equal(rate.code, 0, rate.stderr);
      assert.match(rate.stdout, /600 documents per second/);
      const bad = await runCli(['ctl', s.specPath, 'batch', '0']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /batch: "0"/);
      // The operator's resume does not lift the flag file's pause.
      const resume = await runCli(['ctl', s.specPath, 'resume']);
      assert.equal(resume.code, 0, resume.stderr);
      assert.match(resume.stdout, /still paused by flag-file/);

      const { rmSync } = await import('node:fs');
      rmSync(throttleFlag);
      await until('the copy to move once the flag is gone', async () =>
        processedOf(await status(srv)) > 0 ? true : undefined,
      );
      writeFileSync(panicFlag, '');
      const r = await run.done;
      assert.equal(r.code, 130, `panic exits as an interrupt: ${r.stderr.slice(-1500)}`);
      const audit = auditOf(srv.stateDir);
      assert.ok(audit.some((a) => a.event === 'control' && a.action === 'panic' && a.via === 'flag-file'));
      assert.ok(audit.some((a) => a.event === 'control' && a.action === 'pause' && a.via === 'flag-file'));

      const none = await runCli(['ctl', s.specPath, 'pause']);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /no `cutover run`.* is running/);

      // Nothing lost: the rerun resumes from the checkpoints, finishes, and the proof passes.
      const again = await runCli([
        '--json',
        'run',
        s.specPath,
        '--listen',
        'off',
        '--max-docs-per-second',
        '0',
      ]);
      assert.equal(again.code, 0, again.stderr.slice(-2000));
      await exact(s);
      const verify = await runCli(['verify', s.specPath]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    });

    it('`cutover cutover` serves its status while the switch is postponed; unpostpone from the control API lets it switch', async () => {
      const s = await tracked.scenario(kind, 600, {
        capture: { strategy: 'seqno', tailIntervalMs: 200 },
        cutover: { mode: 'manual', postponeFlagFile: 'postpone', retentionHours: 0 },
      });
      const r = await runCli(['run', s.specPath]);
      assert.equal(r.code, 0, r.stderr.slice(-1500));
      assert.deepEqual(
        await aliasTargets(s.c, s.readAlias),
        [s.source],
        'manual mode waits for `cutover cutover`',
      );
      writeFileSync(join(s.dir, 'postpone'), '');
      rmSync(join(stateDirOf(s), 'status', 'run.json'), { force: true });
      const cut = startCli(['--json', 'cutover', s.specPath, '--listen', '127.0.0.1:0']);
      const srv = await served(stateDirOf(s));
      const st = await until('the cutover command catching up while postponed', async () => {
        const x = await status(srv);
        return x.command === 'cutover' && x.catchUp?.rounds > 0 ? x : undefined;
      });
      assert.equal(st.migration, 'm1');
      assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source], 'postponed: nothing switched');
      assert.equal((await control(srv, 'unpostpone', undefined, null as unknown as undefined)).status, 401);
      const un = await control(srv, 'unpostpone');
      assert.equal(un.status, 200, JSON.stringify(un.body));
      const done = await cut.done;
      assert.equal(done.code, 0, done.stderr.slice(-1500));
      assert.equal(existsSync(join(s.dir, 'postpone')), false, 'unpostpone removed the flag file');
      assert.ok(auditOf(srv.stateDir).some((a) => a.event === 'control' && a.action === 'unpostpone'));
      await exact(s);
    });
  });
}

describe('status server of the write proxy', () => {
  it('serves its counters and journal end, and refuses to steer a copy it does not run', async () => {
    const kind = KINDS[0]!;
    const s = await tracked.scenario(kind, 10, {
      capture: { strategy: 'proxy' },
      cutover: { postponeFlagFile: './postpone.flag' },
    });
    const flag = join(s.dir, 'postpone.flag');
    const proxy = startCli([
      'proxy',
      s.specPath,
      '--listen',
      '127.0.0.1:0',
      '--status-listen',
      '127.0.0.1:0',
    ]);
    let out = '';
    proxy.child.stdout!.on('data', (d) => {
      out += d;
    });
    try {
      const srv = await served(stateDirOf(s), 'proxy');
      const before = sumOf((await metrics(srv)).families, 'cutover_proxy_requests_total');
      const dataUrl = await until('the proxy address', () => /proxy listening on (\S+)/.exec(out)?.[1]);
      const w = await fetch(`${dataUrl}/${s.writeAlias}/_doc/p1?refresh=true`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'through the proxy', qty: '1', tags: ['a'], n: 1 }),
      });
      assert.ok(w.status < 300, `write through the proxy: ${w.status}`);
      const m = await metrics(srv);
      assert.ok(sumOf(m.families, 'cutover_proxy_requests_total') > before, 'the request counter moved');
      // The start entry and the write (journaled just after its answer).
      await until('the write in the journal', async () =>
        sumOf((await metrics(srv)).families, 'cutover_journal_end') >= 2 ? true : undefined,
      );
      assert.equal(sumOf(m.families, 'cutover_proxy_holding'), 0);
      const st = await status(srv);
      assert.equal(st.command, 'proxy');
      assert.equal(st.proxy.holding, false);
      const refused = await control(srv, 'pause');
      assert.equal(refused.status, 409);
      assert.match(refused.body.error!, /copies nothing/);
      const ctl = await runCli(['ctl', s.specPath, 'status', '--proxy']);
      assert.equal(ctl.code, 0, ctl.stderr);
      assert.equal(JSON.parse(ctl.stdout).command, 'proxy');
      // postpone / unpostpone: the spec's flag file, created and removed, each audited.
      const postpone = await runCli(['ctl', s.specPath, 'postpone', '--proxy']);
      assert.equal(postpone.code, 0, postpone.stderr);
      assert.ok(existsSync(flag));
      assert.match(readFileSync(flag, 'utf8'), /postponed by the control token holder at 127\.0\.0\.1/);
      assert.equal((await status(srv)).postpone.postponed, true);
      const unpostpone = await runCli(['ctl', s.specPath, 'unpostpone', '--proxy']);
      assert.equal(unpostpone.code, 0, unpostpone.stderr);
      assert.ok(!existsSync(flag));
      const actions = auditOf(srv.stateDir)
        .filter((a) => a.event === 'control')
        .map((a) => `${a.action} ${a.command}`);
      assert.deepEqual(actions, ['postpone proxy', 'unpostpone proxy']);
    } finally {
      proxy.child.kill('SIGTERM');
      await proxy.done;
    }
  });
});

describe('dashboard in a real browser', () => {
  const browser = chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  after(async () => (await browser).close());

  it('shows progress moving over server-sent events, and pauses and resumes from the page', async () => {
    const kind = KINDS[0]!;
    const s = await tracked.scenario(kind, 3000, {
      copy: { batchDocs: 50, concurrency: 1, maxDocsPerSecond: 300, throttle: STEADY },
    });
    const run = startCli(['--json', 'run', s.specPath, '--listen', '127.0.0.1:0']);
    const srv = await served(stateDirOf(s));
    const page = await (await browser).newPage();
    const errors: string[] = [];
    const external: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (req) => {
      if (!req.url().startsWith(srv.url) && !req.url().startsWith('data:')) external.push(req.url());
    });
    await page.goto(srv.url);
    const shown = async () => Number((await page.textContent('#processed'))!.replace(/,/g, ''));
    const a = await until('a progress figure on the page', async () =>
      (await shown()) > 0 ? shown() : undefined,
    );
    await until('the page to show progress moving', async () => ((await shown()) > a ? true : undefined));
    assert.equal(await page.textContent('#migration'), 'm1');

    await page.fill('#token', srv.token);
    await page.dispatchEvent('#token', 'change');
    await page.click('#btn-pause');
    await until('the page to show PAUSED', async () =>
      (await page.textContent('#tstate')) === 'PAUSED' ? true : undefined,
    );
    assert.match((await page.textContent('#answer'))!, /copy paused/);
    await pausedAndStill(srv);
    // docs/dashboard.png is made this way: CUTOVER_DASHBOARD_SCREENSHOT=docs/dashboard.png
    if (process.env.CUTOVER_DASHBOARD_SCREENSHOT) {
      await page.setViewportSize({ width: 1400, height: 1000 });
      await page.screenshot({ path: process.env.CUTOVER_DASHBOARD_SCREENSHOT, fullPage: true });
    }
    await page.click('#btn-resume');
    const r = await run.done;
    // Taken as the run ends: the page then reports the lost connection and retries, as it should.
    const errorsWhileRunning = [...errors];
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    await exact(s);
    assert.deepEqual(errorsWhileRunning, [], 'no console errors');
    assert.deepEqual(external, [], 'no request leaves the status server');
    const actions = auditOf(srv.stateDir)
      .filter((x) => x.event === 'control')
      .map((x) => x.action);
    assert.deepEqual(actions, ['pause', 'resume']);
    await page.close();
  });
});
