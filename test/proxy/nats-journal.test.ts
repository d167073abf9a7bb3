/**
 * The NATS journal against the real nats-server on 127.0.0.1:4222 (JetStream): every test has its own migration
 * name, so its own stream and subjects, and deletes the stream afterwards.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { type ProxyInfo, ProxyUnavailable } from '../../src/proxy/control.js';
import {
  type EntryBody,
  JournalBroken,
  type JournalEntry,
  JournalFailed,
  type JournalPos,
  type JournalReader,
} from '../../src/proxy/journal.js';
import { NatsJournalReader, openNatsJournal, openNatsRegistry } from '../../src/proxy/nats-journal.js';
import { natsNames } from '../../src/proxy/nats-names.js';
import { type LoadedSpec, resolveSpec } from '../../src/spec/load.js';

const SERVERS = 'nats://127.0.0.1:4222';
const NATS_SERVER = '/usr/sbin/nats-server';

function specInput(tag: string, heartbeatMs = 1000) {
  return {
    name: `nj-${tag}-${process.pid}-${Date.now().toString(36)}`,
    source: { cluster: { url: 'http://127.0.0.1:9200' }, index: 'src' },
    target: { index: 'dst' },
    proxy: { journal: { kind: 'nats', servers: SERVERS }, heartbeatMs },
  };
}

/** A fresh migration on NATS; its stream is deleted when fn ends, whatever happened. */
async function withMigration(
  tag: string,
  fn: (spec: LoadedSpec, input: ReturnType<typeof specInput>) => Promise<void>,
  heartbeatMs?: number,
): Promise<void> {
  const input = specInput(tag, heartbeatMs);
  const spec = resolveSpec(input, '/tmp');
  try {
    await fn(spec, input);
  } finally {
    await admin(async (jsm) => {
      await jsm.streams.delete(natsNames(spec).stream).catch(() => undefined);
    });
  }
}

async function admin<T>(fn: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: SERVERS, name: 'cutover test admin' });
  try {
    return await fn(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

/** A stream made the way an operator might, without the delete and purge refusals the journal asks for. */
async function editableStream(spec: LoadedSpec): Promise<void> {
  const n = natsNames(spec);
  await admin((jsm) =>
    jsm.streams.add({ name: n.stream, subjects: n.streamSubjects, storage: StorageType.File }),
  );
}

async function readAll(r: JournalReader, from: JournalPos, batch: number): Promise<JournalEntry[]> {
  const all: JournalEntry[] = [];
  let pos = from;
  for (;;) {
    const { entries, next } = await r.read(pos, batch);
    if (entries.length === 0) return all;
    all.push(...entries);
    pos = next;
  }
}

function docs(prefix: string, n: number): EntryBody[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'doc',
    op: 'index',
    index: 'src',
    id: `${prefix}-${i}`,
  }));
}

const shape = (e: JournalEntry) => (e.kind === 'doc' ? `${e.proxy}:${e.id}` : `${e.proxy}:${e.kind}`);

function proxyInfo(id: string): ProxyInfo {
  return {
    id,
    pid: process.pid,
    host: hostname(),
    control: 'http://127.0.0.1:1',
    listen: '127.0.0.1:2',
    startedAt: new Date().toISOString(),
    journal: 'nats',
  };
}

/** Waits for a condition the system reaches by itself; the assertion is on the state, not on the time taken. */
async function until(what: string, cond: () => boolean, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`never happened: ${what}`);
    await sleep(20);
  }
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** A nats-server of this test's own (the shared one is never stopped), with JetStream in dir, ready for clients. */
async function ownNatsServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
    stdio: 'ignore',
  });
  for (let i = 0; ; i++) {
    try {
      const nc = await connect({ servers: `nats://127.0.0.1:${port}`, name: 'cutover test probe' });
      await (await jetstreamManager(nc)).getAccountInfo();
      await nc.close();
      return child;
    } catch (e) {
      if (i >= 200 || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw e;
      }
      await sleep(50);
    }
  }
}

describe('NATS journal', () => {
  it('two proxies appending concurrently: gap-free positions, read back in order, each entry exactly once', async () => {
    await withMigration('concurrent', async (spec) => {
      const a = await openNatsJournal(spec, 'proxy-a');
      const b = await openNatsJournal(spec, 'proxy-b');
      const appends: { proxy: string; ids: string[]; pos: Promise<JournalPos> }[] = [];
      for (let i = 0; i < 20; i++)
        for (const [id, j] of [
          ['proxy-a', a],
          ['proxy-b', b],
        ] as const) {
          const batch = docs(`${id}-${i}`, 10);
          appends.push({
            proxy: id,
            ids: batch.map((e) => (e as { id: string }).id),
            pos: j.writer.append(batch),
          });
        }
      const positions = await Promise.all(appends.map((x) => x.pos));
      const ends = { 'proxy-a': a.writer.end.seq, 'proxy-b': b.writer.end.seq };
      await a.close();
      await b.close();

      const reader = new NatsJournalReader(spec);
      try {
        const all = await readAll(reader, { seq: 0 }, 37);
        assert.equal(all.length, 2 + 400 + 2, 'two starts, 400 documents, two stops');
        assert.deepEqual(
          all.map((e) => e.seq),
          all.map((_, i) => i + 1),
          'positions 1, 2, 3, ... without a hole or a repeat',
        );
        const seen = all.filter((e) => e.kind === 'doc').map(shape);
        assert.equal(new Set(seen).size, 400, 'no document twice');
        const bySeq = new Map(all.map((e) => [e.seq, e]));
        for (const [i, x] of appends.entries()) {
          const last = bySeq.get(positions[i]!.seq);
          assert.equal(
            last && shape(last),
            `${x.proxy}:${x.ids.at(-1)}`,
            'an append resolves at its last entry',
          );
          assert.ok(positions[i]!.seq <= ends[x.proxy as keyof typeof ends]);
        }
        for (const p of ['proxy-a', 'proxy-b']) {
          const mine = all.filter((e) => e.proxy === p).map(shape);
          const sent = appends.filter((x) => x.proxy === p).flatMap((x) => x.ids.map((id) => `${p}:${id}`));
          assert.deepEqual(
            mine,
            [`${p}:start`, ...sent, `${p}:stop`],
            `${p}'s entries in the order it sent them`,
          );
        }
        assert.equal((await reader.end()).seq, 404);
        const consumers = await admin(
          async (jsm) => (await jsm.streams.info(natsNames(spec).stream)).state.consumer_count,
        );
        assert.equal(consumers, 0, 'reads leave no consumer behind on the server');
      } finally {
        await reader.close();
      }
    });
  });

  it('acknowledged entries survive a SIGKILL of the NATS server process', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cutover-nats-'));
    const input = {
      ...specInput('srvkill'),
      proxy: { journal: { kind: 'nats', servers: `nats://127.0.0.1:${port}` } },
    };
    const spec = resolveSpec(input, '/tmp');
    let server = await ownNatsServer(port, dir);
    try {
      const j = await openNatsJournal(spec, 'proxy-a');
      const acked = await Promise.all(
        Array.from({ length: 100 }, (_, i) => j.writer.append(docs(`k${i}`, 20))),
      );
      const end = j.writer.end.seq;
      assert.equal(end, 1 + 2000);
      assert.equal(Math.max(...acked.map((p) => p.seq)), end);
      // Killed right after the last ack: no clean shutdown of the server, nothing flushed on purpose.
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await gone;
      server = await ownNatsServer(port, dir);
      const reader = new NatsJournalReader(spec);
      try {
        const all = await readAll(reader, { seq: 0 }, 500);
        assert.equal(all.length, end, 'every acknowledged entry is there');
        assert.deepEqual(
          all.map((e) => e.seq),
          all.map((_, i) => i + 1),
        );
        assert.equal(new Set(all.filter((e) => e.kind === 'doc').map(shape)).size, 2000);
      } finally {
        await reader.close();
        // The proxy outlived the server; its stop goes to the new one, or fails: either way it is done.
        await j.close();
      }
    } finally {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await gone;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an append is durable: another connection reads it after the proxy closed; a clean reopen needs no reconcile', async () => {
    await withMigration('durable', async (spec) => {
      const first = await openNatsJournal(spec, 'proxy-a');
      const pos = await first.writer.append(docs('d', 3));
      assert.equal(pos.seq, 4);
      await first.close();
      const reader = new NatsJournalReader(spec);
      try {
        const r1 = await reader.read({ seq: 0 }, 100);
        assert.deepEqual(r1.entries.map(shape), [
          'proxy-a:start',
          'proxy-a:d-0',
          'proxy-a:d-1',
          'proxy-a:d-2',
          'proxy-a:stop',
        ]);
        const again = await openNatsJournal(spec, 'proxy-a');
        await again.close();
        const r2 = await reader.read(r1.next, 100);
        assert.deepEqual(
          r2.entries.map(shape),
          ['proxy-a:start', 'proxy-a:stop'],
          'no reconcile after a clean stop',
        );
        assert.deepEqual(
          r2.entries.map((e) => e.seq),
          [6, 7],
        );
        assert.equal((await reader.read(r2.next, 100)).entries.length, 0);
      } finally {
        await reader.close();
      }
    });
  });

  it('a message deleted from the stream is a hole: JournalBroken names the position, wherever the read starts', async () => {
    await withMigration('deleted', async (spec) => {
      await editableStream(spec);
      const j = await openNatsJournal(spec, 'proxy-a');
      await j.writer.append(docs('d', 10));
      await j.close();
      const stream = natsNames(spec).stream;
      await admin((jsm) => jsm.streams.deleteMessage(stream, 5));
      const reader = new NatsJournalReader(spec);
      try {
        await assert.rejects(reader.read({ seq: 0 }, 100), (e: Error) => {
          assert.ok(e instanceof JournalBroken, e.message);
          assert.match(e.message, /position 5 is missing/);
          return true;
        });
        const head = await reader.read({ seq: 0 }, 3);
        assert.equal(head.next.seq, 3, 'positions before the hole are fine');
        await assert.rejects(reader.read(head.next, 100), /position 5 is missing/);
        const past = await reader.read({ seq: 5 }, 100);
        assert.deepEqual(
          past.entries.map((e) => e.seq),
          [6, 7, 8, 9, 10, 11, 12],
          'a hole already passed is no concern',
        );
        // The last position gone: nothing after it betrays the hole, the read must still find it.
        await admin((jsm) => jsm.streams.deleteMessage(stream, 12));
        await assert.rejects(reader.read({ seq: 9 }, 100), /position 12 is missing/);
      } finally {
        await reader.close();
      }
    });
  });

  it('a stream purged, cut by a lowered limit, or deleted and created again is JournalBroken', async () => {
    await withMigration('purged', async (spec) => {
      await editableStream(spec);
      const j = await openNatsJournal(spec, 'proxy-a');
      await j.writer.append(docs('d', 10));
      const reader = new NatsJournalReader(spec);
      try {
        const head = await reader.read({ seq: 0 }, 4);
        await admin((jsm) => jsm.streams.purge(natsNames(spec).stream));
        await j.writer.append(docs('after', 2));
        await assert.rejects(reader.read(head.next, 100), (e: Error) => {
          assert.ok(e instanceof JournalBroken, e.message);
          assert.match(e.message, /positions 5 to 11 are gone/);
          return true;
        });
      } finally {
        await reader.close();
        await j.close();
      }
    });

    await withMigration('limit', async (spec) => {
      const j = await openNatsJournal(spec, 'proxy-a');
      await j.writer.append(docs('d', 10));
      const stream = natsNames(spec).stream;
      await admin(async (jsm) => {
        const si = await jsm.streams.info(stream);
        await jsm.streams.update(stream, { ...si.config, max_msgs: 3 });
      });
      const reader = new NatsJournalReader(spec);
      try {
        await assert.rejects(reader.read({ seq: 2 }, 100), /positions 3 to 8 are gone/);
      } finally {
        await reader.close();
        await j.close();
      }
    });

    await withMigration('recreated', async (spec) => {
      const stream = natsNames(spec).stream;
      let j = await openNatsJournal(spec, 'proxy-a');
      await j.writer.append(docs('d', 3));
      const reader = new NatsJournalReader(spec);
      try {
        const { next } = await reader.read({ seq: 0 }, 100);
        assert.equal(next.seq, 4);
        const persisted = JSON.parse(JSON.stringify(next)) as JournalPos;
        await j.close();
        await admin((jsm) => jsm.streams.delete(stream));
        j = await openNatsJournal(spec, 'proxy-a');
        // The new stream is shorter than what was read: its identity tells, and so does its length alone
        // (a position saved without the identity, read by a runner that just started).
        await assert.rejects(reader.read(next, 100), /deleted and created again/);
        const restarted = new NatsJournalReader(spec);
        try {
          await assert.rejects(restarted.read({ seq: 4 }, 100), /ends at position 1, though 4 were read/);
        } finally {
          await restarted.close();
        }
        await j.writer.append(docs('new', 10));
        // Now longer: only the stream's identity tells it apart, in memory and in the persisted position.
        await assert.rejects(reader.read(next, 100), /deleted and created again/);
        const fresh = new NatsJournalReader(spec);
        try {
          await assert.rejects(fresh.read(persisted, 100), /deleted and created again/);
        } finally {
          await fresh.close();
        }
        await j.close();
        await admin((jsm) => jsm.streams.delete(stream));
        await assert.rejects(reader.read(next, 100), /the stream is gone, though 4 entries were read/);
      } finally {
        await reader.close();
        await j.close();
      }
    });
  });

  it('the stream it creates refuses message deletes and purges', async () => {
    await withMigration('deny', async (spec) => {
      const j = await openNatsJournal(spec, 'proxy-a');
      await j.writer.append(docs('d', 2));
      await j.close();
      const stream = natsNames(spec).stream;
      await admin(async (jsm) => {
        await assert.rejects(jsm.streams.deleteMessage(stream, 2), /not permitted/);
        await assert.rejects(jsm.streams.purge(stream), /not permitted/);
        assert.equal((await jsm.streams.info(stream)).state.messages, 4);
      });
    });
  });

  it('a proxy killed without closing: its next life journals a reconcile before its start', async () => {
    await withMigration('crash', async (spec, input) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('../support/nats-crash-child.ts', import.meta.url)),
          JSON.stringify(input),
          'proxy-c',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((r) => child.once('exit', r));
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`the child exited (${code}) before journaling`)));
      });
      assert.equal((JSON.parse(line) as JournalPos).seq, 2);
      child.kill('SIGKILL');
      await exited;

      const j = await openNatsJournal(spec, 'proxy-c');
      await j.close();
      const reader = new NatsJournalReader(spec);
      try {
        const all = await readAll(reader, { seq: 0 }, 100);
        assert.deepEqual(all.map(shape), [
          'proxy-c:start',
          'proxy-c:forwarded-1',
          'proxy-c:reconcile',
          'proxy-c:start',
          'proxy-c:stop',
        ]);
        const r = all[2]!;
        assert.ok(r.kind === 'reconcile' && r.index === undefined, 'every index of the migration');
        assert.match(r.kind === 'reconcile' ? r.why : '', /proxy proxy-c restarted after a crash/);
      } finally {
        await reader.close();
      }
    });
  });

  it('heartbeats: two registered proxies are live; one closes and only the other stays live', async () => {
    await withMigration(
      'heartbeat',
      async (spec) => {
        const registry = await openNatsRegistry(spec);
        const a = await openNatsJournal(spec, 'proxy-a');
        const b = await openNatsJournal(spec, 'proxy-b');
        try {
          const infoA = proxyInfo('proxy-a');
          await a.register(infoA);
          await b.register(proxyInfo('proxy-b'));
          const both = await registry.waitFor(2, 20_000);
          assert.deepEqual(
            both.map((p) => p.id),
            ['proxy-a', 'proxy-b'],
          );
          assert.deepEqual(both[0], infoA, 'the registration as the proxy gave it');
          await a.close();
          await until('proxy-a is no longer live', () => registry.live().length === 1);
          assert.deepEqual(
            registry.live().map((p) => p.id),
            ['proxy-b'],
          );
          await assert.rejects(registry.waitFor(2, 1_000), (e: Error) => {
            assert.ok(e instanceof ProxyUnavailable);
            assert.match(e.message, /heard from 1: proxy-b/);
            return true;
          });
        } finally {
          await a.close();
          await b.close();
          await registry.close();
        }
        // A minute between heartbeats: proxy-a can only have left the live set by saying it stops.
      },
      60_000,
    );
  });

  it('a proxy that goes silent without saying it stops drops out after three heartbeat intervals', async () => {
    await withMigration(
      'silent',
      async (spec) => {
        const registry = await openNatsRegistry(spec);
        const nc = await connect({ servers: SERVERS, name: 'cutover test silent proxy' });
        try {
          // One heartbeat, as a proxy sends it, and then nothing (a proxy killed or cut off).
          nc.publish(
            natsNames(spec).proxies,
            JSON.stringify({ ...proxyInfo('ghost'), at: new Date().toISOString() }),
          );
          await nc.flush();
          await registry.waitFor(1, 20_000);
          await until('ghost is no longer live', () => registry.live().length === 0);
        } finally {
          await nc.close();
          await registry.close();
        }
      },
      200,
    );
  });

  it('NATS out of reach: JournalFailed for the proxy and the reader, without the credentials in the message', async () => {
    const port = await freePort();
    const input = {
      ...specInput('unreachable'),
      proxy: { journal: { kind: 'nats', servers: `nats://cutover:s3cret-pw@127.0.0.1:${port}` } },
    };
    const spec = resolveSpec(input, '/tmp');
    const refused = (e: Error) => {
      assert.ok(e instanceof JournalFailed, e.message);
      assert.match(e.message, /cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:/);
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    };
    await assert.rejects(openNatsJournal(spec, 'proxy-a'), refused);
    const reader = new NatsJournalReader(spec);
    await assert.rejects(reader.ready, refused);
    await assert.rejects(reader.read({ seq: 0 }, 10), refused);
    await reader.close();
    await assert.rejects(openNatsRegistry(spec), refused);
  });

  it('a publish that fails is fatal: JournalFailed, and every later append rejects too', async () => {
    await withMigration('fatal', async (spec) => {
      const j = await openNatsJournal(spec, 'proxy-a');
      const ok = await j.writer.append(docs('d', 2));
      assert.equal(ok.seq, 3);
      const stream = natsNames(spec).stream;
      await admin((jsm) => jsm.streams.delete(stream));
      await assert.rejects(j.writer.append(docs('lost', 3)), (e: Error) => {
        assert.ok(e instanceof JournalFailed, e.message);
        assert.match(e.message, /publish to .* failed.*stops taking writes/);
        return true;
      });
      // Even once the stream is back, the proxy does not take writes again: the entries it lost stay lost.
      await editableStream(spec);
      await assert.rejects(j.writer.append(docs('later', 1)), JournalFailed);
      assert.equal(j.writer.end.seq, 3, 'the end stays at the last acknowledged position');
      await j.close();
      assert.equal(
        await admin(async (jsm) => (await jsm.streams.info(stream)).state.messages),
        0,
        'nothing published after the failure, not even a stop',
      );
    });
  });
});
