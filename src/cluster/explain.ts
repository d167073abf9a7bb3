/**
 * Cluster failures in words an operator can act on: each message names the spec field to check (the URL, the
 * auth setting), the address, and how long it was retried. Pure text over already-redacted inputs, so nothing
 * here can leak a secret the transport has not scrubbed.
 */
import { type ClusterError, TransportError } from './errors.js';

export interface FailureContext {
  /** spec field of the cluster, e.g. "source.cluster"; absent for clusters built in code */
  label?: string;
  /** the cluster URL, redacted */
  displayUrl: string;
  /** where the credentials come from, e.g. "source.cluster.auth.passwordEnv (ES_PASSWORD)"; absent: none sent */
  authSetting?: string;
}

function who(ctx: FailureContext): string {
  return ctx.label ?? `cluster ${ctx.displayUrl}`;
}

function urlField(ctx: FailureContext): string {
  return ctx.label ? `${ctx.label}.url` : 'the cluster URL';
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/** TLS spoken to a plain-HTTP port: OpenSSL reads the HTTP answer as a TLS record with a bad version. */
function plainHttpToTls(err: TransportError, ctx: FailureContext): boolean {
  return (
    ctx.displayUrl.startsWith('https:') &&
    (err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(err.message))
  );
}

/** The short cause, used both in retry notices and in the final message. */
function cause(err: ClusterError | TransportError, ctx: FailureContext): string {
  if (err instanceof TransportError && err.code === 'ECONNREFUSED')
    return `connection refused by ${err.address ?? hostOf(ctx.displayUrl)} (${err.method} ${err.path})`;
  return err.message;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The final message of a request that failed, after `retries` retries over `elapsedMs`. */
export function explainFailure(
  err: ClusterError | TransportError,
  ctx: FailureContext,
  retries: number,
  elapsedMs: number,
): string {
  const retried = retries > 0 ? `; retried ${retries} time(s) over ${seconds(elapsedMs)} s` : '';
  if (err instanceof TransportError) {
    if (plainHttpToTls(err, ctx))
      return `${who(ctx)}: the server at ${ctx.displayUrl} answered plain HTTP to a TLS request: use http:// in ${urlField(ctx)}`;
    if (err.code === 'ECONNREFUSED')
      return `${who(ctx)}: ${cause(err, ctx)}${retried}: is the cluster running, and is ${urlField(ctx)} (${ctx.displayUrl}) right?`;
    if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN')
      return `${who(ctx)}: ${err.message}${retried}: the host of ${ctx.displayUrl} does not resolve; check ${urlField(ctx)}`;
    return `${who(ctx)}: ${err.message}${retried}`;
  }
  if (err.status === 401) {
    const check = ctx.authSetting
      ? `the credentials were refused; check ${ctx.authSetting}`
      : `the cluster wants credentials and ${ctx.label ? `${ctx.label}.auth` : 'auth'} is not set`;
    return `${who(ctx)}: ${err.message}: ${check}`;
  }
  return `${who(ctx)}: ${err.message}${retried}`;
}

/** One line while a request is retried: what failed, which attempt comes next, and when it gives up. */
export function retryNotice(
  err: ClusterError | TransportError,
  ctx: FailureContext,
  nextAttempt: number,
  delayMs: number,
  budgetMs: number,
): string {
  return `${who(ctx)}: ${cause(err, ctx)}; retrying (attempt ${nextAttempt}, next in ${delayMs} ms, gives up ${seconds(budgetMs)} s after the first try)`;
}
