/**
 * The exit-code contract of docs/cli.md, through the real binary: each code is what a script can branch on, and
 * the message with it says what to do next. Under --json the error is one JSON object (the last stderr line)
 * carrying the code and its meaning.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { runCli, startCli } from '../support/cli.js';
import { aliasTargets, trackedScenarios } from '../support/scenario.js';

/** The shared server has a shard limit: each test's indices are deleted when it ends, pass or fail. */
const tracked = trackedScenarios();
const scenario = tracked.scenario;
const dropMade = tracked.drop;

interface JsonError {
  error: string;
  kind: string;
  exitCode: number;
  meaning: string;
}

/** The error object: the last stderr line (progress lines and retry notices may come before it). */
function jsonError(stderr: string): JsonError {
  const lines = stderr.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as JsonError;
}

/** A port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Resolves once the child has copied at least one document (a progress line says so). */
function copying(child: ReturnType<typeof startCli>['child']): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (d) => {
      seen += d;
      if (/"event":"progress","docs":[1-9]/.test(seen)) resolve();
    });
    child.on('close', () => reject(new Error(`exited before copying: ${seen.slice(-400)}`)));
  });
}

describe('exit codes (es8)', () => {
  afterEach(dropMade);

  it('0: a clean run, and the message says where the aliases point now', async () => {
    const s = await scenario('es8', 100);
    const r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Done: ${s.readAlias}, ${s.writeAlias} point at ${s.target}\\.`));
  });

  it('2: bad input names the field, and nothing is created', async () => {
    const s = await scenario('es8', 10, { source: { index: 'no-such-index-anywhere' } });
    const r = await runCli(['--json', 'run', s.specPath]);
    assert.equal(r.code, 2, r.stderr);
    const e = jsonError(r.stderr);
    assert.equal(e.exitCode, 2);
    assert.equal(e.meaning, 'bad input: nothing was changed');
    assert.match(e.error, /source\.index: no index or alias named "no-such-index-anywhere"/);
    assert.equal(await s.c.indexExists(s.target), false);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
  });

  it('3: a gate refuses, keeps the state, and says how to go on', async () => {
    const s = await scenario('es8', 100);
    await s.c.bulk(
      `${JSON.stringify({ index: { _index: s.source, _id: 'bad' } })}\n${JSON.stringify({ title: 'bad', qty: '1', tags: [], n: 1, code: 'abc' })}\n`,
      { refresh: true },
    );
    s.writeSpec({
      copy: { sampleSize: 0 },
      target: { mappingOverrides: { properties: { code: { type: 'integer' } } } },
    });
    const r = await runCli(['--json', 'run', s.specPath]);
    assert.equal(r.code, 3, r.stderr);
    const e = jsonError(r.stderr);
    assert.equal(e.exitCode, 3);
    assert.match(e.meaning, /gate refused.*state is kept/);
    assert.match(e.error, /1 document\(s\) were rejected/);
    assert.match(e.error, /`cutover run --retry-dead-letters`/);
    assert.match(e.error, /raise copy\.maxDeadLetters/);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
  });

  it('4: locked by a live process; says to wait for it or stop it', async () => {
    const s = await scenario('es8', 3000, { copy: { maxDocsPerSecond: 500, batchDocs: 100 } });
    const first = startCli(['run', s.specPath]);
    await copying(first.child);
    const r = await runCli(['--json', 'run', s.specPath]);
    assert.equal(r.code, 4, r.stderr);
    const e = jsonError(r.stderr);
    assert.equal(e.exitCode, 4);
    assert.equal(e.meaning, 'locked by another live process');
    assert.match(e.error, /locked by a running "run" \(pid \d+.*\); wait for it or stop it first/);
    assert.equal((await first.done).code, 0);
  });

  it('5: a cluster that cannot be reached; names the address and the spec field to check', async () => {
    const s = await scenario('es8', 10);
    const port = await closedPort();
    s.writeSpec({ source: { cluster: { url: `http://127.0.0.1:${port}` } } });
    const r = await runCli(['--json', 'run', s.specPath]);
    assert.equal(r.code, 5, r.stderr.slice(-500));
    const e = jsonError(r.stderr);
    assert.equal(e.exitCode, 5);
    assert.match(e.meaning, /could not be reached/);
    assert.match(
      e.error,
      new RegExp(
        `connection refused by 127\\.0\\.0\\.1:${port}.*is the cluster running, and is source\\.cluster\\.url`,
      ),
    );
  });

  it('130: one SIGINT stops the run; says `run` resumes', async () => {
    const s = await scenario('es8', 3000, { copy: { maxDocsPerSecond: 500, batchDocs: 100 } });
    const run = startCli(['--json', 'run', s.specPath]);
    await copying(run.child);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, `exit ${r.code} signal ${r.signal}: ${r.stderr.slice(-400)}`);
    const e = jsonError(r.stderr);
    assert.equal(e.exitCode, 130);
    assert.equal(e.meaning, 'interrupted: run again to resume');
    assert.match(e.error, /interrupted in step copy; `cutover run` resumes/);
  });
});
