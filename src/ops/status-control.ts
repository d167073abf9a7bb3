/**
 * The operator's control of a running command: pause, resume, rate, batch, postpone, unpostpone, panic. A request
 * is checked whole before anything changes (a bad value is refused with the field and the value, and changes
 * nothing), and every action that is carried out lands in the audit trail with who asked, from where, and when.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditLog } from '../store/audit.js';
import type { Throttle } from './throttle.js';

export const CONTROL_ACTIONS = [
  'pause',
  'resume',
  'rate',
  'batch',
  'postpone',
  'unpostpone',
  'panic',
] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** What this command lets the operator steer; what is absent is refused with 409 and why. */
export interface Steering {
  /** the copy's throttle (absent on the proxy, which copies nothing) */
  throttle?: Throttle;
  /** cutover.postponeFlagFile: postpone creates it, unpostpone removes it */
  postponeFlag?: string;
  /** stop now through the command's interrupt path (as Ctrl-C does) */
  panic?: (why: string) => void;
  audit: AuditLog;
  /** the command this is, for the messages */
  command: string;
}

/** Who asked: the holder of the token and the address the request came from, or a flag file. */
export interface Requester {
  via: 'http' | 'flag-file';
  from: string;
}

export class ControlRefused extends Error {
  constructor(
    readonly status: 400 | 409,
    message: string,
  ) {
    super(message);
  }
}

function isAction(a: string): a is ControlAction {
  return (CONTROL_ACTIONS as readonly string[]).includes(a);
}

/** `rate N` (documents per second, above 0) or `rate unlimited`: 0 would read as "stop", which is `pause`. */
export function parseRate(v: unknown): number {
  if (v === 'unlimited' || v === 'off') return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n <= 0 || n > 10_000_000)
    throw new ControlRefused(
      400,
      `rate: ${JSON.stringify(v)} is not a rate; give documents per second above 0 (e.g. rate 500), or "unlimited"; use pause to stop the copy`,
    );
  return n;
}

export function parseBatch(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 100_000)
    throw new ControlRefused(
      400,
      `batch: ${JSON.stringify(v)} is not a batch size; give whole documents per page from 1 to 100000`,
    );
  return n;
}

/** Carry out one action; returns what is true now, in one line. */
export function steer(s: Steering, action: string, value: unknown, who: Requester): string {
  if (!isAction(action))
    throw new ControlRefused(
      400,
      `action: unknown action ${JSON.stringify(action)} (known: ${CONTROL_ACTIONS.join(', ')})`,
    );
  const by = who.via === 'http' ? `the control token holder at ${who.from}` : `flag file ${who.from}`;
  const needThrottle = (): Throttle => {
    if (!s.throttle)
      throw new ControlRefused(
        409,
        `${action}: \`cutover ${s.command}\` copies nothing; steer the copy on the status server of \`cutover run\``,
      );
    return s.throttle;
  };
  let done: string;
  let recorded: unknown = value;
  switch (action) {
    case 'pause':
      needThrottle().pause('operator', `paused by ${by}`);
      done = 'copy paused: no page is written until resume (capture rounds wait too)';
      recorded = undefined;
      break;
    case 'resume': {
      const t = needThrottle();
      t.resume('operator', `resumed by ${by}`);
      const still = t.view().pausedBy;
      done = still.length
        ? `operator pause lifted; still paused by ${still.map((p) => `${p.by} (${p.why})`).join(', ')}`
        : 'copy resumed';
      recorded = undefined;
      break;
    }
    case 'rate': {
      const n = parseRate(value);
      const t = needThrottle();
      t.setCeiling(n, n ? `rate ${n} docs/s set by ${by}` : `rate unlimited set by ${by}`);
      recorded = n || 'unlimited';
      done = n ? `rate at most ${n} documents per second` : 'rate unlimited';
      break;
    }
    case 'batch': {
      const n = parseBatch(value);
      needThrottle().setBatchDocs(n, `set by ${by}`);
      recorded = n;
      done = `pages of ${n} documents from the next page on`;
      break;
    }
    case 'postpone':
    case 'unpostpone': {
      const flag = s.postponeFlag;
      if (!flag)
        throw new ControlRefused(
          409,
          `${action}: this migration has no postpone flag; set cutover.postponeFlagFile in the spec (or --postpone-cutover-flag-file) to be able to hold the switch`,
        );
      if (action === 'postpone') {
        mkdirSync(dirname(flag), { recursive: true });
        writeFileSync(flag, `postponed by ${by} at ${new Date().toISOString()}\n`);
        done = `switch postponed while ${flag} exists (catch-up goes on)`;
      } else {
        rmSync(flag, { force: true });
        done = `postpone flag ${flag} removed: the switch may go ahead`;
      }
      recorded = undefined;
      break;
    }
    case 'panic': {
      if (!s.panic)
        throw new ControlRefused(
          409,
          `panic: \`cutover ${s.command}\` has no copy to stop; stop it with SIGTERM (the application's writes then fail)`,
        );
      s.throttle?.pause('panic', `panic by ${by}`);
      s.panic(`panic by ${by}`);
      done =
        'stopping now: any freeze or hold is lifted, the target settings restored, the checkpoints kept; `cutover run` resumes';
      recorded = undefined;
      break;
    }
  }
  s.audit.record({
    event: 'control',
    action,
    ...(recorded === undefined ? {} : { value: recorded }),
    by: who.via === 'http' ? 'control token holder' : 'flag file',
    from: who.from,
    via: who.via,
    command: s.command,
  });
  return done;
}
