/**
 * Copy the dead-lettered documents again, after the mapping or the transform was fixed: each id is read from the
 * source as it is now (realtime _mget, with its _seq_no) and goes through the same transform and the same
 * versioned writer as the copy, so a newer state already on the target still wins. The dead-letter file is then
 * rewritten to hold exactly the documents that failed again; nothing is dropped from it unread.
 */

import type { Hit } from '../cluster/client.js';
import type { IndexPair } from '../cluster/index-pair.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { type DeadLetter, readDeadLetters } from './dead-letters.js';
import { toWriteOps, type Versioning } from './slice-copier.js';
import type { TransformFn } from './transform.js';
import { BulkWriter } from './writer.js';

export interface RedriveOptions extends IndexPair {
  deadLetterPath: string;
  transform: TransformFn;
  versioning: Versioning;
  batchBytes: number;
  signal?: AbortSignal;
}

export interface RedriveResult {
  /** dead letters read from the file */
  tried: number;
  /** now on the target */
  landed: number;
  /** the transform drops them now */
  dropped: number;
  /** no longer on the source: nothing to copy */
  goneFromSource: number;
  /** version conflicts: a newer state was already on the target */
  conflicts: number;
  /** failed again, kept in the dead-letter file */
  stillFailing: number;
}

export async function redrive(o: RedriveOptions): Promise<RedriveResult> {
  const letters = readDeadLetters(o.deadLetterPath);
  // One entry per id: the latest failure stands for the document.
  const byId = new Map<string, DeadLetter>();
  for (const l of letters) byId.set(l.id, l);
  const again: DeadLetter[] = [];
  const sink = { add: (l: DeadLetter[]) => again.push(...l) };
  const writer = new BulkWriter(o.target, o.targetIndex, {
    deadLetters: sink,
    maxBytes: o.batchBytes,
    signal: o.signal,
  });
  const out: RedriveResult = {
    tried: byId.size,
    landed: 0,
    dropped: 0,
    goneFromSource: 0,
    conflicts: 0,
    stillFailing: 0,
  };
  const all = [...byId.values()];
  for (let i = 0; i < all.length; i += 500) {
    const chunk = all.slice(i, i + 500);
    const got = await o.source.mget(
      o.sourceIndex,
      chunk.map((d) => ({ _id: d.id, routing: d.routing })),
      { signal: o.signal },
    );
    const hits: Hit[] = [];
    got.docs.forEach((d, k) => {
      if (d.found) hits.push({ ...d, _index: o.sourceIndex, _routing: d._routing ?? chunk[k]!.routing });
      else out.goneFromSource++;
    });
    const { ops, dropped } = await toWriteOps(hits, {
      transform: o.transform,
      versioning: o.versioning,
      sourceIndex: o.sourceIndex,
      deadLetters: sink,
    });
    out.dropped += dropped;
    const r = await writer.write(ops);
    out.landed += r.written;
    out.conflicts += r.conflicts;
  }
  out.stillFailing = again.length;
  writeFileAtomic(o.deadLetterPath, again.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return out;
}
