import { isRoot } from './distributions.js';
import { type RunAs, run } from './proc.js';

export const SERVER_USER = 'cutover-es';

let pending: Promise<RunAs | undefined> | undefined;

/**
 * Elasticsearch and OpenSearch refuse to run as root. When we are root, return (creating it once)
 * an unprivileged system user to run them as; otherwise undefined: run as ourselves.
 */
export function ensureServerUser(): Promise<RunAs | undefined> {
  if (!isRoot()) return Promise.resolve(undefined);
  pending ??= createUser().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

async function createUser(): Promise<RunAs> {
  const existing = await lookup();
  if (existing) return existing;
  const res = await run('useradd', [
    '--system',
    '--no-create-home',
    '--shell',
    '/usr/sbin/nologin',
    SERVER_USER,
  ]);
  // A concurrent process may have created it between our lookup and useradd (exit 9: name in use).
  const created = await lookup();
  if (created) return created;
  throw new Error(`useradd ${SERVER_USER} failed (exit ${res.code}): ${res.stderr.trim()}`);
}

async function lookup(): Promise<RunAs | undefined> {
  const uid = await run('id', ['-u', SERVER_USER]);
  const gid = await run('id', ['-g', SERVER_USER]);
  if (uid.code !== 0 || gid.code !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
