/**
 * Which ids the application wrote through the proxies since the switch, read from the journal after the position
 * the switch recorded (`cutoverJournalEnd`). The reverse sync of the revert window needs it for one question the
 * new index cannot answer: a document the migration left on the old index only (dropped by the transform, dead
 * letter) that the application then deleted through the alias. The delete went to the new index, where the
 * document never was (or was only briefly): nothing there shows it, neither a search nor a tombstone one can
 * read. Without this, such an id stays on the old index and comes back on a rollback.
 *
 * An id written since the switch (a write the cluster took, that did not land on the old index itself) has its
 * truth on the new index: present there, the reverse sync copies it back; absent, it was deleted there. A write
 * the cluster refused changed nothing (an update or delete of a document the new index does not have answers
 * 404): the document left behind stays, as it would have without that request. Memory stays bounded:
 * past `maxIds`, only the ids the migration left behind on purpose (`leftBehind`) are kept watching, and an id
 * outside them is answered "unknown" (the caller keeps the old document, as without a journal, and says so).
 */
import { JournalBroken, type JournalPos, type JournalReader } from '../proxy/journal.js';

export interface WritesSinceSwitchOptions {
  reader: JournalReader;
  /** the journal's end when the aliases moved to the new index */
  from: JournalPos;
  /** the old index: a write that landed there by its concrete name changed the old document itself */
  oldIndex: string;
  /** ids the migration left on the old index on purpose: watched even past `maxIds` */
  leftBehind: () => ReadonlySet<string>;
  maxIds?: number;
}

export interface TouchedAnswer {
  /** ids among those asked that the application wrote since the switch */
  touched: Set<string>;
  /** ids among those asked the journal can no longer answer for (memory bound passed, journal cut) */
  unknown: Set<string>;
  /** why some ids are unknown */
  why?: string;
}

const READ_BATCH = 5000;
const DEFAULT_MAX_IDS = 1_000_000;

export class WritesSinceSwitch {
  private pos: JournalPos;
  private readonly seen = new Set<string>();
  /** past maxIds: only ids in leftBehind are added */
  private narrowed = false;
  private broken?: string;

  constructor(private readonly o: WritesSinceSwitchOptions) {
    this.pos = o.from;
  }

  /** Reads the journal to its end, then answers for `ids`. */
  async touched(ids: string[]): Promise<TouchedAnswer> {
    await this.catchUp();
    const out: TouchedAnswer = { touched: new Set(), unknown: new Set() };
    const behind = this.narrowed ? this.o.leftBehind() : undefined;
    for (const id of ids) {
      if (this.seen.has(id)) out.touched.add(id);
      else if (this.broken || (behind && !behind.has(id))) out.unknown.add(id);
    }
    if (out.unknown.size > 0)
      out.why =
        this.broken ??
        `more than ${this.o.maxIds ?? DEFAULT_MAX_IDS} ids written since the switch: only those the migration left on the old index are still watched`;
    return out;
  }

  private async catchUp(): Promise<void> {
    if (this.broken) return;
    const max = this.o.maxIds ?? DEFAULT_MAX_IDS;
    for (;;) {
      let b: Awaited<ReturnType<JournalReader['read']>>;
      try {
        b = await this.o.reader.read(this.pos, READ_BATCH);
      } catch (e) {
        if (!(e instanceof JournalBroken)) throw e;
        this.broken = `the journal after the switch cannot be trusted (${e.message})`;
        return;
      }
      if (b.entries.length === 0) return;
      for (const e of b.entries) {
        if (e.kind !== 'doc' || e.failed || e.index === this.o.oldIndex) continue;
        if (this.narrowed && !this.o.leftBehind().has(e.id)) continue;
        this.seen.add(e.id);
        if (!this.narrowed && this.seen.size > max) this.narrow();
      }
      this.pos = b.next;
    }
  }

  private narrow(): void {
    this.narrowed = true;
    const behind = this.o.leftBehind();
    for (const id of this.seen) if (!behind.has(id)) this.seen.delete(id);
  }
}
