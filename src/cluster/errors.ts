/** Typed errors for everything that crosses the HTTP boundary. Messages never carry credentials. */
import { CutoverError, EXIT } from '../store/errors.js';

export interface ErrorCause {
  type?: string;
  reason?: string;
}

/** The cluster answered with an error status; `type`/`reason` come from the Elasticsearch error body. */
export class ClusterError extends CutoverError {
  override readonly name = 'ClusterError';
  readonly exitCode = EXIT.cluster;
  constructor(
    readonly status: number,
    readonly type: string,
    readonly reason: string,
    readonly method: string,
    readonly path: string,
    readonly rootCause?: ErrorCause[],
  ) {
    super(`${method} ${path} -> ${status} ${type}: ${reason}`);
  }

  /** Rejections and breakers clear up by themselves; retrying them is safe for idempotent work. */
  get transient(): boolean {
    return isTransientFailure(this.status, this.type);
  }
}

/** No HTTP answer at all: connection refused/reset, timeout, TLS failure. */
export class TransportError extends CutoverError {
  override readonly name = 'TransportError';
  readonly exitCode = EXIT.cluster;
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly method: string,
    readonly path: string,
    /** host:port the connection went to, when the network stack says */
    readonly address?: string,
  ) {
    super(`${method} ${path} failed: ${message}`);
  }

  /** Network hiccups clear up; a certificate that fails verification does not, so it is never retried. */
  get transient(): boolean {
    return !(this.code && NON_RETRYABLE_CODES.test(this.code));
  }
}

const NON_RETRYABLE_CODES =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|PIN_MISMATCH|ERR_SSL|ERR_INVALID_URL|ENOTFOUND/;

const TRANSIENT_TYPES = new Set([
  'es_rejected_execution_exception',
  'rejected_execution_exception',
  'circuit_breaking_exception',
  'cluster_block_exception_retryable',
  'unavailable_shards_exception',
  'no_shard_available_action_exception',
  'node_not_connected_exception',
  'node_disconnected_exception',
  'connect_transport_exception',
  'process_cluster_event_timeout_exception',
  'timeout_exception',
  'receive_timeout_transport_exception',
]);

export function isTransientFailure(status: number, type: string | undefined): boolean {
  if (status === 429 || status === 502 || status === 503 || status === 504) return true;
  return type !== undefined && TRANSIENT_TYPES.has(type);
}

/** Turn an Elasticsearch/OpenSearch error body (any of its historical shapes) into type + reason. */
export function parseErrorBody(body: unknown): { type: string; reason: string; rootCause?: ErrorCause[] } {
  if (body && typeof body === 'object') {
    const err = (body as { error?: unknown }).error;
    if (typeof err === 'string') return { type: 'error', reason: err };
    if (err && typeof err === 'object') {
      const e = err as { type?: string; reason?: string; root_cause?: ErrorCause[]; caused_by?: ErrorCause };
      const reason = e.reason ?? e.caused_by?.reason ?? JSON.stringify(err).slice(0, 500);
      return { type: e.type ?? 'unknown_error', reason, rootCause: e.root_cause };
    }
    const msg = (body as { message?: unknown }).message;
    if (typeof msg === 'string') return { type: 'error', reason: msg };
  }
  if (typeof body === 'string' && body.length > 0) return { type: 'http_error', reason: body.slice(0, 500) };
  return { type: 'http_error', reason: 'no error body' };
}
