/**
 * gh-ost's flag files: while the throttle flag file exists the copy is paused (a pause of its own, so the
 * operator's pause and the watchdog's are untouched), and when the panic flag file appears the command stops as
 * on `panic`. Polled once a second; each change lands in the audit trail.
 */
import { existsSync } from 'node:fs';
import type { AuditLog } from '../store/audit.js';
import { type Steering, steer } from './status-control.js';
import type { Throttle } from './throttle.js';

export interface FlagFiles {
  throttleFlag?: string;
  panicFlag?: string;
}

export function watchFlagFiles(
  f: FlagFiles,
  s: Steering & { throttle?: Throttle; audit: AuditLog },
  onChange: () => void = () => {},
): () => void {
  if (!f.throttleFlag && !f.panicFlag) return () => {};
  let panicked = false;
  const poll = () => {
    if (f.throttleFlag && s.throttle) {
      const there = existsSync(f.throttleFlag);
      const paused = s.throttle.view().pausedBy.some((p) => p.by === 'flag-file');
      if (there && !paused) {
        s.throttle.pause('flag-file', `${f.throttleFlag} exists`);
        s.audit.record({
          event: 'control',
          action: 'pause',
          by: 'flag file',
          from: f.throttleFlag,
          via: 'flag-file',
        });
        onChange();
      } else if (!there && paused) {
        s.throttle.resume('flag-file', `${f.throttleFlag} removed`);
        s.audit.record({
          event: 'control',
          action: 'resume',
          by: 'flag file',
          from: f.throttleFlag,
          via: 'flag-file',
        });
        onChange();
      }
    }
    if (f.panicFlag && !panicked && existsSync(f.panicFlag)) {
      panicked = true;
      steer(s, 'panic', undefined, { via: 'flag-file', from: f.panicFlag });
      onChange();
    }
  };
  poll();
  const t = setInterval(poll, 1000);
  t.unref();
  return () => clearInterval(t);
}
