/** One process per migration, manual cutover, rollback, and a cleanup that needs time and a confirmation. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startCli } from '../support/cli.js';
import { aliasTargets, scenario } from '../support/scenario.js';

describe('lock, manual cutover, rollback, cleanup (es8)', () => {
  it('refuses a second concurrent run while the first is alive', async () => {
    const s = await scenario('es8', 3000, { copy: { maxDocsPerSecond: 600, batchDocs: 100 } });
    const first = startCli(['run', s.specPath]);
    await sleep(1500);
    const second = await runCli(['run', s.specPath]);
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, /locked by a running "run" \(pid \d+/);
    const r = await first.done;
    assert.equal(r.code, 0, r.stderr);
    await s.c.close();
  });

  it("after kill -9, a plain `run` takes the dead process's lock over, says so, and finishes", async () => {
    const s = await scenario('es8', 500, { copy: { batchDocs: 50, concurrency: 1 } });
    const run = startCli(['run', s.specPath], { CUTOVER_FAILPOINTS: 'copy.after-checkpoint:2' });
    const killed = await run.done;
    assert.equal(killed.signal, 'SIGKILL');
    const pid = run.child.pid!;
    const lock = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'lock'), 'utf8'));
    assert.equal(lock.pid, pid, 'the killed run left its lock behind');
    const ok = await runCli(['run', s.specPath]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout + ok.stderr, new RegExp(`took over the lock of pid ${pid} \\(gone\\)`));
    const audit = readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8');
    assert.match(audit, /"event":"lock-taken-over"/);
    assert.equal(existsSync(join(s.dir, 'state', 'm1', 'lock')), false, 'released at the end');
    await s.c.close();
  });

  it('a lock written on another host is taken over only when asked', async () => {
    const s = await scenario('es8', 200);
    const dir = join(s.dir, 'state', 'm1');
    mkdirSync(dir, { recursive: true });
    const owner = {
      pid: process.pid,
      host: 'some-other-host',
      startedAt: '2020-01-01T00:00:00Z',
      command: 'run',
    };
    writeFileSync(join(dir, 'lock'), JSON.stringify(owner));
    const refused = await runCli(['run', s.specPath]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /on host some-other-host.*rerun with --take-over-lock/);
    const ok = await runCli(['run', s.specPath, '--take-over-lock']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout + ok.stderr, /took over the lock of pid \d+ on host some-other-host/);
    await s.c.close();
  });

  it('waits for `cutover cutover` in manual mode, rolls back in one request, cleans up only when confirmed', async () => {
    const s = await scenario('es8', 800, { cutover: { mode: 'manual', retentionHours: 0 } });
    const early = await runCli(['cutover', s.specPath]);
    assert.equal(early.code, 2, 'cutover before run is refused');
    const run = await runCli(['run', s.specPath]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /run `cutover cutover <spec>`/);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source], 'manual mode leaves aliases alone');
    const status = await runCli(['--json', 'status', s.specPath]);
    assert.equal(JSON.parse(status.stdout).phase, 'awaiting-cutover');

    const cut = await runCli(['cutover', s.specPath]);
    assert.equal(cut.code, 0, cut.stderr);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
    assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);

    const back = await runCli(['rollback', s.specPath]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
    assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
    assert.equal((await s.c.getAlias(s.writeAlias))[s.source]?.aliases[s.writeAlias]?.is_write_index, true);
    assert.equal(await s.c.indexExists(s.target), true, 'rollback keeps the target');
    const cleanAfterRollback = await runCli(['cleanup', s.specPath, '--confirm-delete', s.source]);
    assert.equal(cleanAfterRollback.code, 2, 'nothing is deleted after a rollback');
    assert.equal(await s.c.indexExists(s.source), true);
    await s.c.close();
  });

  it('cleanup respects the retention window and the confirmation', async () => {
    const s = await scenario('es8', 200, { cutover: { retentionHours: 0 } });
    assert.equal((await runCli(['run', s.specPath])).code, 0);
    const noConfirm = await runCli(['cleanup', s.specPath]);
    assert.equal(noConfirm.code, 2);
    assert.match(noConfirm.stderr, new RegExp(`--confirm-delete ${s.source}`));
    const wrong = await runCli(['cleanup', s.specPath, '--confirm-delete', 'something-else']);
    assert.equal(wrong.code, 2);
    assert.equal(await s.c.indexExists(s.source), true);
    const ok = await runCli(['cleanup', s.specPath, '--confirm-delete', s.source]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await s.c.indexExists(s.source), false);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);

    const kept = await scenario('es8', 100, { cutover: { retentionHours: 48 } });
    assert.equal((await runCli(['run', kept.specPath])).code, 0);
    const early = await runCli(['cleanup', kept.specPath, '--confirm-delete', kept.source]);
    assert.equal(early.code, 2);
    assert.match(early.stderr, /retained until/);
    assert.equal(await kept.c.indexExists(kept.source), true);
    await s.c.close();
    await kept.c.close();
  });
});
