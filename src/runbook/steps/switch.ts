/**
 * The switch: the aliases move to the target in one atomic request (how, and under which freeze, is the capture
 * strategy's), then the target gets its last settings back and the old index is kept for the retention window.
 */

import { sameCluster } from '../../cutover/aliases.js';
import { restoreTargetSettings } from '../../cutover/target-settings.js';
import { warmUp } from '../../cutover/warmup.js';
import type { LoadedSpec } from '../../spec/load.js';
import { GateError } from '../../store/errors.js';
import { specAliasNames } from '../../verify/inspect.js';
import type { Ctx, Step } from '../context.js';
import { proveAndJudge } from '../proof-gate.js';

export const switchStep: Step = {
  name: 'switch-aliases',
  title: 'Switch the aliases to the target (one atomic request; two across clusters)',
  done: (c) => !!c.state.completed['switch-aliases'],
  changes: (spec, c) => {
    const names = specAliasNames(spec);
    const manual = spec.cutover.mode === 'manual' ? ' (waits for `cutover cutover`)' : '';
    if (names.length === 0)
      return [
        'no aliases in the spec: nothing to switch; the application must be pointed at the target by hand',
      ];
    const across = !sameCluster(c.source, c.target);
    return [
      across
        ? `two _aliases requests on two clusters${manual}: first add ${names.join(', ')} on ${c.target.displayUrl} to ${spec.target.index}, with the options they have on the source (is_write_index, filter, routing, hidden), so nobody who moved to the target cluster finds an alias missing; then remove them from ${spec.source.index} on ${c.source.displayUrl}, so writers still on the source cluster cannot land in the old index by alias (a crash between the two: the next command finishes the removal)`
        : `one _aliases request: remove ${names.join(', ')} from the source, add them to ${spec.target.index}${manual}`,
      ...(spec.cutover.warmup
        ? [
            `before it: warm-up, ${spec.warmupQueries?.length ?? 0} query(ies) run ${spec.cutover.warmup.runs} times each on ${spec.target.index} (and on the old index, for comparison); a query the new index refuses stops the switch`,
          ]
        : []),
      ...(c.strategy.switchNotes?.(spec) ?? []),
      ...(across && spec.cutover.mode === 'manual' ? manualSteps(spec, c) : []),
      ...(across && spec.cutover.mode !== 'manual'
        ? [
            `the application must then talk to ${c.target.displayUrl} (same alias names): move it right after the switch, or use cutover.mode manual to be told when`,
          ]
        : []),
    ];
  },
  async run(c) {
    if (c.spec.cutover.mode === 'manual' && !c.cutoverNow) {
      c.state.phase = 'awaiting-cutover';
      c.reporter.info('gates passed; waiting for `cutover cutover <spec>` to switch the aliases');
      if (!sameCluster(c.source, c.target))
        c.reporter.info(`the steps from here:\n  ${manualSteps(c.spec, c).join('\n  ')}`);
      return 'pause';
    }
    const veto = await c.vetoSwitch?.();
    if (veto) {
      c.audit.record({ event: 'switch-vetoed', why: veto });
      throw new GateError(
        `switch vetoed: ${veto}. Nothing was switched and the catch-up position is kept: run again once the hook allows it`,
      );
    }
    const warm = c.spec.cutover.warmup;
    if (warm && c.spec.warmupQueries) {
      const w = await warmUp(
        {
          source: c.source,
          sourceIndex: c.state.sourceIndex!,
          target: c.target,
          targetIndex: c.spec.target.index,
        },
        c.spec.warmupQueries,
        warm.runs,
      );
      c.state.warmup = w;
      await c.store.save(c.state);
      c.audit.record({ event: 'warmed-up', queries: w });
      for (const q of w)
        c.reporter.info(
          `warm-up query ${q.query}: new index first ${q.targetFirstMs} ms, median ${q.targetMedianMs} ms${q.sourceMedianMs === undefined ? '' : `; old index median ${q.sourceMedianMs} ms`}`,
        );
    }
    // Time has passed since the copy was proven: prove it again right before a manual switch.
    if (c.cutoverNow && c.spec.verify.mode !== 'off') await proveAndJudge(c, 'before the switch');
    const r = await c.strategy.switchAliases(c);
    // Tombstones were kept through the switch; nothing can resurrect a document on the target any more.
    await restoreTargetSettings(c);
    if (Object.keys(c.state.parkedSettings ?? {}).length) {
      // Lifecycle policy back on, now that the target is the index the aliases (and a rollover alias) name.
      await c.target.putSettings(c.spec.target.index, c.state.parkedSettings!);
      c.audit.record({ event: 'lifecycle-settings-applied', settings: c.state.parkedSettings });
    }
    const now = new Date();
    c.state.cutoverAt = now.toISOString();
    // The old index is kept from here; cleanup reads cutover.retentionHours again when it runs.
    c.state.retainUntil = new Date(now.getTime() + c.spec.cutover.retentionHours * 3_600_000).toISOString();
    // Also after a crash between the alias request and this step's end ('already'): the cursors were saved.
    if (c.spec.cutover.revertWindowMinutes > 0 && c.state.revertCursors)
      c.state.revertUntil ??= new Date(
        now.getTime() + c.spec.cutover.revertWindowMinutes * 60_000,
      ).toISOString();
    c.audit.record({
      event: 'aliases-switched',
      result: r,
      to: c.spec.target.index,
      retainUntil: c.state.retainUntil,
    });
    c.state.phase = 'cut-over';
    // A refusal from an earlier try is history now, not the migration's state.
    c.state.lastError = undefined;
    return 'continue';
  },
};

/**
 * Manual mode across clusters: what the operator does, in order. The application has to move to another URL, which
 * no alias request can do; until it has moved, its writes through the source cluster fail (the aliases are gone
 * there), so the steps put the switch and the move close together and end with a check that the source is quiet.
 */
export function manualSteps(spec: LoadedSpec, c: Pick<Ctx, 'source' | 'target'>): string[] {
  const file = spec.file || '<spec>';
  const read = spec.aliases?.read ?? [];
  const write = spec.aliases?.write;
  const names = [
    read.length ? `read through ${read.join(', ')}` : '',
    write ? `write through ${write}` : '',
  ].filter(Boolean);
  return [
    `manual step 1: \`cutover cutover ${file}\` proves the copy again, then switches (the aliases are created on ${c.target.displayUrl} and removed from ${c.source.displayUrl}); from then on the application's writes through the source cluster fail until step 2`,
    `manual step 2: point the application at ${c.target.displayUrl} (${names.join(', ') || 'by the index name ' + spec.target.index}: the same names as before) and roll it out`,
    `manual step 3: \`cutover source-writes ${file}\` reports the writes ${spec.source.index} still receives (index_total/delete_total over a few seconds) and any index named like an alias that writers auto-created on the source cluster; 0 writes/s means the application has moved`,
  ];
}
