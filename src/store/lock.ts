/**
 * One live process per migration. The lock file names its owner. A lock whose owner is gone from this host
 * is stale and taken over at once (a kill -9 must not need a human to resume); whether the owner of a lock
 * written on another host still runs cannot be judged from here, so that one is taken over only when the
 * operator says so (--take-over-lock).
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

/** Whether a process of this host with this pid exists (EPERM: it does, owned by someone else). */
export function alive(pid: number): boolean {
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

const sameOwner = (a: LockOwner | undefined, b: LockOwner | undefined) =>
  a?.pid === b?.pid && a?.host === b?.host && a?.startedAt === b?.startedAt;

/** The lock is held by a process alive on this host (not a stale file). */
export function heldByLiveProcess(path: string): boolean {
  const owner = readOwner(path);
  return !!owner && owner.host === hostname() && alive(owner.pid);
}

export interface Lock {
  release(): void;
  /** set when a stale lock was replaced: whose it was, and a line for the operator */
  tookOver?: { owner: LockOwner | undefined; message: string };
}

export function acquireLock(path: string, command: string, opts: { takeOverStale?: boolean } = {}): Lock {
  mkdirSync(dirname(path), { recursive: true });
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command };
  let tookOver: Lock['tookOver'];
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return {
        tookOver,
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
    if (owner && sameHost && alive(owner.pid)) {
      throw new LockError(
        `migration is locked by a running "${owner.command}" (pid ${owner.pid}, since ${owner.startedAt}); wait for it or stop it first`,
        owner,
        false,
      );
    }
    if (owner && sameHost) {
      tookOver = {
        owner,
        message: `took over the lock of pid ${owner.pid} (gone), left by "${owner.command}" started ${owner.startedAt}`,
      };
    } else if (opts.takeOverStale) {
      tookOver = {
        owner,
        message: owner
          ? `took over the lock of pid ${owner.pid} on host ${owner.host} (--take-over-lock), left by "${owner.command}" started ${owner.startedAt}`
          : `took over the unreadable lock ${path} (--take-over-lock)`,
      };
    } else if (owner) {
      throw new LockError(
        `migration is locked by "${owner.command}" (pid ${owner.pid} on host ${owner.host}, since ${owner.startedAt}); this host cannot tell whether it still runs: stop it there, or if that process is gone, rerun with --take-over-lock`,
        owner,
        true,
      );
    } else {
      // Unreadable: possibly a process that has created the file and not yet written its name into it.
      throw new LockError(
        `migration lock ${path} cannot be read; if no other cutover process runs for this migration, rerun with --take-over-lock`,
        undefined,
        true,
      );
    }
    // Another process may have replaced the stale lock since it was read: never remove a lock not the one judged.
    if (!sameOwner(readOwner(path), owner)) continue;
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new LockError(
    `could not take the lock ${path}: another process took it first; rerun`,
    undefined,
    false,
  );
}
