/**
 * What the modes without catch-up rounds share (`none`, `append-only`): the aliases move in one request with no
 * freeze, and a rollback moves them back; writes made on the target since are not copied back.
 */

import { migrationEnds, moveAliases } from '../../cutover/aliases.js';
import { COPY_SETTINGS } from '../../cutover/target.js';
import type { CaptureContext, CaptureStrategy } from '../strategy.js';

type Shared = Pick<
  CaptureStrategy,
  | 'keepsTombstonesUntilSwitch'
  | 'canPostpone'
  | 'copyNotes'
  | 'afterCopy'
  | 'afterSwitch'
  | 'alongsideCopy'
  | 'captureDeadLetters'
  | 'proofCompanion'
  | 'switchAliases'
  | 'rollBack'
  | 'revertWindowOpen'
  | 'copySettings'
>;

export const pointInTime: Shared = {
  keepsTombstonesUntilSwitch: false,
  canPostpone: false,
  copyNotes: () => [],
  afterCopy: [],
  afterSwitch: [],
  alongsideCopy: (_c, copy) => copy({}),
  captureDeadLetters: () => 0,
  proofCompanion: () => undefined,
  copySettings: () => COPY_SETTINGS,
  switchAliases: (c) => {
    const { source, target } = migrationEnds(c);
    return moveAliases(c.state.aliases?.records ?? [], source, target);
  },
  rollBack: (c: CaptureContext) => {
    if (c.state.cutoverAt)
      c.reporter.warn(
        `writes made on ${c.spec.target.index} since the switch at ${c.state.cutoverAt} are not on ${c.state.sourceIndex}: readers lose sight of them`,
      );
    const { source, target } = migrationEnds(c);
    return moveAliases(c.state.aliases?.records ?? [], target, source);
  },
  revertWindowOpen: () => false,
};
