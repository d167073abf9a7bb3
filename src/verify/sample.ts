/**
 * Dry run before the copy: index a sample of transformed source documents into a scratch index that has the
 * target's mappings and settings. A mapping that rejects documents is found now, not hours into the copy.
 */
import type { Cluster } from '../cluster/client.js';
import type { DeadLetter } from '../copy/dead-letters.js';
import { toWriteOps } from '../copy/slice-copier.js';
import type { TransformFn } from '../copy/transform.js';
import { BulkWriter } from '../copy/writer.js';
import type { TargetBody } from '../cutover/target.js';
import { deepMerge } from '../cutover/target.js';

export interface SampleResult {
  sampled: number;
  rejected: DeadLetter[];
}

export async function sampleDryRun(
  source: Cluster,
  target: Cluster,
  sourceIndex: string,
  scratchIndex: string,
  body: TargetBody,
  transform: TransformFn,
  size: number,
): Promise<SampleResult> {
  const res = await source.search(sourceIndex, {
    size,
    seq_no_primary_term: true,
    // Random order spreads the sample over shards and over the index's history.
    query: {
      function_score: {
        query: { match_all: {} },
        random_score: { seed: Date.now() % 100000, field: '_seq_no' },
      },
    },
  });
  if (res._shards.failed > 0)
    throw new Error(`sample search on ${sourceIndex}: ${res._shards.failed} shards failed`);
  const hits = res.hits.hits;
  const rejected: DeadLetter[] = [];
  const sink = { add: (l: DeadLetter[]) => rejected.push(...l) };
  if (await target.indexExists(scratchIndex)) await target.deleteIndex(scratchIndex);
  const settings = deepMerge(body.settings, { index: { number_of_replicas: 0 } });
  await target.createIndex(scratchIndex, { settings, mappings: body.mappings });
  try {
    const { ops } = await toWriteOps(hits, {
      transform,
      versioning: 'seqno',
      sourceIndex,
      deadLetters: sink,
    });
    const writer = new BulkWriter(target, scratchIndex, { deadLetters: sink, maxBytes: 5 * 1024 * 1024 });
    await writer.write(ops);
  } finally {
    await target.deleteIndex(scratchIndex).catch(() => undefined);
  }
  return { sampled: hits.length, rejected };
}
