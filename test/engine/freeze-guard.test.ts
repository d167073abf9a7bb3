/**
 * The application never depends on the runner staying alive: a `run` killed (kill -9) or stuck inside the write
 * freeze leaves the source writable again within the freeze budget and a margin, with no command run by anyone;
 * the freeze guard lifts the block. A later plain `run` finishes the migration with every write intact, and
 * `status` says loudly when a write block is in place and how to lift it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../../src/cluster/client.js';
import { application, type Log } from '../support/app-writer.js';
import { runCli, startCli } from '../support/cli.js';
import { testCluster } from '../support/clusters.js';
import { canon, readAll } from '../support/data.js';
import { aliasTargets, type Scenario, scenario, transformDoc } from '../support/scenario.js';

const BUDGET_MS = 3000;
/** The guard's margin (2 s) plus room for a loaded 2-core test machine. */
const SLACK_MS = 5000;

async function blocked(c: Cluster, index: string): Promise<boolean> {
  const st = Object.values(await c.getSettings(index))[0]!.settings;
  return st['index.blocks.write'] === 'true';
}

/** Polls until the block is gone; returns when it went, or undefined if it stayed until `until`. */
async function liftedBy(c: Cluster, index: string, until: number): Promise<number | undefined> {
  while (Date.now() < until) {
    if (!(await blocked(c, index))) return Date.now();
    await sleep(100);
  }
  return undefined;
}

/** The application's writes are acknowledged again (a few more than when asked), within a generous time. */
async function writesFlow(log: Log): Promise<void> {
  const from = log.acked;
  const until = Date.now() + 20_000;
  while (log.acked < from + 5 && Date.now() < until) await sleep(50);
  assert.ok(log.acked >= from + 5, `writes acknowledged after the lift: ${log.acked - from}`);
}

/** States written to the old index reach the target through the transform; later ones were written there as is. */
async function assertExact(s: Scenario, log: Log): Promise<void> {
  const actual = await readAll(s.c, s.target);
  const bad: string[] = [];
  for (const [id, { doc, index }] of log.state) {
    const want = doc === null ? null : index === s.source ? transformDoc(doc, id) : doc;
    const have = actual.get(id);
    if (want === null ? have : !have || canon(have.source) !== canon(want)) bad.push(id);
  }
  const extra = [...actual.keys()].filter((id) => !log.state.has(id));
  assert.deepEqual({ bad: bad.slice(0, 5), extra: extra.slice(0, 5) }, { bad: [], extra: [] });
}

function auditEvents(s: Scenario): Array<{ event: string; reason?: string; index?: string }> {
  return readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function finish(
  s: Scenario,
  app: { log: Log; done: Promise<void> },
  stop: () => void,
  env: Record<string, string> = {},
) {
  // No flag: the dead run's lock is taken over on its own.
  const r = await runCli(['--json', 'run', s.specPath], env);
  await sleep(300);
  stop();
  await app.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
  assert.equal(await blocked(s.c, s.source), false);
  assert.deepEqual(app.log.otherFailures.slice(0, 5), []);
  await assertExact(s, app.log);
}

describe('freeze guard (es8, es8sec)', () => {
  for (const fp of ['freeze.after-block:1', 'freeze.before-switch:1', 'freeze.after-switch:1']) {
    it(`lifts the block at once when the run is killed at ${fp}, without any command`, async (t) => {
      const s = await scenario('es8', 600, {
        capture: { strategy: 'seqno', tailIntervalMs: 100 },
        cutover: { freezeBudgetMs: BUDGET_MS },
      });
      let stop = false;
      t.after(() => {
        stop = true;
      });
      // A failed assertion must not leave the writer running forever.
      t.after(() => {
        stop = true;
      });
      const app = application(s, () => stop);
      const killed = await startCli(['--json', 'run', s.specPath], { CUTOVER_FAILPOINTS: fp }).done;
      const killedAt = Date.now();
      assert.equal(killed.signal, 'SIGKILL', `${fp}: ${killed.stderr.slice(-800)}`);
      const at = await liftedBy(s.c, s.source, killedAt + BUDGET_MS + SLACK_MS);
      assert.ok(
        at !== undefined,
        `the source is still write-blocked ${BUDGET_MS + SLACK_MS} ms after the kill`,
      );
      await writesFlow(app.log);
      const lifted = auditEvents(s).filter((e) => e.event === 'freeze-guard-lifted');
      assert.equal(lifted.length, 1, JSON.stringify(lifted));
      assert.match(lifted[0]!.reason ?? '', /cutover process is gone/);
      await finish(s, app, () => {
        stop = true;
      });
      // The interrupted freeze is reported as long as it really was: until the guard's lift, not the resume.
      const capture = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'capture.json'), 'utf8'));
      const cut = capture.freezes.filter((f: { reason?: string }) =>
        /stopped inside the freeze; its freeze guard lifted the block/.test(f.reason ?? ''),
      );
      assert.equal(cut.length, 1, JSON.stringify(capture.freezes));
      assert.ok(cut[0].durationMs < BUDGET_MS + SLACK_MS, JSON.stringify(cut[0]));
      await s.c.close();
    });
  }

  it('lifts the block at the deadline while the run is alive but stuck in the freeze', async (t) => {
    const s = await scenario('es8', 600, {
      capture: { strategy: 'seqno', tailIntervalMs: 100 },
      cutover: { freezeBudgetMs: BUDGET_MS, maxFreezeAttempts: 1 },
    });
    let stop = false;
    t.after(() => {
      stop = true;
    });
    const app = application(s, () => stop);
    // The runner sleeps 25 s right after setting the block: alive, pipe open, and past its budget.
    const run = startCli(['--json', 'run', s.specPath], { CUTOVER_FAILPOINTS: 'freeze.stall:sleep25000' });
    t.after(() => run.child.kill('SIGKILL'));
    let exited = false;
    void run.done.then(() => {
      exited = true;
    });
    while (!(await blocked(s.c, s.source))) {
      assert.equal(exited, false, 'the run ended before it froze writes');
      await sleep(20);
    }
    const blockedAt = Date.now();
    const at = await liftedBy(s.c, s.source, blockedAt + BUDGET_MS + SLACK_MS);
    assert.ok(at !== undefined, `still write-blocked ${BUDGET_MS + SLACK_MS} ms after the block was set`);
    assert.equal(exited, false, 'the guard lifted it, not the run');
    await writesFlow(app.log);
    const lifted = auditEvents(s).filter((e) => e.event === 'freeze-guard-lifted');
    assert.match(lifted[0]?.reason ?? '', /outlasted its budget/);
    // The stuck run wakes past its budget: no switch, the freeze counted as failed.
    const r = await run.done;
    assert.equal(r.code, 3, r.stderr.slice(-1500));
    assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source], 'nothing switched');
    await finish(s, app, () => {
      stop = true;
    });
    await s.c.close();
  });

  it("connects with the runner's credentials, which are neither in its argv nor in its environment", async (t) => {
    const sec = testCluster('es8sec');
    const env = { GUARD_TEST_PASSWORD: sec.password! };
    const s = await scenario('es8sec', 400, {
      source: {
        cluster: { url: sec.url, auth: { username: sec.username, passwordEnv: 'GUARD_TEST_PASSWORD' } },
      },
      capture: { strategy: 'seqno', tailIntervalMs: 100 },
      cutover: { freezeBudgetMs: BUDGET_MS, maxFreezeAttempts: 1 },
    });
    let stop = false;
    t.after(() => {
      stop = true;
    });
    const app = application(s, () => stop);
    const run = startCli(['--json', 'run', s.specPath], {
      ...env,
      CUTOVER_FAILPOINTS: 'freeze.stall:sleep25000',
    });
    t.after(() => run.child.kill('SIGKILL'));
    let exited = false;
    void run.done.then(() => {
      exited = true;
    });
    while (!(await blocked(s.c, s.source))) {
      assert.equal(exited, false, 'the run ended before it froze writes');
      await sleep(20);
    }
    const blockedAt = Date.now();
    const started = auditEvents(s).filter((e) => e.event === 'freeze-guard-started');
    assert.equal(started.length, 1);
    const pid = (started[0] as unknown as { pid: number }).pid;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    assert.match(argv, /dist\/src\/cutover\/freeze-guard-main\.js/, 'the compiled guard runs');
    assert.ok(!argv.includes(sec.password!), 'password in argv');
    assert.ok(!readFileSync(`/proc/${pid}/environ`, 'utf8').includes(sec.password!), 'password in env');
    // Lifting needs the credentials: it happening proves the guard got them over its pipe.
    const at = await liftedBy(s.c, s.source, blockedAt + BUDGET_MS + SLACK_MS);
    assert.ok(at !== undefined, `still write-blocked ${BUDGET_MS + SLACK_MS} ms after the block was set`);
    assert.equal(exited, false, 'the guard lifted it, not the run');
    run.child.kill('SIGKILL');
    await run.done;
    await finish(
      s,
      app,
      () => {
        stop = true;
      },
      env,
    );
    const audit = readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8');
    assert.ok(!audit.includes(sec.password!), 'password in the audit trail');
    await s.c.close();
  });

  it('status says loudly when the source is write-blocked and how to lift it', async () => {
    const s = await scenario('es8', 200);
    const r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 0, r.stderr.slice(-1500));
    const quiet = await runCli(['status', s.specPath]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stdout, /WRITE BLOCK/);
    await s.c.putSettings(s.source, { 'index.blocks.write': true });
    const loud = await runCli(['status', s.specPath]);
    assert.equal(loud.code, 0, loud.stderr);
    assert.match(loud.stdout, new RegExp(`WRITE BLOCK: source index ${s.source} .*refused`));
    assert.match(loud.stdout, /lift it by hand: curl -X PUT .*"index\.blocks\.write": null/);
    const json = JSON.parse((await runCli(['--json', 'status', s.specPath])).stdout);
    assert.deepEqual(
      json.writeBlocks.map((b: { side: string; blocked: boolean }) => [b.side, b.blocked]),
      [
        ['source', true],
        ['target', false],
      ],
    );
    await s.c.putSettings(s.source, { 'index.blocks.write': null });
    await s.c.close();
  });
});
