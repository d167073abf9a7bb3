/**
 * The status server of a long-running command: /metrics (Prometheus), /api/status (JSON), / (the dashboard),
 * /api/events (server-sent events) and /api/control/<action>. It keeps one rule: nothing changes without the
 * control token (Authorization: Bearer), checked before the body is read; reads need the token too unless they
 * come from loopback to a loopback name (a page on another site cannot read them through a rebound DNS name).
 * Where it listens is written to the state directory, so `cutover ctl` finds it; the file goes when it stops.
 */
import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { readJson, writeJsonAtomic } from '../store/atomic-file.js';
import { PreflightError } from '../store/errors.js';
import { bearerMatches, readOrCreateToken } from '../store/secret-token.js';
import type { StateStore } from '../store/state.js';
import type { StatusBoard } from './status-board.js';
import { ControlRefused, type Steering, steer } from './status-control.js';
import { DASHBOARD_HTML } from './status-page.js';

/** The status server's default address: loopback, and any free port when this one is taken. */
export const DEFAULT_STATUS_LISTEN = '127.0.0.1:9252';

export type StatusRole = 'run' | 'proxy';

/** What `cutover ctl` reads to find a running command's status server. */
export interface StatusInfo {
  url: string;
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

export interface StatusServerOptions {
  /** HOST:PORT; undefined: DEFAULT_STATUS_LISTEN with a fallback to any free port */
  listen?: string;
  role: StatusRole;
  store: StateStore;
  board: StatusBoard;
  steering: Steering;
}

export interface StatusServer {
  url: string;
  /** true when the default port was taken and another was chosen */
  fellBack: boolean;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024;

export function parseListen(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  const host = s.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  if (i <= 0 || !host || !/^\d{1,5}$/.test(s.slice(i + 1)) || port > 65_535)
    throw new PreflightError(
      `--listen must be HOST:PORT (e.g. 127.0.0.1:9252, port 0: any free port) or off, got ${JSON.stringify(s)}`,
    );
  return { host, port };
}

function isLoopback(addr: string | undefined): boolean {
  return !!addr && (addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.'));
}

function loopbackName(hostHeader: string | undefined): boolean {
  const h = (hostHeader ?? '')
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

async function bodyOf(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new ControlRefused(400, 'body: larger than 16 KiB');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw new ControlRefused(400, 'body: must be a JSON object such as {"value": 500}');
}

function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startStatusServer(o: StatusServerOptions): Promise<StatusServer> {
  const token = readOrCreateToken(o.store.statusTokenPath);
  const { board } = o;
  const streams = new Set<ServerResponse>();
  // Refused control requests are audited, but a flood of them must not flood the audit trail (each line is
  // fsynced): at most one record a second, carrying how many were refused since the last one.
  let refusedAt = 0;
  let refusedSince = 0;

  // The status server must never take the migration down: whatever fails in a request fails that request only.
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) send(res, 500, { error: (e as Error).message });
      else res.end();
    }
  });

  function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    const authorized = bearerMatches(req.headers.authorization, token);
    if (req.method === 'POST') {
      if (!authorized) {
        req.resume();
        const from = req.socket.remoteAddress ?? '?';
        refusedSince++;
        if (Date.now() - refusedAt >= 1000) {
          refusedAt = Date.now();
          o.steering.audit.record({
            event: 'control-refused',
            path,
            from,
            why: 'missing or wrong token',
            refused: refusedSince,
          });
          refusedSince = 0;
        }
        return send(res, 401, {
          error: `missing or wrong control token: send Authorization: Bearer <the token in ${o.store.statusTokenPath}>`,
        });
      }
      const m = /^\/api\/control\/([a-z-]+)$/.exec(path);
      if (!m) {
        req.resume();
        return send(res, 404, { error: `no control endpoint POST ${path} (POST /api/control/<action>)` });
      }
      void bodyOf(req)
        .then((b) => {
          const from = req.socket.remoteAddress ?? '?';
          const message = steer(o.steering, m[1]!, b.value, { via: 'http', from });
          board.metrics.control(m[1]!, 'http');
          board.changed();
          send(res, 200, { ok: true, action: m[1], message, throttle: o.steering.throttle?.view() });
        })
        .catch((e: unknown) => {
          if (e instanceof ControlRefused) return send(res, e.status, { error: e.message });
          send(res, 500, { error: (e as Error).message });
        });
      return;
    }
    if (req.method !== 'GET') {
      req.resume();
      return send(res, 405, { error: `${req.method} is not served here` });
    }
    if (path === '/') {
      // The page holds no figure and no secret: it asks the API, which applies the rule below.
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
      });
      res.end(DASHBOARD_HTML);
      return;
    }
    const readable = authorized || (isLoopback(req.socket.remoteAddress) && loopbackName(req.headers.host));
    if (!readable)
      return send(res, 401, {
        error: 'status reads from outside loopback need the control token (Authorization: Bearer <token>)',
      });
    if (path === '/metrics') {
      void board.metricsText().then(
        (text) => {
          res.writeHead(200, { 'content-type': board.metrics.contentType });
          res.end(text);
        },
        (e: unknown) => send(res, 500, { error: (e as Error).message }),
      );
      return;
    }
    if (path === '/api/status') return send(res, 200, board.snapshot());
    if (path === '/api/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      streams.add(res);
      req.on('close', () => streams.delete(res));
      pushTo(res);
      return;
    }
    send(res, 404, { error: `nothing at ${path} (try /, /metrics, /api/status, /api/events)` });
  }

  function pushTo(res: ServerResponse): void {
    res.write(`event: status\ndata: ${JSON.stringify(board.snapshot())}\n\n`);
  }
  let pending: NodeJS.Timeout | undefined;
  const pushAll = () => {
    pending = undefined;
    if (streams.size === 0) return;
    let line: string;
    try {
      line = `event: status\ndata: ${JSON.stringify(board.snapshot())}\n\n`;
    } catch {
      return; // a figure could not be read this second; the next tick tries again
    }
    for (const s of streams) s.write(line);
  };
  const tick = setInterval(pushAll, 1000);
  tick.unref();
  const unwatch = board.onChange(() => {
    pending ??= setTimeout(pushAll, 100);
  });

  const explicit = o.listen !== undefined;
  const { host, port } = parseListen(o.listen ?? DEFAULT_STATUS_LISTEN);
  let addr: AddressInfo;
  let fellBack = false;
  try {
    addr = await listenOn(server, host, port);
  } catch (e) {
    // Only the default gives way: an address the operator named and cannot have is an error they must see.
    if (explicit || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
      clearInterval(tick);
      throw new PreflightError(
        `status server: cannot listen on ${host}:${port} (${(e as Error).message}); choose another --listen, or --listen off`,
      );
    }
    addr = await listenOn(server, host, 0);
    fellBack = true;
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${addr.port}`;
  const infoPath = o.store.statusInfoPath(o.role);
  const info: StatusInfo = {
    url,
    pid: process.pid,
    host: hostname(),
    command: o.steering.command,
    startedAt: new Date().toISOString(),
  };
  writeJsonAtomic(infoPath, info);

  return {
    url,
    fellBack,
    async close() {
      clearInterval(tick);
      if (pending) clearTimeout(pending);
      unwatch();
      for (const s of streams) s.end();
      streams.clear();
      // Only our own registration: a later command of this migration may have written its own since.
      if (readJson<StatusInfo>(infoPath)?.pid === process.pid) rmSync(infoPath, { force: true });
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
