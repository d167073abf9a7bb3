/**
 * The switch a runner reported to the proxy (the aliases now point at `switchedTo`), kept on disk so a proxy
 * restarted after the switch still knows which concrete name is the old one.
 */
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
