/**
 * Watching and steering a running command: its status server (metrics, status, dashboard, control) and the flag
 * files, set up around a migration's run or a proxy. Everything is torn down by the returned close(); a command
 * started with `--listen off` and no flag file runs exactly as without any of this.
 */
import { watchFlagFiles } from '../ops/flag-files.js';
import type { Reporter } from '../ops/reporter.js';
import { StatusBoard } from '../ops/status-board.js';
import { callStatusServer } from '../ops/status-client.js';
import { type StatusRole, startStatusServer } from '../ops/status-server.js';
import type { ProxyStatus } from '../proxy/control.js';
import type { Migration } from './migration.js';
import { migrationFigures, proxyFigures } from './status-figures.js';

export interface WatchOptions {
  /** HOST:PORT, 'off', or undefined for the default (loopback, port 9252 or any free one) */
  listen?: string;
  throttleFlag?: string;
  panicFlag?: string;
  /** stop the command as Ctrl-C does (abort its signal) */
  panic: (why: string) => void;
}

export interface Watch {
  /** the reporter to run with: the given one, with the status board listening beside it */
  reporter: Reporter;
  /** where the status server listens (undefined: --listen off) */
  url?: string;
  /** the default port was taken: another one was chosen */
  fellBack: boolean;
  close(): Promise<void>;
}

/** Around `run` / `cutover`: the copy can be paused, paced, postponed and stopped. */
export async function watchMigration(
  m: Migration,
  command: 'run' | 'cutover',
  reporter: Reporter,
  o: WatchOptions,
): Promise<Watch> {
  const steering = {
    throttle: m.throttle,
    postponeFlag: m.spec.postponeFlagPath,
    panic: o.panic,
    audit: m.audit,
    command,
  };
  const board = new StatusBoard({
    command,
    figures: () => migrationFigures(m, m.spec.capture.strategy),
    audit: m.audit,
    throttle: m.throttle,
    watchdog: m.watchdog,
    postponeFlag: m.spec.postponeFlagPath,
  });
  const stopFlags = watchFlagFiles({ throttleFlag: o.throttleFlag, panicFlag: o.panicFlag }, steering, () =>
    board.changed(),
  );
  const server =
    o.listen === 'off'
      ? undefined
      : await startStatusServer({ listen: o.listen, role: 'run', store: m.store, board, steering }).catch(
          (e: unknown) => {
            stopFlags();
            board.close();
            throw e;
          },
        );
  return {
    reporter: board.wrap(reporter),
    url: server?.url,
    fellBack: server?.fellBack ?? false,
    async close() {
      stopFlags();
      await server?.close();
      board.close();
    },
  };
}

/** Around `cutover proxy`: status and metrics, and the switch can be postponed; the proxy copies nothing. */
export async function watchProxy(
  m: Migration,
  status: () => ProxyStatus,
  o: { listen?: string },
): Promise<Omit<Watch, 'reporter'>> {
  const steering = { postponeFlag: m.spec.postponeFlagPath, audit: m.audit, command: 'proxy' };
  const board = new StatusBoard({
    command: 'proxy',
    figures: () => proxyFigures(m, m.spec.capture.strategy, status()),
    audit: m.audit,
    postponeFlag: m.spec.postponeFlagPath,
  });
  const server =
    o.listen === 'off'
      ? undefined
      : await startStatusServer({ listen: o.listen, role: 'proxy', store: m.store, board, steering }).catch(
          (e: unknown) => {
            board.close();
            throw e;
          },
        );
  return {
    url: server?.url,
    fellBack: server?.fellBack ?? false,
    async close() {
      await server?.close();
      board.close();
    },
  };
}

/** `cutover ctl`: one action (or `status`) on the status server of the migration's running command. */
export function control(
  m: Migration,
  role: StatusRole,
  action: string,
  value?: string,
): Promise<Record<string, unknown>> {
  return callStatusServer(m.store, role, action, value);
}
