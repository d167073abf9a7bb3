/**
 * `cutover proxy <spec>` as its own process, as an operator runs it, so its memory and CPU are measured apart from
 * the load generator, the runner and the server: peak RSS is the kernel's high-water mark (/proc/<pid>/status
 * VmHWM) and CPU is utime + stime (/proc/<pid>/stat), both read while the process is still alive.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSecondsOf } from './lib.js';

export interface ProxyUsage {
  /** VmHWM, MB */
  peakRssMb: number | null;
  /** VmRSS now, MB */
  rssMb: number | null;
  cpuSeconds: number | null;
}

export interface ProxyChild {
  pid: number;
  /** http://host:port the application talks to */
  url: string;
  usage(): ProxyUsage;
  /** open file descriptors (sockets included), or null */
  fds(): number | null;
  /** the proxy's log lines (method, index, status, ms: never a body or a header value) */
  output(): string;
  /** usage read just before SIGTERM, then the exit code */
  stop(): Promise<{ usage: ProxyUsage; code: number | null }>;
}

function statusKb(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const mb = (kb: number | null) => (kb === null ? null : Math.round(kb / 102.4) / 10);

export async function startProxyProcess(o: {
  cli: string;
  specFile: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}): Promise<ProxyChild> {
  // BENCH_PROXY_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": a profile of the proxy under the load.
  const nodeArgs = (process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, o.cli, '--json', 'proxy', o.specFile, '--listen', '127.0.0.1:0'],
    { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let stdout = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.length > 2_000_000) out = out.slice(-500_000);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`cutover proxy not ready after ${o.readyTimeoutMs ?? 30_000} ms: ${out.slice(-1500)}`),
        ),
      o.readyTimeoutMs ?? 30_000,
    );
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const j = JSON.parse(line) as { event?: string; listen?: string };
          if (j.event === 'ready' && j.listen) {
            clearTimeout(timer);
            resolve(j.listen);
          }
        } catch {
          // a partial line
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`cutover proxy exited (${code}) before it was ready: ${out.slice(-1500)}`));
    });
  });
  const pid = child.pid!;
  const usage = (): ProxyUsage => ({
    peakRssMb: mb(statusKb(pid, 'VmHWM')),
    rssMb: mb(statusKb(pid, 'VmRSS')),
    cpuSeconds: cpuSecondsOf(pid),
  });
  return {
    pid,
    url,
    usage,
    fds() {
      try {
        return readdirSync(`/proc/${pid}/fd`).length;
      } catch {
        return null;
      }
    },
    output: () => out,
    async stop() {
      const u = usage();
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(killer);
      return { usage: u, code };
    },
  };
}
