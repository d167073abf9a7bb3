/**
 * The error vocabulary and the exit-code contract of docs/cli.md. Every error an operator acts on carries its
 * exit code, so the CLI maps errors by asking them, never by guessing: whoever throws decides what it means.
 *
 *   2  bad input, found before anything changed          PreflightError, SpecError
 *   3  a gate refused to go on; the state is kept        GateError
 *   4  the migration is locked by a live process         LockError
 *   5  a cluster refused or could not be reached         ClusterError, TransportError, RetryBudgetExceeded,
 *                                                        AliasReadBackError
 *   130 interrupted by the operator                      Interrupted
 *   1  anything else: a bug or an unexpected failure
 */

export const EXIT = {
  ok: 0,
  failed: 1,
  badInput: 2,
  gateRefused: 3,
  locked: 4,
  cluster: 5,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What each exit code means, for machine-readable errors. */
export const EXIT_MEANING: Record<ExitCode, string> = {
  0: 'ok',
  1: 'unexpected failure',
  2: 'bad input: nothing was changed',
  3: 'a gate refused to go on: the state is kept, run again after fixing',
  4: 'locked by another live process',
  5: 'a cluster refused or could not be reached after retries',
  130: 'interrupted: run again to resume',
};

export abstract class CutoverError extends Error {
  abstract readonly exitCode: ExitCode;
}

/** The request cannot be carried out as asked (bad spec, missing index, target exists...). Nothing was changed. */
export class PreflightError extends CutoverError {
  override readonly name: string = 'PreflightError';
  readonly exitCode = EXIT.badInput;
}

/** A safety gate refused to go on (dead letters, count mismatch, proof, aliases moved by someone). State is kept. */
export class GateError extends CutoverError {
  override readonly name = 'GateError';
  readonly exitCode = EXIT.gateRefused;
}

/** The operator stopped the run (SIGINT/SIGTERM); checkpoints hold only acknowledged work, `run` resumes. */
export class Interrupted extends CutoverError {
  override readonly name = 'Interrupted';
  readonly exitCode = EXIT.interrupted;
}

/** The exit code an error stands for; anything that is not ours is an unexpected failure. */
export function exitCodeOf(e: unknown): ExitCode {
  return e instanceof CutoverError ? e.exitCode : EXIT.failed;
}
