/**
 * What a runner attaches to when the application writes through proxies: the journal they share, the proxies
 * alive now, and a control client for each. The journal kind decides both: a file journal has exactly one proxy
 * (registered in the state directory, alive while its process is), a NATS journal any number (alive while their
 * heartbeats arrive).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { redactUrl } from '../cluster/redact.js';
import type { LoadedSpec } from '../spec/load.js';
import type { StateStore } from '../store/state.js';
import { controlToken, ProxyControl, type ProxyInfo, processAlive, readProxyInfo } from './control.js';
import { FileJournalReader } from './file-journal.js';
import type { JournalReader } from './journal.js';
import { NatsJournalReader, openNatsRegistry } from './nats-journal.js';

export interface ProxyFleet {
  reader: JournalReader;
  /** the proxies alive now */
  live(): Promise<ProxyInfo[]>;
  control(info: ProxyInfo): ProxyControl;
  /** where the journal is, for messages */
  readonly where: string;
  close(): Promise<void>;
}

export async function attachProxies(spec: LoadedSpec, store: StateStore): Promise<ProxyFleet> {
  const token = () => process.env.CUTOVER_PROXY_TOKEN ?? controlToken(store.proxyTokenPath, false);
  const control = (info: ProxyInfo) => new ProxyControl(info, token());
  const j = spec.proxy.journal;
  if (j.kind === 'file') {
    const reader = new FileJournalReader(store.journalPath);
    return {
      reader,
      where: store.journalPath,
      control,
      async live() {
        const info = readProxyInfo(store.proxyInfoPath);
        if (!info) return [];
        const alive = processAlive(info);
        if (alive === false) return [];
        if (alive === undefined) {
          // Another host: alive if its control port answers.
          const up = await control(info)
            .status()
            .then(() => true)
            .catch(() => false);
          return up ? [info] : [];
        }
        return [info];
      },
      close: () => reader.close(),
    };
  }
  const reader = new NatsJournalReader(spec);
  const registry = await openNatsRegistry(spec);
  // A proxy counts as alive for three heartbeats: a registry that has listened for less may not have heard from
  // every live proxy yet, and would report none (the run refuses to start) or hold only some of them.
  const heardAll = Date.now() + 3 * spec.proxy.heartbeatMs;
  return {
    reader,
    where: `NATS ${j.servers
      .split(',')
      .map((u) => redactUrl(u.trim()))
      .join(',')}`,
    control,
    async live() {
      const wait = heardAll - Date.now();
      if (wait > 0) await sleep(wait);
      return registry.live();
    },
    async close() {
      await reader.close();
      await registry.close();
    },
  };
}
