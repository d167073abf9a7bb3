/** Errors an operator acts on; each maps to a documented exit code (docs/cli.md). */

/** The request cannot be carried out as asked (bad spec, missing index, target exists...). Nothing was changed. */
export class PreflightError extends Error {
  override readonly name = 'PreflightError';
}

/** A safety gate refused to go on (dead letters, count mismatch). The state is kept; fix and rerun. */
export class GateError extends Error {
  override readonly name = 'GateError';
}

export const EXIT = {
  ok: 0,
  failed: 1,
  badInput: 2,
  gateRefused: 3,
  locked: 4,
  cluster: 5,
  interrupted: 130,
} as const;
