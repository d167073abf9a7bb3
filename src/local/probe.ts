/** Boot checks for local servers, over the project's one HTTP layer: every status is an answer here. */
import { Transport } from '../cluster/transport.js';

export interface ProbeTarget {
  url: string;
  username?: string;
  password?: string;
  caFile?: string;
}

export interface ProbeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export class Probe {
  private readonly transport: Transport;

  constructor(target: ProbeTarget) {
    this.transport = new Transport({
      url: target.url,
      auth:
        target.username !== undefined
          ? { username: target.username, password: target.password ?? '' }
          : undefined,
      tls: target.caFile ? { caFile: target.caFile } : undefined,
      requestTimeoutMs: 15_000,
      connections: 2,
    });
  }

  async get(pathAndQuery: string): Promise<ProbeResponse> {
    const u = new URL(pathAndQuery, 'http://x');
    const query = Object.fromEntries(u.searchParams);
    return this.transport.request({ method: 'GET', path: u.pathname, query, okStatuses: 'all' });
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
