/** Documents the target refused for good, with the reason: never dropped silently, always durable on disk. */
import { existsSync, readFileSync } from 'node:fs';
import { appendLineDurable } from '../store/atomic-file.js';

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
  /**
   * Resolves once every letter added so far is where it must be before the slice's checkpoint moves past it (a
   * shared copy: in the bucket too). Absent: `add` was enough.
   */
  flush?(): Promise<void>;
}

export class FileDeadLetters implements DeadLetterSink {
  constructor(readonly path: string) {}
  add(letters: DeadLetter[]): void {
    if (letters.length === 0) return;
    appendLineDurable(this.path, letters.map((l) => JSON.stringify(l)).join('\n'));
  }
}

/** Every dead letter in the file, in the order written (bounded: the gate refuses above copy.maxDeadLetters). */
export function readDeadLetters(path: string): DeadLetter[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as DeadLetter);
}

export function deadLetterIds(path: string): Set<string> {
  return new Set(readDeadLetters(path).map((d) => d.id));
}
