/**
 * Dead letters of a shared copy (copy.workers) reach the runner, wherever they were met: every process keeps its
 * letters in its own dead-letter file (durable first, with the documents) and publishes them to the bucket, without
 * their documents (a letter names the id, its routing, the version and why; `redrive` copies the source's current
 * state of each id again, so the document is not needed there, and the bucket never holds document content). A page's
 * letters are in the bucket before its checkpoint moves past them (DeadLetterSink.flush), so once every slice is done
 * the runner finds them all and adds to its own file the ones it lacks: its count gate, its proof (which excuses
 * dead-lettered ids), `redrive` and the report then see every process's letters, as with one machine.
 */
import { appendLineDurable } from '../store/atomic-file.js';
import { type DeadLetter, type DeadLetterSink, readDeadLetters } from './dead-letters.js';
import type { SliceBoard } from './slice-board.js';

/** Letters per bucket value: ~300 bytes each without the document, well under NATS's default 1 MB payload. */
const PER_VALUE = 500;

/** A letter as it goes to the bucket: everything but the document. */
function withoutDoc(l: DeadLetter): DeadLetter {
  const { doc: _doc, ...rest } = l;
  return rest;
}

/** The same letter met by the same process at the same time, from the file or from the bucket. */
function identity(l: DeadLetter): string {
  return JSON.stringify([l.id, l.index, l.routing ?? null, l.at, l.type, l.status]);
}

export class SharedDeadLetters implements DeadLetterSink {
  private chain: Promise<void> = Promise.resolve();
  private failed?: Error;

  constructor(
    private readonly local: DeadLetterSink,
    private readonly board: SliceBoard,
  ) {}

  add(letters: DeadLetter[]): void {
    this.local.add(letters);
    for (let i = 0; i < letters.length; i += PER_VALUE) {
      const part = letters.slice(i, i + PER_VALUE).map(withoutDoc);
      this.chain = this.chain
        .then(() => this.board.noteDeadLetters(part))
        .catch((e: unknown) => {
          this.failed ??= e as Error;
        });
    }
  }

  /** Throws when a letter could not be published (NATS did not answer within its patience): the slice stops. */
  async flush(): Promise<void> {
    await this.chain;
    const e = this.failed;
    if (e) {
      this.failed = undefined;
      throw e;
    }
  }
}

/** The runner, once every slice is done: the published letters its file lacks, appended; returns how many. */
export async function importDeadLetters(board: SliceBoard, path: string): Promise<number> {
  const have = new Set(readDeadLetters(path).map(identity));
  const missing = (await board.deadLetters()).filter((l) => {
    const k = identity(l);
    if (have.has(k)) return false;
    have.add(k);
    return true;
  });
  for (let i = 0; i < missing.length; i += PER_VALUE)
    appendLineDurable(
      path,
      missing
        .slice(i, i + PER_VALUE)
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
  return missing.length;
}
