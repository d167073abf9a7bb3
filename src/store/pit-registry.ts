/**
 * The points in time this migration has open, with the process that opened each: a run killed with kill -9 leaves
 * its PIT holding segments on the cluster until keep-alive runs out. The next process of the migration (the lock
 * says there is only one) closes what a dead process left, and `cutover doctor` can tell this migration's PITs from
 * other clients'. Nothing here talks to a cluster: the caller closes, this file remembers.
 */
import { hostname } from 'node:os';
import { readJson, writeJsonAtomic } from './atomic-file.js';
import { alive } from './lock.js';

export interface PitRecord {
  /** which cluster of the migration: 'source' or 'target' */
  side: string;
  index: string;
  id: string;
  keepAlive: string;
  openedAt: string;
  pid: number;
  host: string;
}

export class PitRegistry {
  constructor(private readonly path: string) {}

  list(): PitRecord[] {
    return readJson<PitRecord[]>(this.path) ?? [];
  }

  opened(r: Omit<PitRecord, 'pid' | 'host' | 'openedAt'>): void {
    const all = this.list().filter((x) => x.id !== r.id);
    all.push({ ...r, openedAt: new Date().toISOString(), pid: process.pid, host: hostname() });
    writeJsonAtomic(this.path, all);
  }

  /** The cluster handed back a new id for the same PIT. */
  replaced(oldId: string, newId: string): void {
    if (oldId === newId) return;
    const all = this.list();
    const r = all.find((x) => x.id === oldId);
    if (!r) return;
    r.id = newId;
    writeJsonAtomic(this.path, all);
  }

  closed(id: string): void {
    const all = this.list();
    const rest = all.filter((x) => x.id !== id);
    if (rest.length !== all.length) writeJsonAtomic(this.path, rest);
  }

  /** PITs whose process is gone (on this host; one on another host is left to its keep-alive). */
  leftBehind(): PitRecord[] {
    return this.list().filter((r) => r.host === hostname() && r.pid !== process.pid && !alive(r.pid));
  }
}
