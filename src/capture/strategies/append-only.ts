/**
 * `capture.strategy: append-only`: for indices the application only ever adds to. The write alias moves to the
 * target before the backfill, so new documents land there with no freeze at all; the backfill writes with
 * op_type=create (a document already on the target is newer than any copy of it). Reads stay on the source
 * until the switch. Updates or deletes would be lost, so preflight checks the source was only appended to.
 */
import type { Cluster } from '../../cluster/client.js';
import { migrationEnds, moveAliases } from '../../cutover/aliases.js';
import { COPY_SETTINGS } from '../../cutover/target.js';
import type { LoadedSpec } from '../../spec/load.js';
import { PreflightError } from '../../store/errors.js';
import type { Finding } from '../../verify/preflight.js';
import type { CaptureStrategy } from '../strategy.js';
import { pointInTime } from './point-in-time.js';

export function appendOnlyCapture(spec: LoadedSpec): CaptureStrategy {
  return {
    ...pointInTime,
    mode: 'append-only',
    summary:
      'append-only: the write alias moves to the target before the backfill; no write freeze, updates and deletes unsupported',
    createOnly: true,
    // The application writes to the target during the backfill, so it holds at least the source's documents.
    countGate: 'at-least',
    // Documents on the target that the source lacks are the application's new writes.
    proofSkipsTargetPass: true,
    // Those writes are acknowledged to users during the copy: they must not live on a single copy.
    copySettings: () => {
      const { 'index.number_of_replicas': _replicas, ...rest } = COPY_SETTINGS;
      return rest;
    },
    async preflight(f) {
      const write = spec.aliases?.write;
      if (!write)
        throw new PreflightError(
          'capture.strategy append-only: aliases.write is required (the write alias moves to the target first)',
        );
      if (spec.aliases?.read.includes(write))
        throw new PreflightError(
          `capture.strategy append-only: the write alias "${write}" is also a read alias; reads must stay on the source until the backfill is done, so they need an alias of their own`,
        );
      return [await appendOnlyFinding(f.source, f.sourceIndex, spec.capture.force)];
    },
    beforeCopy: [
      {
        name: 'move-write-alias',
        title: 'Move the write alias to the target before the backfill',
        changes: (s) => [
          `one _aliases request: ${s.aliases?.write} moves to ${s.target.index}; new documents land there from now on, with no write freeze`,
          'reads stay on the source until the backfill is done, so they do not see documents written from now on until the switch',
        ],
        async run(c) {
          const write = (c.state.aliases?.records ?? []).filter((r) => r.alias === c.spec.aliases?.write);
          const { source, target } = migrationEnds(c);
          const r = await moveAliases(write, source, target);
          c.audit.record({ event: 'write-alias-moved', alias: c.spec.aliases?.write, result: r });
          return 'continue';
        },
      },
    ],
  };
}

/**
 * An index that was only ever appended to has, on every shard, exactly one live document per operation:
 * max_seq_no + 1 = the shard's document count. Any update, delete or failed operation breaks the equality.
 */
async function appendOnlyFinding(source: Cluster, index: string, forced: boolean): Promise<Finding> {
  const shards = await source.shardSeqNos(index);
  const touched: string[] = [];
  for (const [n, s] of shards.entries()) {
    const res = await source.search(
      index,
      { size: 0, track_total_hits: true },
      { preference: `_shards:${n}` },
    );
    const live = typeof res.hits.total === 'number' ? res.hits.total : (res.hits.total?.value ?? 0);
    if (s.maxSeqNo + 1 !== live)
      touched.push(`shard ${n}: ${s.maxSeqNo + 1} operations for ${live} documents`);
  }
  if (touched.length === 0)
    return {
      check: 'capture.append-only',
      severity: 'ok',
      message: `${index} was only ever appended to (one operation per document on every shard)`,
    };
  return {
    check: 'capture.append-only',
    severity: forced ? 'warn' : 'block',
    message: `${index} shows updated or deleted documents (${touched.join('; ')}): with append-only capture an update or delete made during the backfill would be lost or undone`,
    action: forced
      ? 'forced by capture.force'
      : 'use the default capture (pause writers) or set capture.force if these were one-off repairs',
  };
}
