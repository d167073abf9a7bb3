/**
 * The cluster health gate on a real server: a yellow cluster is a warning that `plan` shows and `run` goes past,
 * a red one refuses `plan` and `run` before anything is changed, naming the health check.
 *
 * Health is cluster-wide, so the test turns the shared server yellow, then red, with an index of its own that it
 * deletes in `finally`: the red window lasts only as long as two refused commands.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { uniqueName } from '../support/clusters.js';
import { aliasTargets, scenario } from '../support/scenario.js';

interface Finding {
  check: string;
  severity: string;
  message: string;
}

describe('cluster health gate on es8', () => {
  it('warns on a yellow cluster and refuses a red one, changing nothing', async () => {
    const s = await scenario('es8', 50);
    const healthFindings = async () => {
      const plan = await runCli(['--json', 'plan', s.specPath]);
      assert.equal(plan.code, 0, plan.stderr);
      return (JSON.parse(plan.stdout).facts.findings as Finding[]).filter((f) => f.check === 'source.health');
    };
    // One replica on a single node can never be assigned: the cluster is yellow (it may be already: suites before
    // this one leave indices with the default replica behind on the shared server).
    const yellow = uniqueName('yellow');
    try {
      await s.c.createIndex(yellow, { settings: { number_of_shards: 1, number_of_replicas: 1 } });
      assert.equal((await s.c.health()).status, 'yellow');
      const warned = await healthFindings();
      assert.deepEqual(
        warned.map((f) => [f.severity, f.message]),
        [['warn', 'source cluster is yellow: replicas are unassigned, a node loss would lose data']],
      );
      const text = await runCli(['plan', s.specPath]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /WARN +source cluster is yellow/);
    } finally {
      if (await s.c.indexExists(yellow)) await s.c.deleteIndex(yellow);
    }

    // A primary that may only live on a node that does not exist stays unassigned: the cluster is red.
    // wait_for_active_shards=0 returns at once instead of waiting for a primary that never starts.
    const red = uniqueName('red');
    try {
      await s.c.request({
        method: 'PUT',
        path: `/${red}`,
        query: { wait_for_active_shards: '0' },
        body: {
          settings: {
            number_of_shards: 1,
            number_of_replicas: 0,
            'index.routing.allocation.require._name': 'no-such-node',
          },
        },
      });
      assert.equal((await s.c.health()).status, 'red');
      const [plan, run] = await Promise.all([runCli(['plan', s.specPath]), runCli(['run', s.specPath])]);
      for (const [name, r] of [
        ['plan', plan],
        ['run', run],
      ] as const) {
        assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /preflight refused, nothing was changed/, name);
        assert.match(r.stderr, /BLOCK +source cluster is red: some primary shards are unassigned/, name);
        assert.match(r.stderr, /GET _cluster\/allocation\/explain/, name);
      }
    } finally {
      if (await s.c.indexExists(red)) await s.c.deleteIndex(red);
    }
    assert.equal(await s.c.indexExists(s.target), false, 'no target index was created');
    assert.equal(await s.c.indexExists(`${s.target}-cutover-sample`), false);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
    assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);

    // The refusal left nothing to undo: once the cluster is no longer red the same migration runs through.
    const after = await runCli(['run', s.specPath]);
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
    await s.c.close();
  });
});
