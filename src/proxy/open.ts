/**
 * Open the write proxy of one migration from its spec: one proxy per state directory (the proxy lock), its journal,
 * its control token, its registration, then the server. The concrete index it protects is resolved once and kept
 * (switch.json), so a proxy restarted after the switch, when the aliases already point at the new index, still
 * knows which index was migrated.
 */
import { hostname } from 'node:os';
import { Cluster } from '../cluster/client.js';
import { authorizationOf } from '../cluster/transport.js';
import { clusterConfig, type LoadedSpec, SpecError } from '../spec/load.js';
import { acquireLock, type Lock } from '../store/lock.js';
import { StateStore } from '../store/state.js';
import { controlToken, type ProxyInfo, writeProxyInfo } from './control.js';
import { FileJournalWriter } from './file-journal.js';
import type { JournalWriter } from './journal.js';
import { type ProxyOptions, parseHostPort, type RunningProxy, startProxy } from './server.js';
import { readSwitch, switchStatePathOf } from './switch-state.js';

export interface OpenProxyOptions {
  /** HOST:PORT, overrides proxy.listen */
  listen?: string;
  /** HOST:PORT, overrides proxy.control */
  control?: string;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** fixed proxy id (default: derived from the host and the listen address, see defaultProxyId) */
  id?: string;
}

/** What src/proxy/nats-journal.ts provides (a JetStream stream shared by several proxies). */
export interface NatsJournal {
  writer: JournalWriter;
  register: (info: ProxyInfo) => Promise<void>;
  close(): Promise<void>;
  /** where the journal is, for people (e.g. "nats stream CUTOVER_m1 on nats://...") */
  label?: string;
}

type OpenNatsJournal = (spec: LoadedSpec, proxyId: string) => Promise<NatsJournal>;

/** Not a literal in the import below: this module builds and runs without it (file journals only). */
const NATS_MODULE = './nats-journal.js';

/** The shared journal, loaded only when a spec asks for it (and refused clearly when this build lacks it). */
async function natsJournal(spec: LoadedSpec, proxyId: string): Promise<NatsJournal> {
  let mod: { openNatsJournal?: OpenNatsJournal };
  try {
    mod = (await import(NATS_MODULE)) as { openNatsJournal?: OpenNatsJournal };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes('nats-journal'))
      throw new SpecError(
        'proxy.journal.kind nats: this build of cutover has no NATS journal; use kind file',
      );
    throw e;
  }
  if (typeof mod.openNatsJournal !== 'function')
    throw new SpecError('proxy.journal.kind nats: src/proxy/nats-journal.ts does not export openNatsJournal');
  return mod.openNatsJournal(spec, proxyId);
}

/**
 * A proxy's id names its lives in a NATS journal: a proxy started again under the same id finds that its previous
 * life published no stop and journals a reconcile marker before it takes writes. A pid changes with every start, so
 * the default is the host and the listen address (no two proxies listen on one address at once); only a proxy on
 * any free port (port 0) has nothing stable to be named by, and takes its pid.
 */
function defaultProxyId(listen: string): string {
  const { host, port } = parseHostPort(listen, 'proxy.listen');
  return port === 0 ? `proxy-${hostname()}-${process.pid}` : `proxy-${hostname()}-${host}:${port}`;
}

/** The control token: CUTOVER_PROXY_TOKEN (proxies on other hosts, as the runner reads it), else the state directory's. */
function proxyToken(store: StateStore): string {
  return process.env.CUTOVER_PROXY_TOKEN ?? controlToken(store.proxyTokenPath, true);
}

/** source.index as a concrete index: an alias must point at exactly one. */
async function concreteSource(spec: LoadedSpec): Promise<string> {
  const cluster = new Cluster(clusterConfig(spec.source.cluster, 'source.cluster'));
  try {
    const viaAlias = Object.keys(await cluster.getAlias(spec.source.index));
    if (viaAlias.length > 1)
      throw new SpecError(
        `source.index: alias "${spec.source.index}" points at ${viaAlias.length} indices (${viaAlias.join(', ')}); the proxy protects one index`,
      );
    if (viaAlias.length === 1) return viaAlias[0]!;
    if (await cluster.indexExists(spec.source.index)) return spec.source.index;
    throw new SpecError(
      `source.index: no index or alias named "${spec.source.index}" on ${cluster.displayUrl}`,
    );
  } finally {
    await cluster.close();
  }
}

export async function openProxy(spec: LoadedSpec, opts: OpenProxyOptions = {}): Promise<RunningProxy> {
  const log = opts.log ?? (() => {});
  const listen = opts.listen ?? spec.proxy.listen;
  const id = opts.id ?? defaultProxyId(listen);
  const store = new StateStore(spec.migrationDir);
  const switchStatePath = switchStatePathOf(store.journalPath);
  if (spec.capture.strategy !== 'proxy')
    log(
      `capture.strategy is ${spec.capture.strategy}, not proxy: the runner will not read this proxy's journal`,
      {},
    );
  const sourceIndex = readSwitch(switchStatePath)?.sourceIndex ?? (await concreteSource(spec));
  const names = [spec.source.index, spec.aliases?.write, ...(spec.aliases?.read ?? [])].filter(
    (n): n is string => typeof n === 'string',
  );
  const common = {
    // The application's own credentials go through; the proxy holds none (unless proxy.targetAuth maps them).
    upstream: { url: spec.source.cluster.url, tls: spec.source.cluster.tls },
    moveTo: moveTo(spec),
    listen,
    control: opts.control ?? spec.proxy.control,
    migrated: { sourceIndex, names },
    holdBudgetDefaultMs: spec.cutover.holdBudgetMs,
    // The fence lives inside a hold, and its guard lifts it at the latest 2 s after its budget.
    blockRetryMs: spec.cutover.holdBudgetMs + 5_000,
    concreteNames: spec.proxy.concreteNames,
    tls: spec.proxy.tls,
    log,
    switchStatePath,
  };

  if (spec.proxy.journal.kind === 'nats') {
    if (!opts.id && parseHostPort(listen, 'proxy.listen').port === 0)
      log(
        'listening on any free port: this proxy is named by its pid, so if it crashes, the proxy started after it cannot tell the runner that a write may be missing from the journal; give it a fixed port',
        {},
      );
    const nats = await natsJournal(spec, id);
    const token = proxyToken(store);
    try {
      const running = await startProxy({
        ...common,
        id,
        journal: nats.writer,
        journalKind: 'nats',
        journalLabel:
          nats.label ?? `nats stream ${spec.proxy.journal.stream ?? `(derived from ${spec.name})`}`,
        token,
        register: nats.register,
      });
      void running.closed.finally(() => nats.close());
      return running;
    } catch (e) {
      await nats.close();
      throw e;
    }
  }

  const lock: Lock = acquireLock(store.proxyLockPath, 'proxy');
  if (lock.tookOver) log(lock.tookOver.message, {});
  let journal: FileJournalWriter | undefined;
  try {
    journal = await FileJournalWriter.open(store.journalPath, id);
    if (journal.crashedBefore)
      log('the previous proxy stopped without closing its journal: a reconcile marker was journaled', {});
    const running = await startProxy({
      ...common,
      id,
      journal,
      journalKind: 'file',
      journalLabel: store.journalPath,
      token: proxyToken(store),
      register: async (info) => writeProxyInfo(store.proxyInfoPath, info),
    });
    void running.closed.finally(() => lock.release());
    return running;
  } catch (e) {
    await journal?.close();
    lock.release();
    throw e;
  }
}

/** The target cluster the application moves to at the switch, when it is another cluster (proxy.moveApplication). */
function moveTo(spec: LoadedSpec): ProxyOptions['moveTo'] {
  const t = spec.target.cluster;
  if (!t || !spec.proxy.moveApplication) return undefined;
  const auth = spec.proxy.targetAuth;
  const mapped =
    auth === 'forward'
      ? undefined
      : authorizationOf(clusterConfig({ url: t.url, auth }, 'proxy.targetAuth').auth)?.header;
  return { url: t.url, tls: t.tls, ...(mapped ? { authorization: mapped } : {}) };
}
