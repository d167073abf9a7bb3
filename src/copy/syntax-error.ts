/**
 * Where a transform's syntax error is: file, line and column. Node's in-process import of an ES module that
 * fails to parse says only "Unexpected token ';'" (Node 20 keeps the position in a private symbol it prints only
 * for uncaught errors), so the module graph is imported again in a child Node whose uncaught error report
 * carries the position. A graph that fails to parse is never evaluated, so the child runs none of the user's
 * code; it is only asked when the in-process error came from the parser, not from code that ran.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface SyntaxPosition {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** A SyntaxError from parsing has no frame in user code; one thrown by running code (JSON.parse...) does. */
export function isParseError(e: unknown): e is SyntaxError {
  if (!(e instanceof SyntaxError)) return false;
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  return frames.every((l) => /\(node:|at node:|\(internal\//.test(l));
}

/**
 * Read Node's uncaught-error report: "<file>:<line>", the source line, a caret line under the bad token, a blank
 * line, then "SyntaxError: <message>". The caret line copies the source's tabs, so its offset is the column.
 */
export function parseSyntaxReport(
  report: string,
  readLine?: (file: string, line: number) => string | undefined,
) {
  const lines = report.replace(/\r/g, '').split('\n');
  const head = /^(.+):(\d+)$/.exec(lines[0] ?? '');
  const messageLine = lines.find((l) => /^SyntaxError: /.test(l));
  if (!head || !messageLine) return undefined;
  const file = head[1]!.startsWith('file:') ? fileURLToPath(head[1]!) : head[1]!;
  const line = Number(head[2]);
  const caret = lines[2]?.indexOf('^') ?? -1;
  // "Unexpected end of input" has no caret: the error is past the last character of that line.
  const column = caret >= 0 ? caret + 1 : (readLine?.(file, line) ?? '').length + 1;
  return { file, line, column, message: messageLine } satisfies SyntaxPosition;
}

function lineOf(file: string, line: number): string | undefined {
  try {
    return readFileSync(file, 'utf8').split(/\r?\n/)[line - 1];
  } catch {
    return undefined;
  }
}

/** The parent's loaders (tsx for a .ts transform) apply in the child too; a debugger or test runner does not. */
function loaderArgs(): string[] {
  return process.execArgv.filter((a) => !/^--(inspect|test|eval|print|check)/.test(a));
}

/** Position of the parse error in the module graph of `path`, or undefined when the child cannot say. */
export function locateSyntaxError(path: string): SyntaxPosition | undefined {
  const child = spawnSync(
    process.execPath,
    [...loaderArgs(), '--input-type=module', '--eval', 'await import(process.env.CUTOVER_TRANSFORM_URL)'],
    {
      env: { ...process.env, CUTOVER_TRANSFORM_URL: pathToFileURL(path).href },
      encoding: 'utf8',
      timeout: 15_000,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  if (child.status === 0 || typeof child.stderr !== 'string') return undefined;
  return parseSyntaxReport(child.stderr, lineOf);
}
