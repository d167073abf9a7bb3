/** A spec file in a fresh temporary directory with its state beside it, the audit trail read back, and polling. */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';

/** `spec.yaml` in a new directory (prefix names the suite), `stateDir: ./state`; `state` is the migration's own. */
export function specFile(
  prefix: string,
  spec: Record<string, unknown>,
): { path: string; dir: string; state: string } {
  const dir = mkdtempSync(join(tmpdir(), `cutover-${prefix}-`));
  const path = join(dir, 'spec.yaml');
  writeFileSync(path, YAML.stringify({ stateDir: './state', ...spec }));
  return { path, dir, state: join(dir, 'state', String(spec.name)) };
}

export interface AuditEvent {
  event: string;
  task?: string;
  bucket?: string;
  detail?: Record<string, unknown>;
}

/** The migration's audit trail so far (empty before the first event). */
export function auditOf(state: string): AuditEvent[] {
  const p = join(state, 'audit.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

export async function waitFor(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
