/**
 * The closed-loop throttle and the watchdog against a real server made to hurt: a dedicated server per kind (the
 * shared ones are not turned red or starved) whose write thread pool has one thread and a queue of two, so a copy
 * with many slices and large bulks is refused (429). The throttle must slow the copy with a reason naming the
 * signal, lose nothing, and speed up again; a red index must pause a run's copy until it is gone, with the
 * allocation explain in the audit trail and the report, and `doctor` must say the same.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { Cluster } from '../../src/cluster/client.js';
import { sleep } from '../../src/cluster/retry.js';
import { loadSpec, Migration } from '../../src/index.js';
import { type LocalCluster, startLocalCluster } from '../../src/local/servers.js';
import { MATRIX, uniqueName } from '../support/clusters.js';
import { diffDocs, readAll } from '../support/data.js';

/** Wait for `cond`, polling; the limit only keeps a broken run from hanging the suite (not a timing claim). */
async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 180_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > limitMs) throw new Error(`gave up waiting for ${what}`);
    await sleep(100);
  }
}

function writeSpec(url: string, source: string, patch: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-throttle-'));
  const path = join(dir, 'spec.yaml');
  writeFileSync(
    path,
    YAML.stringify({
      name: uniqueName('m'),
      source: { cluster: { url }, index: source },
      target: { index: `${source}-v2` },
      capture: { strategy: 'none' },
      stateDir: './state',
      ...patch,
    }),
  );
  return path;
}

/**
 * Seed through the starved write pool: rejected items are sent again until every one is in (support/data's seed
 * takes one refusal as a failure). Returns id -> source, as seed does.
 */
async function seedStarved(c: Cluster, index: string, count: number, shards: number) {
  await c.createIndex(index, { settings: { number_of_shards: shards, number_of_replicas: 0 } });
  const docs = new Map<string, { source: Record<string, unknown>; routing?: string }>();
  for (let start = 0; start < count; start += 1000) {
    // One routing value per bulk: one shard task per bulk, which the starved pool takes without refusing much.
    const routing = `r${start / 1000}`;
    let pending = Array.from({ length: Math.min(1000, count - start) }, (_, k) => doc(start + k));
    for (const p of pending) docs.set(p.id, { source: p.doc, routing });
    while (pending.length) {
      const r = await c.bulk(
        pending
          .map(
            (p) =>
              `${JSON.stringify({ index: { _index: index, _id: p.id, routing } })}\n${JSON.stringify(p.doc)}\n`,
          )
          .join(''),
      );
      const again = pending.filter((_, k) => Object.values(r.items[k]!)[0]!.status === 429);
      const failed = r.items.find((it) => {
        const x = Object.values(it)[0]!;
        return x.status >= 300 && x.status !== 429;
      });
      if (failed) throw new Error(`seed ${index}: ${JSON.stringify(failed)}`);
      if (again.length) await sleep(50);
      pending = again;
    }
  }
  await c.refresh(index);
  return docs;
}

const doc = (i: number) => ({ id: `d${i}`, doc: { n: i, title: `document ${i}`, pad: 'x'.repeat(200) } });

for (const kind of MATRIX.filter((k) => k === 'es8' || k === 'os3')) {
  describe(`closed-loop throttle and watchdog on a dedicated ${kind} server (write pool 1 thread, queue 2)`, () => {
    let server: LocalCluster;
    let c: Cluster;
    before(async () => {
      server = await startLocalCluster({
        kind,
        settings: { 'thread_pool.write.size': 1, 'thread_pool.write.queue_size': 2 },
      });
      c = new Cluster({ url: server.url });
    });
    after(async () => {
      await c?.close();
      await server?.stop();
    });

    it('slows the copy when the target refuses bulks, loses nothing, and speeds up again', async (t) => {
      const source = uniqueName('thr');
      const seeded = await seedStarved(c, source, 20_000, 8);
      const m = new Migration(
        loadSpec(
          writeSpec(server.url, source, {
            target: {
              index: `${source}-v2`,
              settingOverrides: { number_of_shards: 1, number_of_replicas: 0 },
            },
            // Eight slices at once against one write thread and a queue of two: refused until the loop slows down.
            copy: {
              batchDocs: 500,
              concurrency: 8,
              sampleSize: 0,
              throttle: { intervalMs: 500, floorDocsPerSecond: 200 },
            },
            watchdog: { enabled: false },
          }),
        ),
      );
      const changes: Array<{ rate: number; reason: string }> = [];
      const inFlight: number[] = [];
      m.throttle.onChange((v, change) => {
        if (/^concurrency /.test(change)) inFlight.push(v.concurrency);
        else changes.push({ rate: v.rate, reason: v.reason });
      });
      // Every document a page hands to the writer takes rate tokens, and so does every document the target refused
      // and the writer sends again: the tokens taken are the documents copied plus the retries, no fewer.
      let tokens = 0;
      const take = m.throttle.take.bind(m.throttle);
      m.throttle.take = (n: number, signal?: AbortSignal) => {
        tokens += n;
        return take(n, signal);
      };
      // What /metrics shows as cutover_throttle_signal_over: the signals over at each reading, by name and side.
      const signalsSeen = new Set<string>();
      const poll = setInterval(() => {
        for (const o of m.throttle.view().signalsOver) signalsSeen.add(`${o.side}:${o.signal}`);
      }, 100);
      try {
        const r = await m.run().finally(() => clearInterval(poll));
        assert.equal(r.outcome, 'cut-over');
        assert.ok(
          [...signalsSeen].some((x) => /^target:(write_queue|write_rejections|bulk_refused)$/.test(x)),
          `the refusals were named as signals: ${[...signalsSeen].join(' ')}`,
        );
        assert.deepEqual(m.throttle.view().signalsOver, [], 'cleared when the loop stops');
        const report = m.report();
        const rates = changes.map((ch) => ch.rate);
        t.diagnostic(
          `${changes.length} rate changes, ${Math.min(...rates)}..${Math.max(...rates)} docs/s; ${report.retries} retries; first: ${changes[0]?.reason}`,
        );
        assert.ok(report.retries > 0, 'the target did refuse documents (429), which the writer retried');
        assert.equal(tokens, seeded.size + report.retries, 'retries wait for the throttle like first sends');

        // Decreases: the rate went down, and the reason names the signal that made it.
        const firstDown = changes.findIndex(
          (ch, i) => ch.rate > 0 && ch.rate < (i ? changes[i - 1]!.rate || Infinity : Infinity),
        );
        assert.ok(firstDown >= 0, `the throttle slowed the copy: ${JSON.stringify(changes)}`);
        assert.match(
          changes[firstDown]!.reason,
          /(target refused \d+ document\(s\) with 429|write thread pool rejected \d+|write queue \d+\/2).*: rate .* -> \d+ docs\/s$/,
        );
        // ... and it rose again once the target kept up.
        const upAfter = changes
          .slice(firstDown + 1)
          .find((ch) => /^all signals clear: rate \d+ docs\/s -> /.test(ch.reason));
        assert.ok(upAfter, `the rate rose again after slowing: ${JSON.stringify(changes)}`);
        assert.ok(
          changes.every((ch) => ch.rate === 0 || ch.rate >= 200),
          'never below the floor',
        );
        // The bulks in flight follow the same rule: fewer than the 8 slices while refused, more again after.
        const fewest = Math.min(...inFlight);
        t.diagnostic(`bulks in flight: ${inFlight.join(' ')}`);
        assert.ok(fewest < 8 && fewest >= 1, `concurrency lowered: ${inFlight.join(' ')}`);
        assert.ok(
          inFlight.slice(inFlight.indexOf(fewest) + 1).some((n) => n > fewest),
          `concurrency raised again: ${inFlight.join(' ')}`,
        );

        // Nothing lost, id by id and source by source, besides the run's own proof.
        const d = diffDocs(seeded, await readAll(c, `${source}-v2`));
        assert.deepEqual(d, { missing: [], extra: [], changed: [] });
        const proof = JSON.parse(readFileSync(m.store.proofPath, 'utf8'));
        assert.equal(proof.passed, true);
      } finally {
        await m.close();
        for (const i of [source, `${source}-v2`]) await c.deleteIndex(i).catch(() => undefined);
      }
    });

    it('the watchdog pauses a run while a cluster is red, explains why, and resumes when it recovers', async () => {
      const source = uniqueName('wd');
      const red = uniqueName('red');
      const seeded = await seedStarved(c, source, 3000, 1);
      const m = new Migration(
        loadSpec(
          writeSpec(server.url, source, {
            target: { index: `${source}-v2`, settingOverrides: { number_of_replicas: 0 } },
            // Slow on purpose, so the copy is still going when the cluster turns red.
            copy: {
              batchDocs: 50,
              concurrency: 1,
              maxDocsPerSecond: 200,
              sampleSize: 0,
              throttle: { enabled: false },
            },
            watchdog: { intervalSeconds: 0.2, redAfterSeconds: 0.5 },
          }),
        ),
      );
      const warnings: string[] = [];
      const reporter = {
        step() {},
        info() {},
        warn: (msg: string) => warnings.push(msg),
        copyStarted() {},
        copyProgress() {},
        copyFinished() {},
      };
      let redMade = false;
      try {
        const run = m.run({ reporter });
        run.catch(() => undefined);
        await until('the copy to start', () => m.report().copied > 0);

        // An index whose only shard may go nowhere: the cluster is red.
        await c.request({
          method: 'PUT',
          path: `/${red}`,
          query: { wait_for_active_shards: 0 },
          body: {
            settings: {
              number_of_shards: 1,
              number_of_replicas: 0,
              'index.routing.allocation.require._name': 'nope',
            },
          },
        });
        redMade = true;
        await until('the watchdog to pause', () =>
          m.throttle.view().pausedBy.some((p) => p.by === 'watchdog'),
        );
        const v = m.watchdog.view();
        assert.equal(v.paused, true);
        assert.equal(v.clusters[0]!.status, 'red');
        assert.equal(v.lastExplain?.index, red);
        assert.equal(v.lastExplain?.primary, true);
        assert.match(
          m.throttle.view().pausedBy[0]!.why,
          new RegExp(`red for \\d+ s .*${red}\\[0\\] primary`),
        );

        // Paused: once the bulk in flight is acknowledged, the checkpoints stop moving.
        await sleep(1500);
        const held = m.report().copied;
        await sleep(1500);
        assert.equal(m.report().copied, held, 'no page is copied while the watchdog holds the pause');
        assert.ok(held < seeded.size, 'paused in the middle of the copy');

        // doctor says the same, with the reroute an operator could send and what it costs.
        const dr = await m.doctor({ olderThanMinutes: 60 });
        assert.equal(dr.healthy, false);
        assert.match(dr.problems.join('\n'), new RegExp(`red .*${red}\\[0\\] primary`));
        const reroute = dr.clusters[0]!.reroute!.join('\n');
        assert.match(reroute, /retry_failed=true/);
        assert.match(reroute, /DATA LOSS.*allocate_stale_primary.*accept_data_loss/);

        await c.deleteIndex(red);
        redMade = false;
        const r = await run;
        assert.equal(r.outcome, 'cut-over');
        assert.equal(m.throttle.view().paused, false);

        const audit = readFileSync(m.audit.path, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
        const paused = audit.find((a) => a.event === 'watchdog-paused');
        assert.ok(paused, 'the pause is in the audit trail');
        assert.equal(paused.explain.index, red);
        assert.equal(paused.explain.primary, true);
        assert.ok(
          paused.explain.nodes.some((n: { why: string[] }) => n.why.some((w) => /filter/.test(w))),
          'the deciders say why: the allocation filter',
        );
        assert.ok(audit.some((a) => a.event === 'watchdog-resumed'));
        assert.ok(!audit.some((a) => /reroute/.test(a.event)), 'never a reroute');
        const report = m.report();
        assert.equal(report.watchdogPauses?.length, 1);
        assert.equal(report.watchdogPauses?.[0]?.explain?.index, red);
        assert.ok(report.watchdogPauses?.[0]?.resumedAt);
        assert.ok(warnings.some((w) => /watchdog: .*resumed after a pause/.test(w)));

        const d = diffDocs(seeded, await readAll(c, `${source}-v2`));
        assert.deepEqual(d, { missing: [], extra: [], changed: [] });
      } finally {
        if (redMade) await c.deleteIndex(red).catch(() => undefined);
        await m.close();
        for (const i of [source, `${source}-v2`]) await c.deleteIndex(i).catch(() => undefined);
      }
    });
  });
}
