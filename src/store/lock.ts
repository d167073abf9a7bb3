/**
 * One live process per migration. The lock file names its owner; a lock whose owner is dead is stale and
 * is taken over only when the operator says so, because "dead" is judged from this host only.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { CutoverError, EXIT } from './errors.js';

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

export class LockError extends CutoverError {
  override readonly name = 'LockError';
  readonly exitCode = EXIT.locked;
  constructor(
    message: string,
    readonly owner: LockOwner | undefined,
    readonly stale: boolean,
  ) {
    super(message);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Who holds (or held, when stale) the lock; undefined when there is none. */
export function lockOwner(path: string): LockOwner | undefined {
  return readOwner(path);
}

/** The lock is held by a process alive on this host (not a stale file). */
export function heldByLiveProcess(path: string): boolean {
  const owner = readOwner(path);
  return !!owner && owner.host === hostname() && alive(owner.pid);
}

export interface Lock {
  release(): void;
}

export function acquireLock(path: string, command: string, opts: { takeOverStale?: boolean } = {}): Lock {
  mkdirSync(dirname(path), { recursive: true });
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return {
        release() {
          const owner = readOwner(path);
          if (owner?.pid === me.pid && owner.host === me.host) unlinkSync(path);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = readOwner(path);
    const sameHost = owner?.host === me.host;
    const stale = owner !== undefined && sameHost && !alive(owner.pid);
    if (owner && !stale) {
      const where = sameHost ? `pid ${owner.pid}` : `pid ${owner.pid} on host ${owner.host}`;
      throw new LockError(
        `migration is locked by a running "${owner.command}" (${where}, since ${owner.startedAt}); wait for it or stop it first`,
        owner,
        false,
      );
    }
    if (!opts.takeOverStale) {
      throw new LockError(
        `migration lock ${path} is stale (its owner${owner ? ` pid ${owner.pid}` : ''} is gone); rerun with --take-over-lock to continue`,
        owner,
        true,
      );
    }
    unlinkSync(path);
  }
  throw new LockError(`could not take the lock ${path}`, undefined, false);
}
