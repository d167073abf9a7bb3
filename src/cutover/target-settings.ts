/**
 * The target's own settings come back after the copy, on failure and on rollback: the values recorded before
 * the copy changed them are the truth, and the state says whether they are still to be put back.
 */
import type { Cluster } from '../cluster/client.js';
import type { LoadedSpec } from '../spec/load.js';
import type { AuditLog } from '../store/audit.js';
import type { MigrationState, StateStore } from '../store/state.js';
import { applySettings, readTemporaryKeys } from './target.js';

interface Where {
  state: MigrationState;
  target: Cluster;
  spec: LoadedSpec;
  audit: AuditLog;
  store: StateStore;
}

/** Record the originals once, persisted before anything changes, then set the copy values. */
export async function applyCopySettings(c: Where, settings: Record<string, string>): Promise<void> {
  // A resume never mistakes the temporary values for the originals: they are read only once.
  if (!c.state.originalSettings) {
    c.state.originalSettings = await readTemporaryKeys(c.target, c.spec.target.index);
    await c.store.save(c.state);
  }
  await applySettings(c.target, c.spec.target.index, settings);
}

/** `keepGcDeletes`: versioned deletes of live capture must outlive the catch-up, so gc_deletes waits for the switch. */
export async function restoreTargetSettings(c: Where, keepGcDeletes = false): Promise<void> {
  if (c.state.temporarySettingsApplied && c.state.originalSettings) {
    const { 'index.gc_deletes': _gc, ...rest } = c.state.originalSettings;
    const settings = keepGcDeletes ? rest : c.state.originalSettings;
    await applySettings(c.target, c.spec.target.index, settings);
    c.state.temporarySettingsApplied = false;
    c.state.gcDeletesPending = keepGcDeletes;
    await c.store.save(c.state);
    c.audit.record({ event: 'target-settings-restored', settings });
  } else if (!keepGcDeletes && c.state.gcDeletesPending && c.state.originalSettings) {
    const settings = { 'index.gc_deletes': c.state.originalSettings['index.gc_deletes'] };
    await applySettings(c.target, c.spec.target.index, settings);
    c.state.gcDeletesPending = false;
    await c.store.save(c.state);
    c.audit.record({ event: 'target-settings-restored', settings });
  }
}
