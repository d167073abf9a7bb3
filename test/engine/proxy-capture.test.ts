/**
 * Proxy capture end to end: the application writes through `cutover proxy` (index, partial update, delete and
 * re-create) during the whole migration and after the switch. The target is compared with the writers' log id by
 * id; the switch must happen under a hold (no write refused, no freeze) and without an id scan of the index.
 * A second writer that bypasses the proxy is reported, and its deletes are still found before the switch.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ClusterError } from '../../src/cluster/errors.js';
import { controlToken, ProxyControl, type ProxyInfo } from '../../src/proxy/control.js';
import { StateStore } from '../../src/store/state.js';
import { application, differencesAsWritten, type Log, wroteAndDeletedOn } from '../support/app-writer.js';
import { runCli, startCli } from '../support/cli.js';
import { EXPECTED } from '../support/clusters.js';
import { canon, readAll } from '../support/data.js';
import { startProxy, viaProxy } from '../support/proxy.js';
import { aliasTargets, type Scenario, trackedScenarios, transformDoc } from '../support/scenario.js';

function differences(log: Log, s: Scenario, actual: Map<string, { source: Record<string, unknown> }>) {
  const lost: string[] = [];
  const stale: string[] = [];
  const resurrected: string[] = [];
  for (const [id, { doc, index }] of log.state) {
    const want = doc === null ? null : index === s.source ? transformDoc(doc, id) : doc;
    const have = actual.get(id);
    if (want === null) {
      if (have) resurrected.push(id);
    } else if (!have) lost.push(id);
    else if (canon(have.source) !== canon(want)) stale.push(id);
  }
  const extra = [...actual.keys()].filter((id) => !log.state.has(id));
  return {
    lost: lost.slice(0, 5),
    stale: stale.slice(0, 5),
    resurrected: resurrected.slice(0, 5),
    extra: extra.slice(0, 5),
  };
}

const none = { lost: [], stale: [], resurrected: [], extra: [] };

/** `cutover run` started; `windowOpen` resolves once it switched and holds the revert window open. */
function runInRevertWindow(specPath: string) {
  const run = startCli(['--json', 'run', specPath]);
  let out = '';
  run.child.stderr!.on('data', (d) => {
    out += d;
  });
  const windowOpen = (async () => {
    while (!/revert window open until/.test(out)) {
      assert.equal(run.child.exitCode, null, `run ended early: ${out.slice(-1500)}`);
      await sleep(100);
    }
  })();
  return { ...run, windowOpen, output: () => out };
}

interface SyncState {
  copied: number;
  deleted: number;
  bypass: number;
  demands: unknown[];
  holds: Array<{
    switched: boolean;
    heldRequests: number;
    releasedBy: string[];
    reason?: string;
    fence?: { fenced: boolean };
    accounted?: boolean;
    targetCount?: 'tally' | 'refresh';
    sourceCount?: 'journal' | 'refresh';
    sourceCountFromJournal?: number;
  }>;
}

const NATS_URL = 'nats://127.0.0.1:4222';

const PROXY_SPEC = {
  capture: { strategy: 'proxy', tailIntervalMs: 200 },
  // Correctness, not timing: a loaded test machine must not fail the hold (bench/ measures it).
  cutover: { holdBudgetMs: 5000 },
  copy: { batchDocs: 200, maxDocsPerSecond: 1500 },
};

for (const kind of (['es8', 'os3'] as const).filter((k) => EXPECTED.includes(k))) {
  describe(`proxy capture on ${kind}`, () => {
    const t = trackedScenarios();
    afterEach(t.drop);

    it('switches under a hold: every write through the proxy is on the target, none refused, no id scan', async () => {
      // holdMaxDrain 1: any write journaled during the last read before a hold puts the hold off (at most five
      // times), so the writers below drive the deferral as well as the hold that follows it.
      const s = await t.scenario(kind, 3000, {
        ...PROXY_SPEC,
        cutover: { ...PROXY_SPEC.cutover, holdMaxDrain: 1 },
      });
      const proxy = await startProxy(s.specPath);
      let stop = false;
      const app = application({ ...s, c: viaProxy(proxy.url) }, () => stop);
      try {
        const r = await startCli(['--json', 'run', s.specPath]).done;
        // The application goes on through the proxy after the switch: those writes land on the new index.
        await sleep(500);
        stop = true;
        await app.done;
        assert.equal(r.code, 0, r.stderr.slice(-2000));
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
        assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.target]);
        assert.equal(app.log.refusedByFreeze, 0);
        assert.deepEqual(app.log.otherFailures.slice(0, 5), []);
        assert.ok((app.log.kinds.delete ?? 0) > 20, `deletes: ${JSON.stringify(app.log.kinds)}`);
        assert.deepEqual(differences(app.log, s, await readAll(s.c, s.target)), none);
        const sync = JSON.parse(
          readFileSync(join(s.dir, 'state', 'm1', 'journal-sync.json'), 'utf8'),
        ) as SyncState;
        const switched = sync.holds.filter((h) => h.switched);
        assert.equal(switched.length, 1, JSON.stringify(sync.holds));
        assert.deepEqual(switched[0]!.releasedBy, ['runner']);
        // Without a round under the hold, the target was counted from the writer's answers, not refreshed: a
        // wrong tally would have failed the count gate and released the hold without switching.
        assert.equal(switched[0]!.targetCount, switched[0]!.accounted ? 'tally' : 'refresh');
        // The source too, from a point in time and the journal's ids (source-count.ts); a figure that disagreed
        // with the target would have been replaced by a refresh and recorded.
        assert.equal(switched[0]!.sourceCount, switched[0]!.accounted ? 'journal' : 'refresh');
        for (const h of sync.holds) assert.equal(h.sourceCountFromJournal, undefined, JSON.stringify(h));
        for (const h of sync.holds) assert.doesNotMatch(h.reason ?? '', /counts differ/);
        assert.ok(sync.copied > 0 && sync.deleted > 0, JSON.stringify(sync));
        assert.equal(sync.bypass, 0, 'every writer used the proxy');
        const capture = JSON.parse(readFileSync(join(s.dir, 'state', 'm1', 'capture.json'), 'utf8'));
        assert.equal(capture.freezes.length, 0, 'no write freeze');
        assert.equal(capture.reconciles, 0, 'deletes came from the journal, not from an id scan');
        // The safety-net rounds listed the proxied writes and left them to the journal instead of copying them twice.
        assert.ok(capture.coveredByJournal > 0, `covered by the journal: ${capture.coveredByJournal}`);
        // The journal sync ran from its start position on, before the copy's own loop (syncUntilCopy).
        const audit = readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map(
            (l) => JSON.parse(l) as { event: string; passes?: number; lastRead?: number; deferred?: number },
          );
        const early = audit.filter((e) => e.event === 'journal-sync-before-copy');
        assert.equal(early.length, 1, JSON.stringify(early));
        assert.ok(early[0]!.passes! >= 1, JSON.stringify(early[0]));
        // The writers never pause, so the reads before the hold found something and put it off, at most five
        // times; the hold that followed switched (above) and the run said why it waited.
        const deferred = audit.filter((e) => e.event === 'hold-deferred');
        assert.ok(deferred.length >= 1 && deferred.length <= 5, JSON.stringify(deferred));
        for (const [i, e] of deferred.entries()) {
          assert.ok(e.lastRead! >= 1, JSON.stringify(e));
          assert.equal(e.deferred, i + 1);
        }
        assert.match(r.stderr, /catching up before holding \(1\/5\)/);
        // And while the journal accounted for every _seq_no, rounds read nothing at all (accounted-skips.ts).
        assert.ok(
          capture.roundsUnread > 0,
          `rounds that read nothing: ${capture.roundsUnread} of ${capture.rounds}`,
        );
        // The source was never write-blocked.
        const st = Object.values(await s.c.getSettings(s.source))[0]!.settings;
        assert.notEqual(st['index.blocks.write'], 'true');
      } finally {
        stop = true;
        await app.done;
        await proxy.stop();
      }
    });

    it('reports a writer that bypasses the proxy and still finds its deletes before the switch', async () => {
      const s = await t.scenario(kind, 1500, PROXY_SPEC);
      const proxy = await startProxy(s.specPath);
      let stop = false;
      const app = application({ ...s, c: viaProxy(proxy.url) }, () => stop);
      // The bypassing writer: its own ids, straight to the cluster through the write alias, sequential.
      const bypass = new Map<string, { doc: Record<string, unknown> | null; index: string }>();
      let fenced = 0; // bypassing writes the fence refused (not applied, so not in the log)
      const direct = (async () => {
        for (let n = 0; !stop; n++) {
          const id = `bypass-${n % 40}`;
          try {
            if (n % 3 === 2) {
              const r = await s.c.request<{ _index: string }>({
                method: 'DELETE',
                path: `/${s.writeAlias}/_doc/${id}`,
                okStatuses: [404],
              });
              if (r.status !== 404) bypass.set(id, { doc: null, index: r.body._index });
            } else {
              const doc = { title: `bypass ${n}`, qty: String(n % 100), tags: ['b'], n };
              const r = await s.c.request<{ _index: string }>({
                method: 'PUT',
                path: `/${s.writeAlias}/_doc/${id}`,
                body: doc,
              });
              bypass.set(id, { doc, index: r.body._index });
            }
          } catch (e) {
            // The fence of the switch refuses a bypassing writer's writes for a moment (not applied).
            if (e instanceof ClusterError && e.type === 'cluster_block_exception') fenced++;
            else throw e;
          }
          await sleep(20);
        }
      })();
      try {
        const r = await startCli(['--json', 'run', s.specPath]).done;
        await sleep(300);
        stop = true;
        await Promise.all([app.done, direct]);
        assert.equal(r.code, 0, r.stderr.slice(-2000));
        assert.match(r.stderr, /writes bypass the proxy/);
        const log: Log = { ...app.log, state: new Map([...app.log.state, ...bypass]) };
        assert.deepEqual(differences(log, s, await readAll(s.c, s.target)), none);
        const sync = JSON.parse(
          readFileSync(join(s.dir, 'state', 'm1', 'journal-sync.json'), 'utf8'),
        ) as SyncState;
        assert.ok(sync.bypass > 0, JSON.stringify(sync));
        // The switch fenced the source for the bypassing writer, inside the hold of the proxied ones.
        const switched = sync.holds.filter((h) => h.switched);
        assert.equal(switched.length, 1, JSON.stringify(sync.holds));
        assert.equal(
          switched[0]!.fence?.fenced,
          true,
          `${JSON.stringify(switched[0])}; bypassing writes refused by the fence: ${fenced}`,
        );
        assert.equal(app.log.refusedByFreeze, 0, 'writes through the proxy were held, not refused');
        assert.deepEqual(app.log.otherFailures.slice(0, 5), []);
      } finally {
        stop = true;
        await Promise.all([app.done, direct]);
        await proxy.stop();
      }
    });

    it('a proxy killed after answering, before journaling, and never started again: every id is reconciled before the switch', async () => {
      const stream = `cutover-vanish-${randomBytes(4).toString('hex')}`;
      const s = await t.scenario(kind, 1500, {
        ...PROXY_SPEC,
        proxy: { journal: { kind: 'nats', servers: NATS_URL, stream }, heartbeatMs: 500 },
      });
      // Proxy A dies the moment its third answer is on the wire, before that write's entry is journaled.
      const a = await startProxy(s.specPath, '127.0.0.1:0', { CUTOVER_FAILPOINTS: 'proxy.after-answer:3' });
      const b = await startProxy(s.specPath);
      const flag = join(s.dir, 'postpone');
      writeFileSync(flag, '');
      let stop = false;
      const app = application({ ...s, c: viaProxy(b.url) }, () => stop);
      const run = startCli(['--json', 'run', s.specPath, '--postpone-cutover-flag-file', flag]);
      let out = '';
      run.child.stderr!.on('data', (d) => {
        out += d;
      });
      run.child.stdout!.on('data', (d) => {
        out += d;
      });
      try {
        while (!/cutover postponed while/.test(out)) await sleep(100);
        // Ids the application never touches: created twice, then one deleted (the write A dies after).
        const viaA = viaProxy(a.url);
        const extra = new Map<string, { doc: Record<string, unknown> | null; index: string }>();
        for (const id of ['vanish-1', 'vanish-2']) {
          const doc = { title: id, qty: '1', tags: ['v'], n: 1 };
          const r = await viaA.request<{ _index: string }>({
            method: 'PUT',
            path: `/${s.writeAlias}/_doc/${id}`,
            body: doc,
          });
          extra.set(id, { doc, index: r.body._index });
        }
        // The application has the answer: the document is gone from the source.
        const del = await viaA.request<{ _index: string; result: string }>({
          method: 'DELETE',
          path: `/${s.writeAlias}/_doc/vanish-1`,
        });
        assert.equal(del.body.result, 'deleted');
        extra.set('vanish-1', { doc: null, index: del.body._index });
        await viaA.close();
        const killed = await new Promise<string | null>((r) => a.child.once('exit', (_c, sig) => r(sig)));
        assert.equal(killed, 'SIGKILL', 'the proxy died at the failpoint');
        rmSync(flag);
        const r = await run.done;
        await sleep(300);
        stop = true;
        await app.done;
        assert.equal(r.code, 0, r.stderr.slice(-2000));
        const log: Log = { ...app.log, state: new Map([...app.log.state, ...extra]) };
        assert.deepEqual(differences(log, s, await readAll(s.c, s.target)), none);
        const audit = readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { event: string; proxies?: string[] });
        const vanished = audit.filter((e) => e.event === 'proxy-vanished');
        assert.equal(vanished.length, 1, JSON.stringify(vanished));
        assert.equal(vanished[0]!.proxies?.length, 1);
        assert.ok(
          audit.findIndex((e) => e.event === 'proxy-reconciled') > audit.indexOf(vanished[0]!),
          'reconciled after the proxy was found gone',
        );
        assert.equal(app.log.refusedByFreeze, 0);
        assert.deepEqual(app.log.otherFailures.slice(0, 5), []);
      } finally {
        stop = true;
        await app.done;
        await b.stop();
        if (a.child.exitCode === null && a.child.signalCode === null) await a.kill();
        const nc = await connect({ servers: NATS_URL });
        await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
        await nc.close();
      }
    });

    for (const journal of ['file', 'nats'] as const)
      it(`rolls back under a hold inside the revert window (${journal} journal${journal === 'nats' ? ', two proxies' : ''}): no write refused or lost, every proxy forgets the switch`, async () => {
        const stream = `cutover-rollback-${randomBytes(4).toString('hex')}`;
        const s = await t.scenario(kind, 1500, {
          ...PROXY_SPEC,
          // The NATS variant also asks for the target's refresh under the hold (searchable at the switch).
          cutover: { holdBudgetMs: 5000, revertWindowMinutes: 30, searchableAtSwitch: journal === 'nats' },
          ...(journal === 'nats'
            ? { proxy: { journal: { kind: 'nats', servers: NATS_URL, stream }, heartbeatMs: 500 } }
            : {}),
        });
        const proxies = [await startProxy(s.specPath)];
        if (journal === 'nats') proxies.push(await startProxy(s.specPath));
        const proxy = proxies[0]!;
        let stop = false;
        const app = application({ ...s, c: viaProxy(proxy.url) }, () => stop);
        const run = runInRevertWindow(s.specPath);
        try {
          await run.windowOpen;
          assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.target]);
          // The application writes to the new index through the proxy for a while; the window copies it back.
          const before = app.log.acked;
          while (app.log.acked < before + 150) await sleep(100);

          const rb = await runCli(['rollback', s.specPath]);
          assert.equal(rb.code, 0, rb.stderr.slice(-2000));
          assert.match(rb.stderr, /aliases moved back to .* under a \d+ ms hold/);
          const r = await run.done;
          assert.equal(r.code, 0, `run hands over and ends cleanly: ${r.stderr.slice(-1500)}`);
          assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
          assert.deepEqual(await aliasTargets(s.c, s.readAlias), [s.source]);
          // Every proxy was told: no switch any more, so nothing it forwards is routed to the new index.
          const store = new StateStore(join(s.dir, 'state', 'm1'));
          for (const p of proxies) {
            const control = /control on (http:\/\/\S+?),/.exec(p.output())![1]!;
            const status = await new ProxyControl(
              { id: 'test', control } as ProxyInfo,
              controlToken(store.proxyTokenPath, false),
            ).status();
            assert.equal(status.switchedTo, undefined);
            assert.equal(status.upstream, 'source');
          }

          const sync = JSON.parse(
            readFileSync(join(s.dir, 'state', 'm1', 'journal-sync.json'), 'utf8'),
          ) as SyncState;
          const forward = sync.holds.find((h) => h.switched)!;
          if (journal === 'nats') assert.notEqual(forward.targetCount, 'tally', JSON.stringify(forward));

          const after = app.log.acked;
          while (app.log.acked < after + 50) await sleep(100);
          stop = true;
          await app.done;
          assert.equal(app.log.refusedByFreeze, 0, 'the proxied writes waited in the hold, none was refused');
          assert.deepEqual(app.log.otherFailures.slice(0, 5), []);
          assert.deepEqual(
            wroteAndDeletedOn(app.log, s.target),
            { writes: true, deletes: true },
            'the new index got both',
          );
          // The old index holds the last acknowledged state of every document, id by id.
          assert.deepEqual(differencesAsWritten(app.log, await readAll(s.c, s.source)), none);
          // The freeze of the new index under the hold was lifted: neither index is left write-blocked.
          for (const index of [s.source, s.target]) {
            const st = Object.values(await s.c.getSettings(index))[0]!.settings;
            assert.notEqual(st['index.blocks.write'], 'true', `${index} is writable`);
          }
          const audit = readFileSync(join(s.dir, 'state', 'm1', 'audit.jsonl'), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { event: string; moved?: boolean });
          assert.ok(
            audit.some((a) => a.event === 'rollback-hold' && a.moved),
            'the rollback ran under a hold',
          );
        } finally {
          stop = true;
          await app.done;
          run.child.kill('SIGKILL');
          for (const p of proxies) await p.stop();
          if (journal === 'nats') {
            const nc = await connect({ servers: NATS_URL });
            await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
            await nc.close();
          }
        }
      });

    it('a rollback inside the revert window deletes documents left on the old index that the application deleted since the switch', async () => {
      const s = await t.scenario(kind, 800, {
        ...PROXY_SPEC,
        cutover: { holdBudgetMs: 5000, revertWindowMinutes: 30 },
      });
      const proxy = await startProxy(s.specPath);
      const run = runInRevertWindow(s.specPath);
      try {
        await run.windowOpen;
        // The transform drops d13, d110, d207 and d304 (drop: true): they are on the old index only.
        const dropped = ['d13', 'd110', 'd207', 'd304'];
        const onOld = async () => new Set((await readAll(s.c, s.source)).keys());
        const onNew = new Set((await readAll(s.c, s.target)).keys());
        assert.deepEqual(
          dropped.filter((id) => !onNew.has(id)),
          dropped,
        );
        const before = await onOld();
        assert.deepEqual(
          dropped.filter((id) => before.has(id)),
          dropped,
        );
        const app = viaProxy(proxy.url);
        const del = (id: string) =>
          app.request({ method: 'DELETE', path: `/${s.writeAlias}/_doc/${id}`, okStatuses: [404] });
        // Deleted where the alias points: the new index never had it and answers not_found, so nothing changed
        // (the writers' log of engine tests counts no such write either): it stays on the old index.
        assert.equal((await del('d13')).status, 404);
        const upd = await app.request({
          method: 'POST',
          path: `/${s.writeAlias}/_update/d304`,
          body: { doc: { title: 'changed' } },
          okStatuses: [404],
        });
        assert.equal(upd.status, 404);
        // Written on the new index and deleted again at once, before the reverse sync may have seen it.
        await app.request({
          method: 'PUT',
          path: `/${s.writeAlias}/_doc/d110`,
          body: { title: 'back', qty: '1' },
        });
        assert.equal((await del('d110')).status, 200);
        // A document the transform would drop, written after the switch and deleted again.
        await app.request({
          method: 'PUT',
          path: `/${s.writeAlias}/_doc/late-drop`,
          body: { title: 'late', qty: '2', drop: true },
        });
        assert.equal((await del('late-drop')).status, 200);
        await app.close();

        const rb = await runCli(['rollback', s.specPath]);
        assert.equal(rb.code, 0, rb.stderr.slice(-2000));
        assert.equal((await run.done).code, 0, run.output().slice(-1500));
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
        const after = await onOld();
        assert.deepEqual(
          ['d110', 'late-drop'].filter((id) => after.has(id)),
          [],
          'the application deleted them: a rollback does not bring them back',
        );
        assert.deepEqual(
          ['d13', 'd207', 'd304'].filter((id) => !after.has(id)),
          [],
          'documents the migration left behind that no write the cluster took touched stay on the old index',
        );
      } finally {
        run.child.kill('SIGKILL');
        await proxy.stop();
      }
    });

    it('a rollback killed between moving the aliases back and telling the proxy: the rerun tells it', async () => {
      const s = await t.scenario(kind, 800, PROXY_SPEC);
      const proxy = await startProxy(s.specPath);
      const store = new StateStore(join(s.dir, 'state', 'm1'));
      const control = () =>
        new ProxyControl(
          { id: 'test', control: /control on (http:\/\/\S+?),/.exec(proxy.output())![1]! } as ProxyInfo,
          controlToken(store.proxyTokenPath, false),
        );
      try {
        const r = await runCli(['run', s.specPath]);
        assert.equal(r.code, 0, r.stderr.slice(-2000));
        assert.equal((await control().status()).switchedTo, s.target);
        // kill -9 right after the alias request of the rollback, before its release reaches the proxy.
        const killed = await runCli(['rollback', s.specPath], {
          CUTOVER_FAILPOINTS: 'rollback.after-aliases:1',
        });
        assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-1500));
        assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source]);
        assert.equal(
          (await control().status()).switchedTo,
          s.target,
          'the proxy was not told: it still acts on the switch',
        );
        const again = await runCli(['rollback', s.specPath]);
        assert.equal(again.code, 0, again.stderr.slice(-2000));
        assert.match(again.stderr, /already back on .*1 write proxy still acting on the switch now sends?/);
        const st = await control().status();
        assert.equal(st.switchedTo, undefined);
        assert.equal(st.upstream, 'source');
        assert.equal(st.holding, undefined, 'no hold left behind');
      } finally {
        await proxy.stop();
      }
    });

    it('refuses to open the copy without a running proxy, and says how to start one', async () => {
      const s = await t.scenario(kind, 100, PROXY_SPEC);
      const r = await startCli(['--json', 'run', s.specPath]).done;
      assert.equal(r.code, 3, r.stderr.slice(-1500));
      assert.match(r.stderr, /no write proxy is running .*cutover proxy/);
      assert.deepEqual(await aliasTargets(s.c, s.writeAlias), [s.source], 'nothing switched');
    });
  });
}
