/**
 * The user's transform: `(doc, meta) => doc | null`, loaded once and used by every path that moves a document
 * (backfill, sample dry run, verification), so they can never disagree about what the target should hold.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { SpecError } from '../spec/load.js';
import { isParseError, locateSyntaxError } from './syntax-error.js';

export interface DocMeta {
  id: string;
  index: string;
  routing?: string;
  seqNo?: number;
  primaryTerm?: number;
}

export type Doc = Record<string, unknown>;
export type TransformFn = (
  doc: Doc,
  meta: Readonly<DocMeta>,
) => Doc | null | undefined | Promise<Doc | null | undefined>;

export class TransformError extends Error {
  override readonly name = 'TransformError';
  constructor(
    readonly docId: string,
    override readonly cause: unknown,
  ) {
    super(
      `transform threw on document ${JSON.stringify(docId)}: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

export const identity: TransformFn = (doc) => doc;

export async function loadTransform(path: string | undefined): Promise<TransformFn> {
  if (!path) return identity;
  let mod: { default?: unknown; transform?: unknown };
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (e) {
    const at = isParseError(e) ? locateSyntaxError(path) : undefined;
    if (at)
      throw new SpecError(
        `transform: ${at.file}:${at.line}:${at.column}: ${at.message}${at.file === path ? '' : ` (imported by ${path})`}`,
      );
    throw new SpecError(`transform: cannot load ${path}: ${(e as Error).message}`);
  }
  const fn = mod.default ?? mod.transform;
  if (typeof fn !== 'function')
    throw new SpecError(`transform ${path} must export a default function (doc, meta) => doc | null`);
  return fn as TransformFn;
}

/** Apply the transform; null means "drop". A throw is wrapped with the document id so the operator can find it. */
export async function applyTransform(fn: TransformFn, doc: Doc, meta: DocMeta): Promise<Doc | null> {
  try {
    // structuredClone keeps a transform that mutates its input from corrupting a retried or re-verified copy.
    const out = await fn(fn === identity ? doc : structuredClone(doc), meta);
    if (out === null || out === undefined) return null;
    if (typeof out !== 'object' || Array.isArray(out))
      throw new Error(`returned ${Array.isArray(out) ? 'an array' : typeof out}, expected an object or null`);
    return out;
  } catch (e) {
    throw new TransformError(meta.id, e);
  }
}

/** The digest of the transform module, so a worker with another transform than the runner's is refused. */
export function transformDigest(path: string | undefined): string | null {
  return path ? createHash('sha256').update(readFileSync(path)).digest('hex') : null;
}
