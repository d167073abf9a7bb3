/**
 * kill -9 at exact moments (failpoints: between a bulk and its checkpoint, mid-bulk, around the alias switch,
 * between a step and its state write) and at random moments, then `run` again: the final target is exact,
 * document by document, and each crash redid at most one batch per slice.
 *
 * The same with copy.workers (NATS JetStream at 127.0.0.1:4222), where every resume runs on a new, empty state
 * directory, as a runner on another machine would: the state comes from the runner's seat and the checkpoints from
 * the copy's bucket alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED } from '../support/clusters.js';
import { diffDocs, readAll, summarize } from '../support/data.js';
import { bucketsOf, destroyBuckets, NATS } from '../support/nats.js';
import { aliasTargets, scenario } from '../support/scenario.js';

const FAILPOINTS = [
  'target.after-create:1',
  'step.create-target.before-save:1',
  'target.after-temporary-settings:1',
  'bulk.before-send:2',
  'bulk.after-send:3',
  'copy.after-bulk:4',
  'copy.after-checkpoint:2',
  'step.copy.before-save:1',
  'step.restore-target.before-save:1',
  'step.gate.before-save:1',
  'step.verify.before-save:1',
  'aliases.before-switch:1',
  'aliases.after-switch:1',
  'step.switch-aliases.before-save:1',
];

type Scn = Awaited<ReturnType<typeof scenario>>;

/**
 * How the runs go: on the scenario's one state directory, or shared (copy.workers) with a state directory of its
 * own per run, so nothing but NATS carries the migration from one run to the next.
 */
interface Mode {
  name: string;
  /** copy.workers for the scenario, or none */
  workers(kind: string): Record<string, unknown> | undefined;
  /** the state directory of run n (undefined: the scenario's) */
  stateDir(run: number): string | undefined;
  cleanup(): Promise<void>;
}

const LOCAL: Mode = {
  name: '',
  workers: () => undefined,
  stateDir: () => undefined,
  cleanup: async () => {},
};

function sharedMode(): Mode {
  const buckets: string[] = [];
  return {
    name: ' with copy.workers, each run on an empty state directory',
    workers(kind) {
      const bucket = `cutover-crash-${process.pid}-${kind}-${Date.now()}`;
      buckets.push(...bucketsOf(bucket));
      return { kind: 'nats', servers: NATS, bucket, leaseSeconds: 3 };
    },
    stateDir: (run) => `./state-run${run}`,
    async cleanup() {
      await destroyBuckets(buckets.splice(0));
    },
  };
}

/** The scenario with the mode's spec, and a function that points the spec at run n's state directory. */
async function setUp(
  kind: (typeof EXPECTED)[number],
  docs: number,
  copy: Record<string, unknown>,
  mode: Mode,
): Promise<{ s: Scn; runOn(run: number): void }> {
  const w = mode.workers(kind);
  const spec = { copy: { ...copy, ...(w ? { workers: w } : {}) } };
  const s = await scenario(kind, docs, spec);
  return {
    s,
    runOn(run) {
      const dir = mode.stateDir(run);
      if (dir) s.writeSpec({ ...spec, stateDir: dir });
    },
  };
}

async function finalCheck(s: Scn, copyCrashes: number, batchDocs: number): Promise<void> {
  const r = await runCli(['--json', 'run', s.specPath, '--take-over-lock']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const d = diffDocs(s.expected, await readAll(s.c, s.target));
  assert.deepEqual([d.missing.length, d.extra.length, d.changed.length], [0, 0, 0], summarize(d));
  assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
  assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
  const settings = Object.values(await s.c.getSettings(s.target))[0]!.settings;
  assert.equal(settings['index.refresh_interval'], '2s', 'original target settings restored after crashes');
  assert.equal(settings['index.gc_deletes'], undefined);
  // Redone work shows up as version conflicts: at most one batch per slice (3 shards) per crash in the copy.
  assert.ok(report.versionConflicts <= copyCrashes * 3 * batchDocs, `conflicts ${report.versionConflicts}`);
  assert.equal(report.copied + report.versionConflicts >= s.expected.size, true);
}

for (const [kinds, mode] of [
  [['es8', 'es9', 'os3'], LOCAL],
  [['es8', 'os3'], sharedMode()],
] as const) {
  for (const kind of kinds.filter((k) => EXPECTED.includes(k))) {
    describe(`kill -9 and resume on ${kind}${mode.name}`, () => {
      it('survives a kill at every failpoint in turn', async (t) => {
        t.after(() => mode.cleanup());
        const { s, runOn } = await setUp(kind, 3000, { batchDocs: 100, concurrency: 1 }, mode);
        let copyCrashes = 0;
        let run = 0;
        for (const fp of FAILPOINTS) {
          runOn(run++);
          const r = await runCli(['--json', 'run', s.specPath, '--take-over-lock'], {
            CUTOVER_FAILPOINTS: fp,
          });
          assert.equal(
            r.signal,
            'SIGKILL',
            `${fp}: expected the process to be killed, got code ${r.code}: ${r.stderr.slice(-500)}`,
          );
          if (fp.startsWith('bulk.') || fp.startsWith('copy.')) copyCrashes++;
        }
        runOn(run);
        await finalCheck(s, copyCrashes, 100);
        await s.c.close();
      });

      it('survives kill -9 at random moments', async (t) => {
        t.after(() => mode.cleanup());
        const { s, runOn } = await setUp(
          kind,
          6000,
          { batchDocs: 200, concurrency: 3, maxDocsPerSecond: 3000 },
          mode,
        );
        let kills = 0;
        for (let i = 0; i < 4; i++) {
          runOn(i);
          const { child, done } = startCli(['--json', 'run', s.specPath, '--take-over-lock']);
          const delay = 400 + Math.floor(Math.random() * 1600);
          const timer = setTimeout(() => child.kill('SIGKILL'), delay);
          const r = await done;
          clearTimeout(timer);
          if (r.signal === 'SIGKILL') kills++;
          else assert.equal(r.code, 0, r.stderr);
        }
        assert.ok(kills >= 1, 'at least one run was killed');
        runOn(4);
        await finalCheck(s, kills, 200);
        await s.c.close();
      });
    });
  }
}
