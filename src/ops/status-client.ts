/**
 * `cutover ctl`'s side: find the status server a running command registered in the state directory, and call it
 * with the control token from the same directory. No server registered, or its process gone: a clear error, never
 * a guess at another address.
 */
import { hostname } from 'node:os';
import { request } from 'undici';
import { readJson } from '../store/atomic-file.js';
import { CutoverError, EXIT } from '../store/errors.js';
import { readToken } from '../store/secret-token.js';
import type { StateStore } from '../store/state.js';
import type { StatusInfo, StatusRole } from './status-server.js';

/** No running command to talk to (exit 2: nothing was changed). */
export class NoStatusServer extends CutoverError {
  override readonly name = 'NoStatusServer';
  readonly exitCode = EXIT.badInput;
}

/** The status server refused or failed the request (400, 401, 409, 5xx). */
export class ControlFailed extends CutoverError {
  override readonly name = 'ControlFailed';
  readonly exitCode = EXIT.badInput;
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function alive(info: StatusInfo): boolean {
  if (info.host !== hostname()) return true;
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function findStatusServer(store: StateStore, role: StatusRole): StatusInfo {
  const info = readJson<StatusInfo>(store.statusInfoPath(role));
  const what = role === 'run' ? '`cutover run` (or `cutover cutover`)' : '`cutover proxy`';
  if (!info || !alive(info))
    throw new NoStatusServer(
      `no ${what} is running with a status server for this migration (nothing registered in ${store.statusInfoPath(role)}${info ? `; pid ${info.pid} is gone` : ''}); start it, without --listen off`,
    );
  return info;
}

/** GET /api/status, or POST /api/control/<action> with {value}. */
export async function callStatusServer(
  store: StateStore,
  role: StatusRole,
  action: string,
  value?: string,
): Promise<Record<string, unknown>> {
  const info = findStatusServer(store, role);
  const token = readToken(store.statusTokenPath);
  if (!token)
    throw new NoStatusServer(
      `no control token at ${store.statusTokenPath}: is this the migration's state directory?`,
    );
  const status = action === 'status';
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(
      `${info.url}${status ? '/api/status' : `/api/control/${encodeURIComponent(action)}`}`,
      {
        method: status ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: status ? undefined : JSON.stringify(value === undefined ? {} : { value }),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      },
    );
  } catch (e) {
    throw new NoStatusServer(
      `the ${info.command} of pid ${info.pid} registered ${info.url} but it does not answer (${(e as Error).message})`,
    );
  }
  const text = await res.body.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { error: text.slice(0, 300) };
  }
  if (res.statusCode >= 300)
    throw new ControlFailed(
      `${action}: ${res.statusCode} ${String(body.error ?? text.slice(0, 300))}`,
      res.statusCode,
    );
  return body;
}
