/**
 * Names of the NATS journal of one migration: two migrations never share a stream or a subject, and one
 * migration's subjects never fall under another's wildcard (JetStream refuses overlapping streams, and a
 * heartbeat must reach only its own runner).
 *
 * Migration names may hold '.', which NATS reads as a subject separator (`a.life` would put `cutover.a.life.journal`
 * under `cutover.a.life.*`). Names are lowercase, so '.' becomes 'D': the mapping stays one-to-one.
 */
import type { LoadedSpec } from '../spec/load.js';

export interface NatsNames {
  servers: string[];
  stream: string;
  /** doc and reconcile entries of every proxy */
  journal: string;
  /** the stream's subjects: the journal and each proxy's start/stop entries */
  streamSubjects: string[];
  /** core NATS, not stored: every proxy's heartbeats */
  proxies: string;
  /** a proxy's start and stop entries: the last one tells whether its previous life ended cleanly */
  life(proxyId: string): string;
}

/** The migration name as one subject token and stream-name part: [a-z0-9_-] plus 'D' for '.'. */
export function nameToken(name: string): string {
  return name.replaceAll('.', 'D');
}

/** Any proxy id as one subject token: characters outside [A-Za-z0-9_-] (and '~' itself) become ~XX. */
export function idToken(id: string): string {
  return Array.from(Buffer.from(id, 'utf8'), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9_-]/.test(c) ? c : `~${b.toString(16).padStart(2, '0')}`;
  }).join('');
}

export function natsNames(spec: LoadedSpec): NatsNames {
  const j = spec.proxy.journal;
  if (j.kind !== 'nats')
    throw new Error(`proxy.journal.kind is ${j.kind}, not nats: the NATS journal was opened by mistake`);
  const token = nameToken(spec.name);
  const base = `cutover.${token}`;
  return {
    servers: j.servers
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    stream: j.stream ?? `cutover-${token}`,
    journal: `${base}.journal`,
    streamSubjects: [`${base}.journal`, `${base}.life.*`],
    proxies: `${base}.proxies`,
    life: (proxyId) => `${base}.life.${idToken(proxyId)}`,
  };
}
