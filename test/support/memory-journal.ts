/** An in-memory journal for the journal sync's unit tests: entries appended in order, read back by position. */
import type { EntryBody, JournalEntry, JournalPos, JournalReader } from '../../src/proxy/journal.js';

export class MemoryJournal implements JournalReader {
  readonly entries: JournalEntry[] = [];
  add(proxy: string, body: EntryBody): void {
    this.entries.push({ ...body, seq: this.entries.length + 1, at: Date.now(), proxy } as JournalEntry);
  }
  async read(after: JournalPos, max: number) {
    const entries = this.entries.slice(after.seq, after.seq + max);
    return { entries, next: { seq: after.seq + entries.length } };
  }
  async end(): Promise<JournalPos> {
    return { seq: this.entries.length };
  }
  async close(): Promise<void> {}
}
