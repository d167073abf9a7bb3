/**
 * What the CLI tells an operator is true: no "verified" without a proof that found nothing, no figures that lag
 * behind the work, no error that outlived its fix, no refusal or rollback that silently changes what `run` does
 * next, and no state reused for another source or target. Each test drives the real binary on es8.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CliResult, runCli, startCli } from '../support/cli.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { aliasTargets, type Scenario, TRANSFORM, trackedScenarios } from '../support/scenario.js';

/** The shared server has a shard limit: each test's indices are deleted when it ends, pass or fail. */
const tracked = trackedScenarios((s) => [`${s.target}-other`, `${s.source}-v3`]);
const scenario = tracked.scenario;
const dropMade = tracked.drop;

/** One document whose `code` the target maps as integer cannot be indexed: a dead letter, the gate refuses. */
async function withRejectedDoc(s: Scenario, patch: Record<string, unknown> = {}): Promise<void> {
  await s.c.bulk(
    `${JSON.stringify({ index: { _index: s.source, _id: 'bad' } })}\n${JSON.stringify({ title: 'bad', qty: '1', tags: [], n: 1, code: 'abc' })}\n`,
    { refresh: true },
  );
  s.writeSpec({ target: { mappingOverrides: { properties: { code: { type: 'integer' } } } }, ...patch });
}

/** Resolves once the child's stderr matches (the copy has started, a progress line shows work done...). */
function stderrMatches(child: ChildProcess, re: RegExp, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const t = setTimeout(
      () => reject(new Error(`no ${re} on stderr within ${timeoutMs} ms: ${seen.slice(-400)}`)),
      timeoutMs,
    );
    child.stderr!.on('data', (d) => {
      seen += d;
      if (re.test(seen)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.on('close', () => {
      clearTimeout(t);
      reject(new Error(`exited before ${re} appeared on stderr: ${seen.slice(-400)}`));
    });
  });
}

/** A progress line with at least one document copied: the copy is under way. */
const COPYING = /"event":"progress","docs":[1-9]/;

function deadLetterLines(s: Scenario): string[] {
  const f = join(s.dir, 'state', 'm1', 'dead-letters.ndjson');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}

function ok(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr.slice(-600)}`);
}

describe('operator trust (es8)', () => {
  afterEach(dropMade);

  it('a manual run says what its proof found: differences within budget, or no proof at all', async () => {
    // A per-copy random stamp on three documents: every content proof finds exactly those three changed (the
    // versions proof cannot: the stamp changes content, not versions).
    const s = await scenario('es8', 300, {
      cutover: { mode: 'manual' },
      verify: { mode: 'full', maxDifferences: 5 },
      transform: './stamp.mjs',
    });
    writeFileSync(
      join(s.dir, 'stamp.mjs'),
      `export default function (doc, meta) {
  if (doc.drop) return null;
  const { qty, ...rest } = doc;
  return { ...rest, quantity: Number(qty), slot: meta.id.length, ...(doc.n % 100 === 5 ? { stamp: Math.random() } : {}) };
}
`,
    );
    const r = await runCli(['run', s.specPath]);
    ok(r, 'run');
    assert.doesNotMatch(r.stdout, /verified/i);
    assert.match(r.stdout, /Copied; the proof found 3 difference\(s\), within verify\.maxDifferences = 5/);
    assert.match(r.stdout, /run `cutover cutover <spec>`/);

    const off = await scenario('es8', 100, { cutover: { mode: 'manual' }, verify: { mode: 'off' } });
    const r2 = await runCli(['run', off.specPath]);
    ok(r2, 'run with verify.mode off');
    assert.match(r2.stdout, /Copied, not proven/);
    assert.doesNotMatch(`${r2.stdout}\n${r2.stderr}`, /verified/i, 'nothing was verified');
  });

  it('status during the copy shows the documents copied so far', async () => {
    const s = await scenario('es8', 3000, { copy: { maxDocsPerSecond: 400, batchDocs: 100 } });
    const run = startCli(['run', s.specPath]);
    let exited = false;
    void run.done.then(() => {
      exited = true;
    });
    const seen: string[] = [];
    let during: { phase: string; copied: number } | undefined;
    while (!exited && !during) {
      const st = await runCli(['--json', 'status', s.specPath]);
      if (st.code === 0 && !exited) {
        const j = JSON.parse(st.stdout) as { phase: string; copied: number };
        seen.push(`${j.phase}:${j.copied}`);
        // Under the final count (every document but the dropped ones): the copy itself is still under way.
        if (j.phase === 'running' && j.copied > 0 && j.copied < s.expected.size) during = j;
      }
      await sleep(300);
    }
    ok(await run.done, 'run');
    assert.ok(during, `status never showed copied > 0 while the copy ran; seen ${seen.join(' ')}`);
  });

  it('status after a successful switch no longer shows the refusal of an earlier try', async () => {
    const s = await scenario('es8', 200);
    await withRejectedDoc(s, { copy: { sampleSize: 0 } });
    const refused = await runCli(['run', s.specPath]);
    assert.equal(refused.code, 3, refused.stderr);
    const failed = await runCli(['status', s.specPath]);
    assert.match(failed.stdout, /last error .*cutover refused/, 'while failed, the refusal is shown');

    ok(await runCli(['run', s.specPath, '--max-dead-letters', '1']), 'run within budget');
    const st = await runCli(['status', s.specPath]);
    ok(st, 'status');
    assert.match(st.stdout, /\(cut-over\)/);
    assert.doesNotMatch(st.stdout, /last error|cutover refused/);
    const j = JSON.parse((await runCli(['--json', 'status', s.specPath])).stdout);
    assert.equal(j.lastError, undefined);
  });

  it('verify right after a manual run says which proof stands and what it compared', async () => {
    const s = await scenario('es8', 300, { cutover: { mode: 'manual' } });
    ok(await runCli(['run', s.specPath]), 'run');
    const v = await runCli(['verify', s.specPath]);
    ok(v, 'verify');
    assert.doesNotMatch(v.stdout, /all 0 source and 0 target documents compared/);
    assert.match(
      v.stdout,
      new RegExp(
        `nothing changed since the proof of \\S+: no slice re-read \\(that proof: versions of all 300 source documents compared with the target's .*, ${s.expected.size} target ids checked on the source`,
      ),
    );
  });

  it('a throwing transform is reported as such by the sample; --force and a dead-letter budget get past it', async () => {
    const s = await scenario('es8', 200, { transform: './throws.mjs' });
    writeFileSync(
      join(s.dir, 'throws.mjs'),
      `export default function (doc, meta) {
  if (doc.n % 50 === 7) throw new Error('cannot handle n=' + doc.n);
  if (doc.drop) return null;
  const { qty, ...rest } = doc;
  return { ...rest, quantity: Number(qty), slot: meta.id.length };
}
`,
    );
    const r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /the transform throws on 4 of 200 sampled documents/);
    assert.doesNotMatch(r.stderr, /target mapping rejects/);
    assert.match(r.stderr, /--sample-size 0/);
    assert.match(r.stderr, /--max-dead-letters/);
    assert.equal(await s.c.indexExists(s.target), false, 'nothing created');

    // The refused run read the source; the plan still samples again and refuses as `run` would.
    const plan = await runCli(['plan', s.specPath]);
    assert.equal(plan.code, 2, `plan after the refused run: ${plan.stdout.slice(-300)}`);
    assert.match(plan.stderr, /the transform throws on 4 of 200 sampled documents/);
    const forced = await runCli(['plan', s.specPath, '--force']);
    ok(forced, 'plan --force');
    assert.match(forced.stdout, /Copy every document/);
    const budget = await runCli(['plan', s.specPath, '--max-dead-letters', '4']);
    ok(budget, 'plan --max-dead-letters 4');
    assert.match(budget.stdout, /transform throws on 4 of 200/);
    assert.match(budget.stdout, /within copy\.maxDeadLetters = 4/);

    // --force goes on to the copy, where the four become dead letters and the gate counts them.
    const run = await runCli(['run', s.specPath, '--force']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /cutover refused: 4 document\(s\) were rejected/);
    assert.equal(deadLetterLines(s).length, 4);
    ok(await runCli(['run', s.specPath, '--max-dead-letters', '4']), 'run within budget');
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
  });

  it('rollback before any switch leaves the migration to `run`', async () => {
    const s = await scenario('es8', 200);
    await withRejectedDoc(s, { copy: { sampleSize: 0 } });
    assert.equal((await runCli(['run', s.specPath])).code, 3);
    const back = await runCli(['rollback', s.specPath]);
    ok(back, 'rollback');
    assert.match(back.stdout, /nothing to roll back.*`cutover run` goes on with it/);
    const st = JSON.parse((await runCli(['--json', 'status', s.specPath])).stdout);
    assert.notEqual(st.phase, 'rolled-back');

    ok(await runCli(['run', s.specPath, '--max-dead-letters', '1']), 'run after the rollback');
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
    assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
  });

  it('one Ctrl-C during the copy exits 130 and the next run resumes to the end', async () => {
    const s = await scenario('es8', 3000, { copy: { maxDocsPerSecond: 500, batchDocs: 100 } });
    const run = startCli(['run', s.specPath]);
    await stderrMatches(run.child, COPYING);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, `exit ${r.code} signal ${r.signal}: ${r.stderr.slice(-500)}`);
    assert.match(r.stderr, /`?(cutover )?run`? resumes/);
    ok(await runCli(['run', s.specPath]), 'resumed run');
    const d = diffDocs(s.expected, await readAll(s.c, s.target));
    assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
  });

  it('capture none has no append-only step, and a spec without aliases does not claim they moved', async () => {
    const s = await scenario('es8', 100);
    const plan = await runCli(['plan', s.specPath]);
    ok(plan, 'plan');
    assert.doesNotMatch(plan.stdout, /move the write alias/i);
    const r = await runCli(['run', s.specPath]);
    ok(r, 'run');
    assert.doesNotMatch(r.stderr, /move the write alias/i);

    const bare = await scenario('es8', 100);
    bare.writeSpec({ aliases: null, source: { index: bare.source } });
    const r2 = await runCli(['run', bare.specPath]);
    ok(r2, 'run without aliases');
    assert.doesNotMatch(r2.stdout, /aliases point at/i);
    assert.match(r2.stdout, /the spec names no aliases/);
  });

  it('`--json plan` prints the refusal and every finding on stdout', async () => {
    const s = await scenario('es8', 100);
    await withRejectedDoc(s);
    const r = await runCli(['--json', 'plan', s.specPath]);
    assert.equal(r.code, 2, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.refused, true);
    assert.equal(j.migration, 'm1');
    const sample = j.findings.find((f: { check: string }) => f.check === 'sample');
    assert.equal(sample?.severity, 'block', JSON.stringify(j.findings));
    assert.match(sample.message, /rejects 1 of 101 sampled documents/);
  });

  it('dead letters are copied again with a fixed transform', async () => {
    // The first transform writes a non-numeric quantity for ten documents: the integer field rejects them.
    const s = await scenario('es8', 400, { transform: './bad.mjs', copy: { sampleSize: 0 } });
    writeFileSync(
      join(s.dir, 'bad.mjs'),
      `export default function (doc, meta) {
  if (doc.drop) return null;
  const { qty, ...rest } = doc;
  return { ...rest, quantity: doc.n % 40 === 3 ? 'q' + qty : Number(qty), slot: meta.id.length };
}
`,
    );
    const r = await runCli(['run', s.specPath]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /10 document\(s\) were rejected/);
    assert.equal(deadLetterLines(s).length, 10);

    // The fix sits in the operator's working directory, not beside the spec: a path typed there means there.
    const shell = mkdtempSync(join(tmpdir(), 'cutover-shell-'));
    writeFileSync(join(shell, 'fixed.mjs'), TRANSFORM);
    const retry = await runCli(
      ['run', s.specPath, '--retry-dead-letters', '--transform', 'fixed.mjs'],
      {},
      { cwd: shell },
    );
    ok(retry, 'run --retry-dead-letters');
    assert.match(retry.stderr, /dead letters retried: 10 document\(s\); 10 landed/);
    assert.deepEqual(deadLetterLines(s), [], 'nothing failed again');
    const d = diffDocs(s.expected, await readAll(s.c, s.target));
    assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
  });

  it('a migration state is refused for another target, and a refused first try binds nothing', async () => {
    const s = await scenario('es8', 100);
    ok(await runCli(['run', s.specPath]), 'run');
    const other = `${s.target}-other`;
    s.writeSpec({ target: { index: other } });
    for (const cmd of ['plan', 'run', 'status']) {
      const r = await runCli([cmd, s.specPath]);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      assert.ok(
        r.stderr.includes(`targetIndex: the state has "${s.target}", the spec "${other}"`),
        `${cmd}: ${r.stderr}`,
      );
    }
    assert.equal(await s.c.indexExists(other), false);

    const t = await scenario('es8', 100, { source: { index: 'no-such-index-anywhere' } });
    assert.equal((await runCli(['run', t.specPath])).code, 2);
    t.writeSpec({});
    ok(await runCli(['run', t.specPath]), 'run with the source fixed');
    assert.deepEqual(await aliasTargets(t.c, t.readAlias), [t.target]);

    // Refused by the sample after the source was inspected: still nothing made, so another target is welcome.
    const u = await scenario('es8', 100);
    await withRejectedDoc(u);
    assert.equal((await runCli(['run', u.specPath])).code, 2);
    const v3 = `${u.source}-v3`;
    u.writeSpec({ target: { index: v3 } });
    ok(await runCli(['run', u.specPath]), 'run for another target after a sample refusal');
    assert.deepEqual(await aliasTargets(u.c, u.readAlias), [v3]);
  });

  it('cleanup reads cutover.retentionHours when it runs', async () => {
    const s = await scenario('es8', 100, { cutover: { retentionHours: 48 } });
    ok(await runCli(['run', s.specPath]), 'run');
    const early = await runCli(['cleanup', s.specPath, '--confirm-delete', s.source]);
    assert.equal(early.code, 2);
    assert.match(early.stderr, /retained until/);
    s.writeSpec({ cutover: { retentionHours: 0 } });
    const now = await runCli(['cleanup', s.specPath, '--confirm-delete', s.source]);
    ok(now, 'cleanup after the retention was shortened');
    assert.equal(await s.c.indexExists(s.source), false);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
  });

  it('--json and --state-dir on status, rollback and cleanup; errors as one JSON object', async () => {
    const s = await scenario('es8', 100, { cutover: { retentionHours: 0 } });
    // Typed relative to the operator's working directory, as a shell user means it.
    const shell = mkdtempSync(join(tmpdir(), 'cutover-shell-'));
    const stateDir = 'elsewhere';
    const at = { cwd: shell };
    ok(await runCli(['run', s.specPath, '--state-dir', stateDir], {}, at), 'run --state-dir');
    assert.equal(existsSync(join(shell, 'elsewhere', 'm1', 'state.json')), true);
    const st = await runCli(['--json', 'status', s.specPath, '--state-dir', stateDir], {}, at);
    ok(st, 'status --state-dir');
    assert.equal(JSON.parse(st.stdout).phase, 'cut-over');

    const back = await runCli(['--json', 'rollback', s.specPath, '--state-dir', stateDir], {}, at);
    ok(back, 'rollback --state-dir');
    assert.equal(JSON.parse(back.stdout).result, 'aliases-restored');
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);

    const refused = await runCli(
      ['--json', 'cleanup', s.specPath, '--state-dir', stateDir, '--confirm-delete', s.source],
      {},
      at,
    );
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, '');
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    const e = JSON.parse(refused.stderr);
    assert.equal(e.exitCode, 2);
    assert.equal(e.meaning, 'bad input: nothing was changed');
    assert.match(e.error, /rolled-back.*nothing is deleted/);
    assert.equal(await s.c.indexExists(s.source), true);

    const t = await scenario('es8', 50, { cutover: { retentionHours: 0 } });
    ok(await runCli(['run', t.specPath]), 'run');
    const clean = await runCli(['--json', 'cleanup', t.specPath, '--confirm-delete', t.source]);
    ok(clean, 'cleanup');
    assert.deepEqual(JSON.parse(clean.stdout), { deleted: t.source });
  });

  it('a postpone flag with capture none is refused before anything is created', async () => {
    const s = await scenario('es8', 50);
    const r = await runCli(['run', s.specPath, '--postpone-cutover-flag-file', join(s.dir, 'hold')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cutover\.postponeFlagFile: capture\.strategy none/);
    assert.equal(await s.c.indexExists(s.target), false);
  });

  it('a second run while one runs exits 4 and prints no report', async () => {
    const s = await scenario('es8', 3000, { copy: { maxDocsPerSecond: 500, batchDocs: 100 } });
    const first = startCli(['run', s.specPath]);
    await stderrMatches(first.child, COPYING);
    const second = await runCli(['run', s.specPath]);
    assert.equal(second.code, 4, second.stderr);
    assert.equal(second.stdout, '', 'no report of a run this process does not own');
    ok(await first.done, 'first run');
  });
});
