/**
 * Which audit records an operator is told about, and how each reads in an alert. Pure: the audit trail is the one
 * source of what happened; an alert never says anything the trail does not.
 */

export type AlertKind =
  | 'started'
  | 'step-done'
  | 'throttled'
  | 'paused'
  | 'resumed'
  | 'dead-letters'
  | 'switch-refused'
  | 'switched'
  | 'finished'
  | 'failed'
  | 'rolled-back'
  | 'cleaned-up';

export interface AlertEvent {
  kind: AlertKind;
  migration: string;
  severity: 'info' | 'warning' | 'error' | 'critical';
  summary: string;
  at: string;
  /** the audit record it came from (never holds secrets: see store/audit.ts) */
  details: Record<string, unknown>;
  /**
   * PagerDuty: incidents are opened by a trigger and closed by the resolve with the same key; events without one
   * are not sent there (they are not incidents)
   */
  incident?: {
    key: 'watchdog' | 'switch' | 'run' | 'throttle' | 'dead-letters';
    action: 'trigger' | 'resolve';
  };
}

type Record_ = { event: string; at?: string } & Record<string, unknown>;

const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));

/** The alert an audit record raises, if any. */
export function alertOf(migration: string, r: Record_): AlertEvent | undefined {
  const at = r.at ?? new Date().toISOString();
  const base = { migration, at, details: r };
  switch (r.event) {
    case 'run-started':
      return {
        ...base,
        kind: 'started',
        severity: 'info',
        summary: `${migration}: ${str(r.command)} ${r.resumed ? 'resumed' : 'started'}`,
      };
    case 'step-done':
      return {
        ...base,
        kind: 'step-done',
        severity: 'info',
        summary: `${migration}: step ${str(r.step)} done`,
      };
    case 'run-finished':
      return {
        ...base,
        kind: 'finished',
        severity: 'info',
        summary: `${migration}: ${str(r.command)} finished (${str(r.phase)})`,
        incident: { key: 'run', action: 'resolve' },
      };
    case 'run-failed':
      return {
        ...base,
        kind: 'failed',
        severity: 'error',
        summary: `${migration}: failed in step ${str(r.step) || 'start'}: ${str(r.error)}`,
        incident: { key: 'run', action: 'trigger' },
      };
    case 'rolled-back':
      return {
        ...base,
        kind: 'rolled-back',
        severity: 'warning',
        summary: `${migration}: rolled back, the aliases point at the old index again`,
      };
    case 'old-index-deleted':
      return {
        ...base,
        kind: 'cleaned-up',
        severity: 'info',
        summary: `${migration}: the old index ${str(r.index)} was deleted (cleanup)`,
      };
    case 'aliases-switched':
      return {
        ...base,
        kind: 'switched',
        severity: 'info',
        summary: `${migration}: aliases switched to the new index`,
        incident: { key: 'switch', action: 'resolve' },
      };
    case 'hold':
    case 'freeze':
      // A try that did not switch: the next one follows; the operator hears of each refusal.
      if (r.switched !== false || r.fence === true) return undefined;
      return {
        ...base,
        kind: 'switch-refused',
        severity: 'warning',
        summary: `${migration}: a ${r.event} (attempt ${str(r.attempt)}) ended without switching: ${str(r.reason)}`,
        incident: { key: 'switch', action: 'trigger' },
      };
    case 'watchdog-paused':
      return {
        ...base,
        kind: 'paused',
        severity: 'critical',
        summary: `${migration}: paused by the watchdog: ${str(r.why ?? r.reason)}`,
        incident: { key: 'watchdog', action: 'trigger' },
      };
    case 'watchdog-resumed':
      return {
        ...base,
        kind: 'resumed',
        severity: 'info',
        summary: `${migration}: resumed, cluster health is back`,
        incident: { key: 'watchdog', action: 'resolve' },
      };
    case 'throttled':
      return {
        ...base,
        kind: 'throttled',
        severity: 'warning',
        summary: `${migration}: the copy has been held back for ${str(r.minutes)} min: ${str(r.reason)}`,
        incident: { key: 'throttle', action: 'trigger' },
      };
    case 'throttle-cleared':
      return {
        ...base,
        kind: 'resumed',
        severity: 'info',
        summary: `${migration}: the copy runs at its ceiling again`,
        incident: { key: 'throttle', action: 'resolve' },
      };
    case 'copied': {
      const t = r.totals as { deadLetters?: number } | undefined;
      if (!t?.deadLetters) return undefined;
      return {
        ...base,
        kind: 'dead-letters',
        severity: 'warning',
        summary: `${migration}: ${t.deadLetters} document(s) dead-lettered by the copy`,
        incident: { key: 'dead-letters', action: 'trigger' },
      };
    }
    default:
      return undefined;
  }
}
