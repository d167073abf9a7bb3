/**
 * Alerts, hooks and the warm-up during a real migration. The warm-up runs the operator's queries on the new index
 * before the switch and reports them beside the old index; a query the new index refuses stops the switch.
 * Alerts and hooks: a local receiver records what each webhook format got, field by
 * field; a before-switch hook vetoes the switch until it allows it; the webhook URL (a credential) never appears
 * in the output, the audit trail or the report; a webhook whose URL variable is unset is bad input (exit 2).
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { MATRIX } from '../support/clusters.js';
import { aliasTargets, trackedScenarios } from '../support/scenario.js';

interface Arrived {
  path: string;
  body: Record<string, unknown>;
}

async function receiver(): Promise<{ url: string; got: Arrived[]; server: Server }> {
  const got: Arrived[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    req.on('end', () => {
      got.push({ path: req.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
      res.writeHead(202).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, server };
}

for (const kind of MATRIX.filter((k) => k === 'es8' || k === 'os3')) {
  describe(`alerts and hooks on ${kind}`, () => {
    const t = trackedScenarios();
    afterEach(t.drop);

    it('webhooks hear the run field by field, before-switch vetoes then allows, the URL stays secret', async () => {
      const r = await receiver();
      try {
        // The token in the path stands for the secret part of a Slack or PagerDuty URL.
        const secretPath = '/hooks/T0KEN-s3cr3t-path';
        const auditIndex = `audit-${process.pid}-${Date.now()}`;
        const hooks = join(process.env.TMPDIR ?? '/tmp', `cutover-hooks-${process.pid}-${Date.now()}`);
        mkdirSync(hooks, { recursive: true });
        const allow = join(hooks, 'allow');
        const seen = join(hooks, 'switched.env');
        writeFileSync(
          join(hooks, 'before-switch'),
          `#!/bin/sh\n[ -f "${allow}" ] && exit 0\necho "change freeze until 06:00" >&2\nexit 1\n`,
        );
        writeFileSync(
          join(hooks, 'on-switched'),
          `#!/bin/sh\nprintf '%s|%s|%s' "$CUTOVER_MIGRATION" "$CUTOVER_EVENT" "$CUTOVER_TARGET_INDEX" > "${seen}"\n`,
        );
        chmodSync(join(hooks, 'before-switch'), 0o755);
        chmodSync(join(hooks, 'on-switched'), 0o755);
        const s = await t.scenario(kind, 300, {
          capture: { strategy: 'none' },
          audit: { index: auditIndex },
          alerts: {
            hooksPath: hooks,
            webhooks: [
              { urlEnv: 'CUTOVER_TEST_ALERT_URL', format: 'json' },
              { url: `${r.url}/slack`, format: 'slack', events: ['switched', 'failed'] },
              { url: `${r.url}/pd`, format: 'pagerduty', routingKeyEnv: 'CUTOVER_TEST_PD_KEY' },
            ],
          },
        });
        const env = { CUTOVER_TEST_ALERT_URL: `${r.url}${secretPath}`, CUTOVER_TEST_PD_KEY: 'pd-key-1' };
        const at = (path: string) => r.got.filter((g) => g.path === path).map((g) => g.body);

        const vetoed = await runCli(['--json', 'run', s.specPath], env);
        assert.equal(vetoed.code, 3, vetoed.stderr.slice(-1500));
        assert.match(
          vetoed.stderr,
          /switch vetoed: the before-switch hook .* exited 1: change freeze until 06:00/,
        );
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source], 'nothing switched');
        const json1 = at(secretPath);
        assert.deepEqual(json1[0]?.kind, 'started');
        assert.ok(json1.some((b) => b.kind === 'step-done' && /step copy done/.test(String(b.summary))));
        const failed = json1.find((b) => b.kind === 'failed')!;
        assert.equal(failed.migration, 'm1');
        assert.equal(failed.severity, 'error');
        assert.match(String(failed.summary), /failed in step switch-aliases: switch vetoed/);
        assert.deepEqual(
          at('/slack').map((b) => String(b.text).slice(0, 30)),
          [':x: m1: failed in step switch-'.slice(0, 30)],
        );
        const pd1 = at('/pd');
        assert.equal(pd1.length, 1, JSON.stringify(pd1));
        assert.equal(pd1[0]!.event_action, 'trigger');
        assert.equal(pd1[0]!.dedup_key, 'cutover/m1/run');
        assert.equal(pd1[0]!.routing_key, 'pd-key-1');
        assert.equal((pd1[0]!.payload as Record<string, unknown>).severity, 'error');

        writeFileSync(allow, '');
        const done = await runCli(['--json', 'run', s.specPath], env);
        assert.equal(done.code, 0, done.stderr.slice(-1500));
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
        const json2 = at(secretPath);
        assert.ok(json2.some((b) => b.kind === 'switched'));
        assert.equal(json2.at(-1)!.kind, 'finished');
        assert.equal(at('/slack').at(-1)!.text, ':information_source: m1: aliases switched to the new index');
        const pd2 = at('/pd');
        assert.deepEqual(pd2.at(-1), {
          routing_key: 'pd-key-1',
          event_action: 'resolve',
          dedup_key: 'cutover/m1/run',
        });
        assert.equal(readFileSync(seen, 'utf8'), `m1|switched|${s.target}`);

        // A rollback is heard too (and lands in the audit mirror below); it opens no incident.
        const pdBefore = at('/pd').length;
        const back = await runCli(['--json', 'rollback', s.specPath], env);
        assert.equal(back.code, 0, back.stderr.slice(-1500));
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
        const rolled = at(secretPath).at(-1)!;
        assert.equal(rolled.kind, 'rolled-back');
        assert.equal(rolled.severity, 'warning');
        assert.match(String(rolled.summary), /m1: rolled back, the aliases point at the old index again/);
        assert.equal(at('/pd').length, pdBefore, 'no PagerDuty event for a rollback');

        // The webhook URL is a credential: in no output, no state file, no report.
        const state = join(s.dir, 'state', 'm1');
        const files = readdirSync(state).filter((f) => f.endsWith('.json') || f.endsWith('.jsonl'));
        for (const text of [
          vetoed.stdout,
          vetoed.stderr,
          done.stdout,
          done.stderr,
          back.stdout,
          back.stderr,
          ...files.map((f) => readFileSync(join(state, f), 'utf8')),
        ])
          assert.ok(!text.includes('T0KEN-s3cr3t') && !text.includes('pd-key-1'), 'a webhook secret leaked');
        assert.ok(existsSync(join(state, 'audit.jsonl')));
        // Checkpoints are in the trail, and the audit index on the target cluster holds the same records.
        const trail = readFileSync(join(state, 'audit.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { event: string; at: string; done?: boolean });
        assert.ok(trail.some((r) => r.event === 'checkpoint' && r.done === true));
        await s.c.refresh(auditIndex);
        const mirrored = await s.c.search<{ event: string; at: string; migration: string }>(auditIndex, {
          size: 1000,
          query: { match_all: {} },
        });
        const key = (r: { event: string; at: string }) => `${r.at} ${r.event}`;
        assert.deepEqual(mirrored.hits.hits.map((h) => key(h._source!)).sort(), trail.map(key).sort());
        assert.ok(mirrored.hits.hits.every((h) => h._source!.migration === 'm1'));
        await s.c.deleteIndex(auditIndex);
      } finally {
        r.server.close();
      }
    });

    it('warm-up: the queries run on both indices before the switch and are reported; one the new index refuses stops it', async () => {
      const ok = await t.scenario(kind, 200, {
        capture: { strategy: 'none' },
        cutover: {
          warmup: {
            queries: [{ query: { match_all: {} } }, { query: { range: { quantity: { gte: 3 } } } }],
            runs: 2,
          },
        },
      });
      const r = await runCli(['--json', 'run', ok.specPath]);
      assert.equal(r.code, 0, r.stderr.slice(-1500));
      const report = JSON.parse(readFileSync(join(ok.dir, 'state', 'm1', 'report.json'), 'utf8')) as {
        warmup: Array<{
          query: number;
          targetFirstMs: number;
          targetMedianMs: number;
          sourceMedianMs?: number;
        }>;
      };
      assert.deepEqual(
        report.warmup.map((q) => q.query),
        [1, 2],
      );
      for (const q of report.warmup) {
        assert.equal(typeof q.targetFirstMs, 'number');
        assert.equal(typeof q.targetMedianMs, 'number');
        assert.equal(typeof q.sourceMedianMs, 'number');
      }
      assert.match(
        r.stderr,
        /warm-up query 2: new index first \d+ ms, median \d+ ms; old index median \d+ ms/,
      );

      // quantity is an integer on the new index only (the scenario's mapping change): "many" cannot be one.
      const bad = await t.scenario(kind, 50, {
        capture: { strategy: 'none' },
        cutover: { warmup: { queries: [{ query: { range: { quantity: { gte: 'many' } } } }] } },
      });
      const refused = await runCli(['--json', 'run', bad.specPath]);
      assert.equal(refused.code, 3, refused.stderr.slice(-1500));
      assert.match(refused.stderr, /warm-up query 1 fails on the new index/);
      assert.deepEqual(await aliasTargets(bad.c, bad.writeAlias), [bad.source], 'nothing switched');
    });

    it('a webhook whose URL variable is not set is bad input: exit 2, named, nothing created', async () => {
      const s = await t.scenario(kind, 10, {
        alerts: { webhooks: [{ urlEnv: 'CUTOVER_TEST_UNSET_ALERT_URL', format: 'slack' }] },
      });
      const r = await runCli(['run', s.specPath], { CUTOVER_TEST_UNSET_ALERT_URL: '' });
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /alerts\.webhooks\[0\]\.urlEnv: environment variable CUTOVER_TEST_UNSET_ALERT_URL is not set/,
      );
      assert.equal(await s.c.indexExists(s.target), false);
    });
  });
}
