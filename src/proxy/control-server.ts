/**
 * The proxy's side of the control protocol (control.ts): its own listener, apart from the data port, so the
 * application can neither hold nor release writes. The token is checked before anything else of a request is
 * read; a wrong or missing one is 401 and nothing more.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type HoldGranted,
  type HoldRecord,
  type ProxyStatus,
  type ReleaseRequest,
  tokenMatches,
} from './control.js';
import { HoldConflict } from './write-gate.js';

export interface ControlHandlers {
  address: { host: string; port: number };
  token: string;
  status(): ProxyStatus;
  /** budgetMs undefined: the proxy's default (cutover.holdBudgetMs) */
  hold(holdId: string, budgetMs: number | undefined): Promise<HoldGranted>;
  release(r: ReleaseRequest): HoldRecord;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

const MAX_BODY = 64 * 1024;

class BadRequest extends Error {}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new BadRequest('body too large');
    chunks.push(c);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw new BadRequest('body must be a JSON object');
}

function holdIdOf(b: Record<string, unknown>): string {
  if (typeof b.holdId !== 'string' || b.holdId.length === 0 || b.holdId.length > 200)
    throw new BadRequest('holdId must be a non-empty string');
  return b.holdId;
}

export async function startControlServer(h: ControlHandlers): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (!tokenMatches(req.headers.authorization, h.token)) {
      req.resume();
      send(res, 401, { error: 'missing or wrong control token (Authorization: Bearer <token>)' });
      return;
    }
    void route(req, res).catch((e: unknown) => {
      if (e instanceof BadRequest) return send(res, 400, { error: e.message });
      if (e instanceof HoldConflict)
        return send(res, 409, { error: e.message, record: e.record, holding: e.holding });
      // A failed journal refuses holds: the proxy is stopping.
      h.log('control request failed', { method: req.method, error: (e as Error).name });
      send(res, 503, { error: (e as Error).message });
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/v1/status') return send(res, 200, h.status());
    if (req.method === 'POST' && path === '/v1/hold') {
      const b = await jsonBody(req);
      const holdId = holdIdOf(b);
      if (
        b.budgetMs !== undefined &&
        (typeof b.budgetMs !== 'number' || !(b.budgetMs > 0) || b.budgetMs > 600_000)
      )
        throw new BadRequest('budgetMs must be a number of ms above 0 (at most 600000)');
      const granted = await h.hold(holdId, b.budgetMs as number | undefined);
      h.log('hold granted', { holdId, ms: granted.inflightWaitMs });
      return send(res, 200, granted);
    }
    if (req.method === 'POST' && path === '/v1/release') {
      const b = await jsonBody(req);
      const holdId = holdIdOf(b);
      if (b.switchedTo !== undefined && (typeof b.switchedTo !== 'string' || b.switchedTo.length === 0))
        throw new BadRequest('switchedTo must be an index name');
      if (b.cluster !== undefined && (b.cluster !== 'target' || b.switchedTo === undefined))
        throw new BadRequest("cluster must be 'target', with switchedTo");
      if (b.rolledBack !== undefined && (b.rolledBack !== true || b.switchedTo !== undefined))
        throw new BadRequest('rolledBack must be true, without switchedTo');
      return send(
        res,
        200,
        h.release({
          holdId,
          ...(b.switchedTo !== undefined ? { switchedTo: b.switchedTo as string } : {}),
          ...(b.cluster !== undefined ? { cluster: 'target' as const } : {}),
          ...(b.rolledBack ? { rolledBack: true as const } : {}),
        }),
      );
    }
    req.resume();
    send(res, 404, { error: `no control endpoint ${req.method} ${path}` });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(h.address.port, h.address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = h.address.host.includes(':') ? `[${h.address.host}]` : h.address.host;
  return { server, url: `http://${host}:${port}` };
}
