/**
 * The write proxy as an operator runs it: `cutover proxy <spec>` in its own process, on a free port. Tests point
 * their application writers at the address it prints, and may kill it with SIGKILL and start it again.
 */
import type { ChildProcess } from 'node:child_process';
import { Cluster } from '../../src/cluster/client.js';
import { startCli } from './cli.js';

export interface ProxyProcess {
  child: ChildProcess;
  /** http://host:port the application uses */
  url: string;
  output(): string;
  /** SIGTERM and wait: a clean stop (the journal records it) */
  stop(): Promise<number | null>;
  /** SIGKILL and wait */
  kill(): Promise<void>;
}

export async function startProxy(
  specPath: string,
  listen = '127.0.0.1:0',
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  const p = startCli(['proxy', specPath, '--listen', listen], env);
  let out = '';
  p.child.stdout!.on('data', (d) => {
    out += d;
  });
  p.child.stderr!.on('data', (d) => {
    out += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /proxy listening on (https?:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    p.child.stdout!.on('data', check);
    p.child.stderr!.on('data', check);
    p.done.then((r) =>
      reject(new Error(`cutover proxy exited (${r.code ?? r.signal}) before listening: ${out.slice(-1500)}`)),
    );
  });
  const exited = p.done;
  return {
    child: p.child,
    url,
    output: () => out,
    async stop() {
      p.child.kill('SIGTERM');
      return (await exited).code;
    },
    async kill() {
      p.child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A Cluster that talks to the proxy: what the application gets by changing its cluster URL. */
export function viaProxy(url: string, auth?: { username: string; password: string }): Cluster {
  return new Cluster({ url, auth, requestTimeoutMs: 120_000 });
}
