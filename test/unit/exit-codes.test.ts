/**
 * Every error an operator acts on maps to its documented exit code (docs/cli.md), including those no cheap
 * end-to-end test can provoke (a bulk retry budget spent under a 429 storm, an alias read-back that disagrees).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterError, TransportError } from '../../src/cluster/errors.js';
import { RetryBudgetExceeded } from '../../src/copy/writer.js';
import { AliasReadBackError } from '../../src/cutover/aliases.js';
import { SpecError } from '../../src/spec/load.js';
import { EXIT, exitCodeOf, GateError, Interrupted, PreflightError } from '../../src/store/errors.js';
import { LockError } from '../../src/store/lock.js';
import { PreflightRefused } from '../../src/verify/inspect.js';

describe('exit codes of errors', () => {
  const cases: Array<[string, unknown, number]> = [
    ['SpecError', new SpecError('copy.batchDocs: ...'), EXIT.badInput],
    ['PreflightError', new PreflightError('source.index: ...'), EXIT.badInput],
    ['PreflightRefused', new PreflightRefused('preflight refused', []), EXIT.badInput],
    ['GateError', new GateError('cutover refused: ...'), EXIT.gateRefused],
    ['LockError', new LockError('locked', undefined, false), EXIT.locked],
    ['ClusterError', new ClusterError(503, 'unavailable', 'x', 'GET', '/'), EXIT.cluster],
    ['TransportError', new TransportError('refused', 'ECONNREFUSED', 'GET', '/'), EXIT.cluster],
    ['RetryBudgetExceeded', new RetryBudgetExceeded('3 document(s) still refused after 90 s'), EXIT.cluster],
    ['AliasReadBackError', new AliasReadBackError('read-back differs'), EXIT.cluster],
    ['Interrupted', new Interrupted('interrupted in step copy'), EXIT.interrupted],
    ['a plain Error', new Error('bug'), EXIT.failed],
    ['a thrown string', 'bug', EXIT.failed],
  ];
  for (const [name, err, code] of cases)
    it(`${name} exits ${code}`, () => {
      assert.equal(exitCodeOf(err), code);
    });
});
