/** Read, validate and resolve a migration spec. Errors name the field and the bad value; nothing is touched. */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { clusterNotice } from '../cluster/notices.js';
import { hasUserinfo, redactUrl, redactUrlsIn } from '../cluster/redact.js';
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
  /** absolute alerts.hooksPath */
  hooksPath?: string;
  /** cutover.warmup.queries, read from its file when given as one */
  warmupQueries?: Array<Record<string, unknown>>;
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
    // The parser quotes the offending line, which may be a URL with a password in it.
    throw new SpecError(
      `${what} ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${redactUrlsIn((e as Error).message)}`,
    );
  }
}

/** The bad value, for the message: a URL field is shown without its userinfo, whether or not it parses. */
function show(value: unknown, field: string): string {
  if (value === undefined) return 'nothing';
  const safe = typeof value === 'string' && /(^|\.)url$/i.test(field) ? redactUrl(value) : value;
  const s = redactUrlsIn(JSON.stringify(safe));
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
      const got = /password|apiKey|bearer|auth/i.test(field)
        ? ''
        : ` (got ${show(valueAt(input, i.path), field)})`;
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
    hooksPath: spec.alerts.hooksPath ? abs(spec.alerts.hooksPath) : undefined,
    warmupQueries: warmupQueries(spec.cutover.warmup?.queries, abs),
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

/** The setting a secret comes from, for messages: "source.cluster.auth.passwordEnv (ES_PASSWORD)". */
function secretSetting(inline: string | undefined, envName: string | undefined, field: string): string {
  return inline ? field : `${field}Env (${envName})`;
}

/**
 * Turn a cluster spec into transport config, resolving secrets from the environment. `field` ("source.cluster")
 * travels with the config so a cluster failure names the settings to check.
 */
export function clusterConfig(c: ClusterSpec, field: string): ClusterConfig {
  let auth: Auth | undefined;
  let authSetting: string | undefined;
  const a = c.auth as Record<string, string | undefined> | undefined;
  if (a && 'username' in a) {
    auth = { username: a.username!, password: secret(a.password, a.passwordEnv, `${field}.auth.password`) };
    authSetting = `${field}.auth.username (${a.username}) with ${secretSetting(a.password, a.passwordEnv, `${field}.auth.password`)}`;
  } else if (a && ('apiKey' in a || 'apiKeyEnv' in a)) {
    auth = { apiKey: secret(a.apiKey, a.apiKeyEnv, `${field}.auth.apiKey`) };
    authSetting = secretSetting(a.apiKey, a.apiKeyEnv, `${field}.auth.apiKey`);
  } else if (a && ('bearer' in a || 'bearerEnv' in a)) {
    auth = { bearer: secret(a.bearer, a.bearerEnv, `${field}.auth.bearer`) };
    authSetting = secretSetting(a.bearer, a.bearerEnv, `${field}.auth.bearer`);
  }
  // Two sources of credentials: the transport uses auth and drops the URL's, so say so rather than guess silently.
  if (auth && hasUserinfo(c.url))
    clusterNotice(
      `${field}.url carries credentials and ${field}.auth is set too: using ${authSetting}; the credentials in the URL are ignored (remove them from ${field}.url)`,
    );
  return { url: c.url, auth, tls: c.tls, requestTimeoutMs: c.requestTimeoutMs, label: field, authSetting };
}

export type { Spec, SpecInput };

/** A webhook's URL and PagerDuty key, resolved from the environment; never put in a message or a log. */
export function webhookSecrets(
  w: LoadedSpec['alerts']['webhooks'][number],
  i: number,
): { url: string; routingKey?: string } {
  const field = `alerts.webhooks[${i}]`;
  const url = secret(w.url, w.urlEnv, `${field}.url`);
  if (w.format !== 'pagerduty') return { url };
  return { url, routingKey: secret(w.routingKey, w.routingKeyEnv, `${field}.routingKey`) };
}

function warmupQueries(
  q: Array<Record<string, unknown>> | string | undefined,
  abs: (p: string) => string,
): Array<Record<string, unknown>> | undefined {
  if (q === undefined || Array.isArray(q)) return q;
  const v = parseFile(abs(q), 'cutover.warmup.queries file');
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => !x || typeof x !== 'object' || Array.isArray(x)))
    throw new SpecError(`cutover.warmup.queries: ${q} must hold a JSON array of search bodies (objects)`);
  return v as Array<Record<string, unknown>>;
}
