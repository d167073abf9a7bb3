/** Documents the target refused for good, with the reason: never dropped silently, always durable on disk. */
import { appendLineDurable } from '../plan/atomic-file.js';

export interface DeadLetter {
  id: string;
  index: string;
  routing?: string;
  version?: number;
  status: number;
  type: string;
  reason: string;
  doc?: unknown;
  at: string;
}

export interface DeadLetterSink {
  add(letters: DeadLetter[]): void;
}

export class FileDeadLetters implements DeadLetterSink {
  constructor(readonly path: string) {}
  add(letters: DeadLetter[]): void {
    if (letters.length === 0) return;
    appendLineDurable(this.path, letters.map((l) => JSON.stringify(l)).join('\n'));
  }
}
