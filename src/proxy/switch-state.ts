/**
 * The switch a runner reported to the proxy (the aliases now point at `switchedTo`), kept on disk so a proxy
 * restarted after the switch still knows which concrete name is the old one.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readJson, writeJsonAtomic } from '../store/atomic-file.js';

export interface SwitchRecord {
  /** the concrete index migrated from */
  sourceIndex: string;
  switchedTo: string;
  at: string;
  /** every request now goes to the target cluster (the application moved with the proxy) */
  cluster?: 'target';
}

export function readSwitch(path: string): SwitchRecord | undefined {
  const r = readJson<SwitchRecord>(path);
  return r && typeof r.sourceIndex === 'string' && typeof r.switchedTo === 'string' ? r : undefined;
}

export function writeSwitch(path: string, r: SwitchRecord): void {
  writeJsonAtomic(path, r);
}

/** A rollback undid the switch: a proxy started after it must not act on it. */
export function forgetSwitch(path: string): void {
  rmSync(path, { force: true });
}

/** Where a proxy keeps the switch record: beside its journal, in the migration's state directory. */
export function switchStatePathOf(journalPath: string): string {
  return join(dirname(journalPath), 'switch.json');
}
