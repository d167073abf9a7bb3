/** What the engine tells the operator while it works; the CLI renders it as a progress bar or JSON lines. */
import type { SliceProgress } from '../copy/slice-copier.js';
import type { BulkSample } from './throttle-signals.js';

export interface Reporter {
  step(name: string, title: string): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  copyStarted(totalDocs: number, alreadyDone: number): void;
  copyProgress(p: SliceProgress): void;
  copyFinished(): void;
  /** every _bulk request of the copy (optional: only the status server's metrics listen) */
  bulk?(b: BulkSample): void;
}

export const silentReporter: Reporter = {
  step() {},
  info() {},
  warn() {},
  copyStarted() {},
  copyProgress() {},
  copyFinished() {},
};
