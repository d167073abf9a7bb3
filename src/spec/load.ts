/** Read, validate and resolve a migration spec. Errors name the field and the bad value; nothing is touched. */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import type { Auth, ClusterConfig } from '../cluster/transport.js';
import { CutoverError, EXIT } from '../store/errors.js';
import { type ClusterSpec, type Spec, type SpecInput, specSchema } from './schema.js';

export class SpecError extends CutoverError {
  override readonly name = 'SpecError';
  readonly exitCode = EXIT.badInput;
}

/** A spec validated and with every relative path made absolute. */
type Strategy = NonNullable<Spec['capture']['strategy']>;

export interface LoadedSpec extends Omit<Spec, 'capture'> {
  /** strategy resolved: seqno by default when there is a write alias, none otherwise */
  capture: Spec['capture'] & { strategy: Strategy };
  /** absolute path of the spec file ('' for specs built in code) */
  file: string;
  /** absolute: stateDir/name */
  migrationDir: string;
  /** resolved mappings/settings for the target, when given by file or inline */
  targetMappings?: Record<string, unknown>;
  targetSettings?: Record<string, unknown>;
  /** absolute transform module path */
  transformPath?: string;
  /** absolute cutover.postponeFlagFile */
  postponeFlagPath?: string;
  /** absolute cutover.revertTransform */
  revertTransformPath?: string;
}

function parseFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new SpecError(
      `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  try {
    return /\.json$/i.test(path) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new SpecError(
      `${what} ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let v = input;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

export function formatIssues(issues: z.core.$ZodIssue[], input: unknown): string {
  return issues
    .map((i) => {
      const field = i.path.length ? i.path.join('.') : '(spec)';
      const got = /password|apiKey|bearer|auth/i.test(field) ? '' : ` (got ${show(valueAt(input, i.path))})`;
      if (i.code === 'unrecognized_keys') return `${field}: unknown field(s) ${i.keys.join(', ')}`;
      return `${field}: ${i.message}${got}`;
    })
    .join('\n');
}

/** Validate an in-memory spec (library use, or a file's content). `baseDir` resolves relative paths. */
export function resolveSpec(input: unknown, baseDir: string, file = ''): LoadedSpec {
  const parsed = specSchema.safeParse(input);
  if (!parsed.success)
    throw new SpecError(
      `invalid spec${file ? ` ${file}` : ''}:\n${formatIssues(parsed.error.issues, input)}`,
    );
  const spec = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const objectOrFile = (v: string | Record<string, unknown> | undefined, what: string) => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return v;
    const content = parseFile(abs(v), what);
    if (!content || typeof content !== 'object' || Array.isArray(content))
      throw new SpecError(`${what} ${v} must hold an object`);
    return content as Record<string, unknown>;
  };
  const stateDir = abs(spec.stateDir);
  // Live capture needs a write alias to move in the freeze; without one there is nothing to switch atomically.
  const strategy: Strategy = spec.capture.strategy ?? (spec.aliases?.write ? 'seqno' : 'none');
  return {
    ...spec,
    capture: { ...spec.capture, strategy },
    file,
    stateDir,
    migrationDir: resolve(stateDir, spec.name),
    targetMappings: objectOrFile(spec.target.mappings, 'target.mappings file'),
    targetSettings: objectOrFile(spec.target.settings, 'target.settings file'),
    transformPath: spec.transform ? abs(spec.transform) : undefined,
    postponeFlagPath: spec.cutover.postponeFlagFile ? abs(spec.cutover.postponeFlagFile) : undefined,
    revertTransformPath: spec.cutover.revertTransform ? abs(spec.cutover.revertTransform) : undefined,
  };
}

export function loadSpec(
  path: string,
  overrides: (spec: Record<string, unknown>) => void = () => {},
): LoadedSpec {
  const file = resolve(path);
  const raw = parseFile(file, 'spec');
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new SpecError(`spec ${path} must be a YAML/JSON object`);
  overrides(raw as Record<string, unknown>);
  return resolveSpec(raw, dirname(file), file);
}

function secret(inline: string | undefined, envName: string | undefined, field: string): string {
  if (inline) return inline;
  if (envName) {
    const v = process.env[envName];
    if (!v) throw new SpecError(`${field}Env: environment variable ${envName} is not set`);
    return v;
  }
  throw new SpecError(`${field}: give it inline or through ${field}Env`);
}

/** Turn a cluster spec into transport config, resolving secrets from the environment. */
export function clusterConfig(c: ClusterSpec, field: string): ClusterConfig {
  let auth: Auth | undefined;
  const a = c.auth as Record<string, string | undefined> | undefined;
  if (a && 'username' in a)
    auth = { username: a.username!, password: secret(a.password, a.passwordEnv, `${field}.auth.password`) };
  else if (a && ('apiKey' in a || 'apiKeyEnv' in a))
    auth = { apiKey: secret(a.apiKey, a.apiKeyEnv, `${field}.auth.apiKey`) };
  else if (a && ('bearer' in a || 'bearerEnv' in a))
    auth = { bearer: secret(a.bearer, a.bearerEnv, `${field}.auth.bearer`) };
  return { url: c.url, auth, tls: c.tls, requestTimeoutMs: c.requestTimeoutMs };
}

export type { Spec, SpecInput };
