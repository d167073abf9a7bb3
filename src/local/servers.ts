import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import {
  type Distribution,
  javaHomeOf,
  KINDS,
  runBaseDir,
  SERVER_KINDS,
  SERVER_VERSIONS,
  type ServerKind,
  versionOf,
} from './distributions.js';
import { ensureServer } from './fetch.js';
import { freePort, releasePort } from './ports.js';
import { Probe } from './probe.js';
import { type RunAs, runChecked } from './proc.js';
import { generateNodeCerts } from './tls.js';
import { ensureServerUser } from './user.js';

export type { Distribution, ServerKind };
export { ensureServer, SERVER_KINDS, SERVER_VERSIONS };

export interface StartOptions {
  kind: ServerKind;
  /** Elasticsearch only: X-Pack security with basic auth as `elastic`, password set through the keystore. */
  security?: boolean;
  /** With security: HTTPS with a throwaway CA made by openssl. */
  tls?: boolean;
  /** Default 512. */
  heapMb?: number;
  /** Cluster name; a random one by default. */
  name?: string;
  /** Receives every line the server prints. */
  log?: (line: string) => void;
  /** How long to wait for green health. Default 180 s. */
  readyTimeoutMs?: number;
  /** Extra node settings (e.g. search.keep_alive_interval for tests of expired contexts). */
  settings?: Record<string, unknown>;
}

export interface LocalCluster {
  kind: ServerKind;
  distribution: Distribution;
  /** As reported by the running server. */
  version: string;
  url: string;
  username?: string;
  password?: string;
  caFile?: string;
  /** Lowercase hex SHA-256 of the CA certificate's DER encoding. */
  caFingerprint?: string;
  /** With security: a service account token (file based, elastic/fleet-server) for bearer auth. */
  bearer?: string;
  /**
   * With security: a file-realm user limited to `limited-*` indices and cluster monitor. The integ-test zip
   * cannot create the .security index (its mapping needs analysis-common), so native users and API keys are
   * unavailable; file-realm users and service tokens need no index.
   */
  limitedUser?: { username: string; password: string; indexPattern: string };
  /** Pid of the server JVM itself (not of the launcher script), e.g. for SIGSTOP tests. */
  pid: number;
  homeDir: string;
  dataDir: string;
  /** Everything the server printed on stdout/stderr. */
  logFile: string;
  /** SIGTERM, then SIGKILL after 20 s, then removes the cluster's data, logs and config. */
  stop(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 20_000;
const START_ATTEMPTS = 3;

interface Running {
  pgid: number;
  runDir: string;
  killSync(): void;
  stop(): Promise<void>;
}

const live = new Set<Running>();

class PortInUseError extends Error {}

export async function startLocalCluster(opts: StartOptions): Promise<LocalCluster> {
  const info = KINDS[opts.kind];
  if (!info) throw new Error(`unknown server kind ${String(opts.kind)}`);
  if (opts.security && info.distribution !== 'elasticsearch') {
    throw new Error(
      `security is only supported for Elasticsearch kinds; the ${opts.kind} integ-test zip has no security plugin`,
    );
  }
  if (opts.tls && !opts.security) throw new Error('tls requires security');
  const homeDir = await ensureServer(opts.kind);
  const runAs = await ensureServerUser();
  installCleanupHandlers();
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptStart(opts, homeDir, runAs);
    } catch (err) {
      // Free ports are picked before the server binds them, so another process can take one in between.
      if (err instanceof PortInUseError && attempt < START_ATTEMPTS) {
        opts.log?.(`[cutover] port taken while ${opts.kind} was booting; retrying with new ports`);
        continue;
      }
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`${opts.kind} ${versionOf(opts.kind)} did not start: ${msg}`, { cause: err });
    }
  }
}

async function attemptStart(
  opts: StartOptions,
  homeDir: string,
  runAs: RunAs | undefined,
): Promise<LocalCluster> {
  const { kind } = opts;
  const info = KINDS[kind];
  const version = versionOf(kind);
  const javaHome = javaHomeOf(kind);
  const clusterName = sanitize(opts.name ?? `cutover-${kind}-${randomBytes(3).toString('hex')}`);
  const nodeName = `${clusterName}-node`;

  const runBase = runBaseDir();
  await mkdir(runBase, { recursive: true });
  await chmod(runBase, 0o755);
  const runDir = await mkdtemp(path.join(runBase, `${clusterName}-`));
  const confDir = path.join(runDir, 'config');
  const dataDir = path.join(runDir, 'data');
  const logsDir = path.join(runDir, 'logs');
  const tmpDir = path.join(runDir, 'tmp');
  const logFile = path.join(logsDir, 'console.log');
  const ports: number[] = [];

  let running: Running | undefined;
  const cleanupFailedStart = async () => {
    if (running) await running.stop();
    else await rm(runDir, { recursive: true, force: true });
    for (const p of ports) releasePort(p);
  };

  try {
    await cp(path.join(homeDir, 'config'), confDir, { recursive: true });
    await Promise.all(
      [dataDir, logsDir, tmpDir, path.join(confDir, 'jvm.options.d')].map((d) =>
        mkdir(d, { recursive: true }),
      ),
    );
    await writeJvmOptions(confDir, logsDir);

    const httpPort = await freePort();
    const transportPort = await freePort();
    ports.push(httpPort, transportPort);

    const settings: Record<string, unknown> = {
      'cluster.name': clusterName,
      'node.name': nodeName,
      'network.host': '127.0.0.1',
      'http.port': httpPort,
      'transport.port': transportPort,
      'discovery.type': 'single-node',
      'path.data': dataDir,
      'path.logs': logsDir,
      // Dev disks are often >90 % full; the watermarks would make indices read-only mid-test.
      'cluster.routing.allocation.disk.threshold_enabled': false,
      // A whole test run leaves hundreds of small indices on one node; the default 1,000 shards run out.
      'cluster.max_shards_per_node': 5000,
    };
    // The geoip downloader phones home; the setting exists only where the module ships (ES 7.14+).
    if (info.distribution === 'elasticsearch' && existsSync(path.join(homeDir, 'modules', 'ingest-geoip'))) {
      settings['ingest.geoip.downloader.enabled'] = false;
    }
    // Reindex from remote reads another local test server: every node with the module allows loopback sources.
    if (info.distribution === 'opensearch') settings['reindex.remote.allowlist'] = '127.0.0.1:*';
    else if (existsSync(path.join(homeDir, 'modules', 'reindex')))
      settings['reindex.remote.whitelist'] = '127.0.0.1:*';
    Object.assign(settings, opts.settings ?? {});

    const env = serverEnv(info.envPrefix, { javaHome, confDir, tmpDir, runDir, heapMb: opts.heapMb ?? 512 });
    let username: string | undefined;
    let password: string | undefined;
    let caFile: string | undefined;
    let caFingerprint: string | undefined;
    let bearer: string | undefined;
    let limitedUser: LocalCluster['limitedUser'];
    if (info.distribution === 'elasticsearch') {
      settings['xpack.security.enabled'] = !!opts.security;
      if (opts.security) {
        settings['xpack.license.self_generated.type'] = 'basic';
        // single-node discovery lets security run without transport TLS; nothing else joins.
        settings['xpack.security.transport.ssl.enabled'] = false;
        settings['xpack.security.http.ssl.enabled'] = !!opts.tls;
        username = 'elastic';
        password = randomBytes(18).toString('base64url');
        await createKeystore(homeDir, env, password);
        bearer = await createServiceToken(homeDir, env);
        limitedUser = await createLimitedUser(homeDir, env, confDir);
        if (opts.tls) {
          // ES only reads key material from inside its config dir.
          const certs = await generateNodeCerts(path.join(confDir, 'certs'));
          settings['xpack.security.http.ssl.key'] = certs.keyFile;
          settings['xpack.security.http.ssl.certificate'] = certs.certFile;
          settings['xpack.security.http.ssl.certificate_authorities'] = [certs.caFile];
          caFile = certs.caFile;
          caFingerprint = certs.caFingerprint;
        }
      }
    }
    await writeFile(path.join(confDir, `${info.distribution}.yml`), stringify(settings));
    if (runAs) await runChecked('chown', ['-R', `${runAs.uid}:${runAs.gid}`, runDir]);

    const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${httpPort}`;
    const out = createWriteStream(logFile, { flags: 'a' });
    const spawned = spawn(path.join(homeDir, 'bin', info.distribution), [], {
      cwd: homeDir,
      env,
      // Own process group: bin/elasticsearch is a shell/CLI wrapper around the server JVM, and
      // killing the group is the only way to be sure no JVM survives us.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      uid: runAs?.uid,
      gid: runAs?.gid,
    });
    if (spawned.pid === undefined) {
      await new Promise((resolve) => spawned.once('error', resolve));
      throw new Error(`could not spawn ${path.join(homeDir, 'bin', info.distribution)}`);
    }
    const pgid = spawned.pid;
    pipeLines(spawned, out, opts.log);
    spawned.once('close', () => out.end());
    const exited = new Promise<number | string>((resolve) => {
      spawned.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    running = track(pgid, runDir, exited, ports);

    const probe = new Probe({ url, username, password, caFile });
    try {
      const deadline = Date.now() + (opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
      const node = await waitReady(probe, nodeName, deadline, exited, () =>
        tail(logFile, path.join(logsDir, `${clusterName}.log`)),
      );
      return {
        kind,
        distribution: info.distribution,
        version: node.version || version,
        url,
        username,
        password,
        caFile,
        caFingerprint,
        bearer,
        limitedUser,
        pid: node.pid,
        homeDir,
        dataDir,
        logFile,
        stop: running.stop,
      };
    } finally {
      await probe.close();
    }
  } catch (err) {
    await cleanupFailedStart();
    throw err;
  }
}

interface ReadyNode {
  version: string;
  pid: number;
}

async function waitReady(
  probe: Probe,
  nodeName: string,
  deadline: number,
  exited: Promise<number | string>,
  logTail: () => string,
): Promise<ReadyNode> {
  let exitStatus: number | string | undefined;
  void exited.then((s) => {
    exitStatus = s;
  });
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (exitStatus !== undefined) {
      // Give the pipes a moment to flush the final lines into the log.
      await sleep(200);
      const logText = logTail();
      const msg = `server exited (${exitStatus}) before becoming ready; last log lines:\n${logText}`;
      if (/BindTransportException|BindHttpException|Address already in use|Failed to bind/i.test(logText)) {
        throw new PortInUseError(msg);
      }
      throw new Error(msg);
    }
    try {
      const health = await probe.get('/_cluster/health?wait_for_status=green&timeout=1s');
      const status = (health.body as { status?: string } | undefined)?.status;
      if (health.status === 200 && status === 'green') {
        const node = await localNode(probe);
        // Anything else answering on "our" port means another process grabbed it first; ours will
        // fail to bind and exit, which the loop turns into a retry.
        if (node.name === nodeName) return node;
        last = `port answered by foreign node ${node.name}`;
      } else {
        last = `health: HTTP ${health.status} ${status ?? JSON.stringify(health.body).slice(0, 200)}`;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await Promise.race([sleep(500), exited]);
  }
  throw new Error(`not ready before timeout (last check: ${last}); last log lines:\n${logTail()}`);
}

async function localNode(probe: Probe): Promise<ReadyNode & { name: string }> {
  const res = await probe.get('/_nodes/_local/process');
  const nodes = (
    res.body as { nodes?: Record<string, { name: string; version: string; process?: { id?: number } }> }
  ).nodes;
  const node = nodes ? Object.values(nodes)[0] : undefined;
  if (res.status !== 200 || !node) throw new Error(`_nodes/_local: HTTP ${res.status}`);
  // GET / is the canonical version source, but ES 8+ integ-test zips lack the rest-root module,
  // so nodes info (same version string) is the fallback.
  let version = node.version;
  try {
    const root = await probe.get('/');
    const v = (root.body as { version?: { number?: string } }).version?.number;
    if (root.status === 200 && v) version = v;
  } catch {
    // Keep the nodes-info version.
  }
  return { name: node.name, version, pid: node.process?.id ?? 0 };
}

function track(pgid: number, runDir: string, exited: Promise<number | string>, ports: number[]): Running {
  let stopping: Promise<void> | undefined;
  const reaper = startReaper(pgid, runDir);
  const running: Running = {
    pgid,
    runDir,
    killSync() {
      reaper?.kill('SIGKILL');
      signalGroup(pgid, 'SIGKILL');
      try {
        rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // Best effort while the process is going down.
      }
      live.delete(running);
    },
    stop() {
      stopping ??= (async () => {
        signalGroup(pgid, 'SIGTERM');
        if (!(await groupGone(pgid, STOP_GRACE_MS))) {
          signalGroup(pgid, 'SIGKILL');
          await groupGone(pgid, 10_000);
          await Promise.race([exited, sleep(1000)]);
        }
        reaper?.kill('SIGKILL');
        await rm(runDir, { recursive: true, force: true, maxRetries: 5 });
        for (const p of ports) releasePort(p);
        live.delete(running);
      })();
      return stopping;
    },
  };
  live.add(running);
  return running;
}

/**
 * Exit handlers cannot run when we are SIGKILLed (an OOM kill, a runner's hard timeout). A tiny
 * detached shell watches our pid and takes the server group down with us in that case.
 */
function startReaper(pgid: number, runDir: string): ChildProcess | undefined {
  const script =
    'while kill -0 "$1" 2>/dev/null; do sleep 2; done; kill -KILL "-$2" 2>/dev/null; sleep 1; rm -rf -- "$3"';
  try {
    const reaper = spawn('sh', ['-c', script, 'cutover-reaper', String(process.pid), String(pgid), runDir], {
      detached: true,
      stdio: 'ignore',
    });
    reaper.on('error', () => {
      // Without a reaper only a SIGKILL of this process could orphan the server; not worth failing for.
    });
    reaper.unref();
    return reaper;
  } catch {
    return undefined;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

/** True once no process is left in the group (Node reaps the leader, so no zombie lingers). */
async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await sleep(100);
  }
  return false;
}

/** Stops every cluster this process started. */
export async function stopAllClusters(): Promise<void> {
  await Promise.allSettled([...live].map((r) => r.stop()));
}

let handlersInstalled = false;

function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const killAllSync = () => {
    for (const r of [...live]) r.killSync();
  };
  process.on('exit', killAllSync);
  // Monitor, not a handler: Node still crashes as usual, but no JVM outlives it.
  process.on('uncaughtExceptionMonitor', killAllSync);
  let signalled = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      const code = 128 + (os.constants.signals[sig] ?? 1);
      if (signalled) {
        // Second Ctrl-C: stop waiting for graceful shutdown.
        killAllSync();
        process.exit(code);
      }
      signalled = true;
      void stopAllClusters().finally(() => process.exit(code));
    });
  }
}

function serverEnv(
  prefix: 'ES' | 'OPENSEARCH',
  o: { javaHome: string; confDir: string; tmpDir: string; runDir: string; heapMb: number },
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // The launchers warn about or misuse these; the server gets only what we set below.
  const drop = /^(JAVA_HOME|JAVA_OPTS|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS|ES_.*|OPENSEARCH_.*)$/;
  for (const [k, v] of Object.entries(process.env)) if (!drop.test(k)) env[k] = v;
  env.HOME = o.runDir;
  env[`${prefix}_JAVA_HOME`] = o.javaHome;
  env[`${prefix}_PATH_CONF`] = o.confDir;
  env[`${prefix}_TMPDIR`] = o.tmpDir;
  env[`${prefix}_JAVA_OPTS`] = `-Xms${o.heapMb}m -Xmx${o.heapMb}m`;
  return env;
}

/**
 * The distribution's jvm.options with relative paths (resolved against the shared home, since the
 * launchers cd there) and per-run noise removed: heap size comes from *_JAVA_OPTS, GC logs and heap
 * dumps would pile up in the shared home.
 */
async function writeJvmOptions(confDir: string, logsDir: string): Promise<void> {
  const file = path.join(confDir, 'jvm.options');
  const dropped =
    /^(\d+(-\d*)?:)?-(Xms|Xmx|Xlog:gc|Xloggc|XX:\+?-?(PrintGC|PrintTenuring|UseGCLogFileRotation|NumberOfGCLogFiles|GCLogFileSize|HeapDumpOnOutOfMemoryError|HeapDumpPath|ErrorFile))/;
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => !dropped.test(l.trim()));
  lines.push(`-XX:ErrorFile=${path.join(logsDir, 'hs_err_pid%p.log')}`, '');
  await writeFile(file, lines.join('\n'));
}

async function createKeystore(homeDir: string, env: NodeJS.ProcessEnv, password: string): Promise<void> {
  const tool = path.join(homeDir, 'bin', 'elasticsearch-keystore');
  // Keystore tools need no big heap and must not inherit the server's.
  const toolEnv = { ...env, ES_JAVA_OPTS: '-Xms64m -Xmx256m' };
  await runChecked(tool, ['create'], { env: toolEnv, timeoutMs: 120_000 });
  // Through stdin so the password never appears in a process listing.
  await runChecked(tool, ['add', '-x', 'bootstrap.password'], {
    env: toolEnv,
    input: password,
    timeoutMs: 120_000,
  });
}

async function createServiceToken(homeDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const tool = path.join(homeDir, 'bin', 'elasticsearch-service-tokens');
  const r = await runChecked(tool, ['create', 'elastic/fleet-server', 'cutover-test'], {
    env: { ...env, ES_JAVA_OPTS: '-Xms64m -Xmx256m' },
    timeoutMs: 120_000,
  });
  const token = /=\s*(\S+)\s*$/m.exec(r.stdout)?.[1];
  if (!token) throw new Error('elasticsearch-service-tokens printed no token');
  return token;
}

async function createLimitedUser(
  homeDir: string,
  env: NodeJS.ProcessEnv,
  confDir: string,
): Promise<LocalCluster['limitedUser']> {
  const indexPattern = 'limited-*';
  const role = `cutover_limited:\n  cluster: [monitor]\n  indices:\n    - names: ['${indexPattern}']\n      privileges: [all]\n`;
  await writeFile(path.join(confDir, 'roles.yml'), role, { flag: 'a' });
  const username = 'limited';
  const password = `Lim-${randomBytes(12).toString('base64url')}`;
  await runChecked(
    path.join(homeDir, 'bin', 'elasticsearch-users'),
    ['useradd', username, '-p', password, '-r', 'cutover_limited'],
    {
      env: { ...env, ES_JAVA_OPTS: '-Xms64m -Xmx256m' },
      timeoutMs: 120_000,
    },
  );
  return { username, password, indexPattern };
}

function pipeLines(child: ChildProcess, out: NodeJS.WritableStream, log?: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      out.write(chunk);
      if (!log) return;
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) log(line);
    });
    stream.on('end', () => {
      if (log && partial) log(partial);
    });
  }
}

/** Last lines of the console log, or of the server's own log when the console has little. */
function tail(consoleLog: string, serverLog: string, lines = 40): string {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  let text = read(consoleLog);
  if (text.split('\n').length < 5) text += read(serverLog);
  return text.trimEnd().split('\n').slice(-lines).join('\n') || '(log is empty)';
}

function sanitize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '-');
}
