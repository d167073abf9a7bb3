/**
 * The migration spec: one file an operator writes, reviews and keeps. Every CLI flag maps onto a field here.
 * The same zod schema validates input, gives the TypeScript types and generates schema/migration.schema.json.
 */
import { z } from 'zod';

const secretRef = {
  /** read the secret from this environment variable (preferred: secrets stay out of files) */
  env: z.string().min(1).describe('environment variable holding the secret'),
};

export const authSchema = z
  .union(
    [
      z.strictObject({
        username: z.string().min(1),
        password: z.string().min(1).optional().describe('inline password (prefer passwordEnv)'),
        passwordEnv: secretRef.env.optional(),
      }),
      z.strictObject({ apiKey: z.string().min(1).optional(), apiKeyEnv: secretRef.env.optional() }),
      z.strictObject({ bearer: z.string().min(1).optional(), bearerEnv: secretRef.env.optional() }),
    ],
    {
      error:
        'expected { username, password | passwordEnv }, { apiKey | apiKeyEnv } or { bearer | bearerEnv }',
    },
  )
  .describe('basic auth, API key (base64 id:key) or bearer token');

export const clusterSchema = z.strictObject({
  // The message never quotes the value: a URL may carry a password (load.ts shows it redacted).
  url: z
    .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL with a valid host and port' })
    .describe('http(s)://host:port of the cluster'),
  auth: authSchema.optional(),
  tls: z
    .strictObject({
      caFile: z.string().min(1).optional().describe('PEM file of the CA'),
      caFingerprint: z
        .string()
        .regex(/^([0-9a-fA-F]{2}:?){32}$/, 'a SHA-256 fingerprint: 64 hex digits, colons optional')
        .optional(),
      insecure: z.boolean().optional().describe('turn certificate verification off (never the default)'),
    })
    .optional(),
  requestTimeoutMs: z.number().int().positive().optional(),
});

const jsonObject = z.record(z.string(), z.unknown());

export const specSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, 'lowercase letters, digits, ".", "_", "-"; 1 to 100 characters')
    .describe('migration id: names the state directory and the lock'),
  source: z.strictObject({
    cluster: clusterSchema,
    index: z.string().min(1).describe('source index, or an alias pointing at exactly one index'),
  }),
  target: z.strictObject({
    cluster: clusterSchema.optional().describe('defaults to the source cluster'),
    index: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._+-]*$/, 'a valid index name: lowercase, no spaces, not starting with _ - +')
      .max(255),
    mappings: z
      .union([z.string().min(1), jsonObject])
      .optional()
      .describe('file path (JSON/YAML) or inline mappings; absent: copy the source mappings'),
    settings: z
      .union([z.string().min(1), jsonObject])
      .optional()
      .describe('file path or inline index settings; absent: copy the source settings that can be copied'),
    mappingOverrides: jsonObject
      .optional()
      .describe('deep-merged into the mappings (e.g. a changed field type)'),
    settingOverrides: jsonObject.optional().describe('deep-merged into the settings (e.g. number_of_shards)'),
    reuse: z.boolean().default(false).describe('accept an existing target whose mappings match'),
    translate: z
      .strictObject({
        keep: z
          .array(
            z.enum([
              '_type',
              '_field_names',
              'index.soft_deletes.enabled',
              'index.max_adjacency_matrix_filters',
              'index.frozen',
              'index.search.throttled',
              'index.mapping.single_type',
            ]),
          )
          .default([])
          .describe(
            'translations of the source body for the target version that are not wanted (plan lists each one it makes); the target may then refuse the body, and preflight says so',
          ),
      })
      .prefault({})
      .describe('what cutover changes in the source mappings/settings so the target version accepts them'),
  }),
  aliases: z
    .strictObject({
      read: z.array(z.string().min(1)).default([]).describe('aliases the application reads through'),
      write: z
        .string()
        .min(1)
        .optional()
        .describe('alias the application writes through (may equal a read alias)'),
    })
    .optional(),
  copy: z
    .strictObject({
      batchDocs: z
        .number()
        .int()
        .min(1)
        .max(10_000)
        .default(500)
        .describe(
          'documents per page and bulk: 500 keeps peak RSS under 256 MB for ~1 KB documents (docs/benchmarks.md)',
        ),
      batchBytes: z
        .number()
        .int()
        .min(1024)
        .max(100 * 1024 * 1024)
        .default(8 * 1024 * 1024),
      concurrency: z
        .number()
        .int()
        .min(1)
        .max(64)
        .default(4)
        .describe(
          'slices copied at once (a large shard is read in several _seq_no ranges when this is above the shard count)',
        ),
      maxDocsPerSecond: z.number().min(0).default(0).describe('0: unthrottled'),
      keepAlive: z
        .string()
        .regex(/^\d+[smh]$/, 'a duration like 5m')
        .default('5m'),
      versioning: z
        .enum(['seqno', 'source-version'])
        .default('seqno')
        .describe(
          'seqno: version = source _seq_no + 1; source-version: carry the source _version (app uses external versions)',
        ),
      maxDeadLetters: z
        .number()
        .int()
        .min(0)
        .default(0)
        .describe('dead letters tolerated before cutover is refused'),
      sampleSize: z
        .number()
        .int()
        .min(0)
        .max(10_000)
        .default(1000)
        .describe('documents test-indexed before the copy'),
      gzip: z.boolean().default(false),
      throttle: z
        .strictObject({
          enabled: z
            .boolean()
            .default(true)
            .describe(
              'closed loop: halve the rate when the target (or source) shows pain (write queue over 75 % of queue_size, rejections, 429s, heap over 85 %, a circuit breaker over 90 %, bulk latency over 3x its baseline, source search latency over 2x its baseline), raise it step by step when all is clear; maxDocsPerSecond is the ceiling (0: the best throughput the copy measured is the reference)',
            ),
          floorDocsPerSecond: z
            .number()
            .min(1)
            .default(50)
            .describe('the closed loop never slows the copy below this'),
          intervalMs: z
            .number()
            .int()
            .min(100)
            .max(600_000)
            .default(5000)
            .describe('how often the signals are read (one _nodes/stats per cluster) and the rate decided'),
        })
        .prefault({}),
      engine: z
        .enum(['client', 'reindex'])
        .default('client')
        .describe(
          "client: cutover reads and writes every document (transform, newest-first, the write proxy); reindex: the cluster's own _reindex copies (slices=auto on one cluster, from remote across clusters), paced by the throttle through _rethrottle, followed through the task API, never overwriting a document (op_type create); runs with capture.strategy none, seqno or timestamp, without a transform",
        ),
      order: z
        .enum(['seqno', 'newest-first'])
        .default('seqno')
        .describe(
          'seqno: each shard (or _seq_no range) in _seq_no order. newest-first: time window by time window from the newest documents backwards (copy.newestFirst.field), so a new cluster holds the recent, most-queried data first; the report says how far back the copy has reached',
        ),
      newestFirst: z
        .strictObject({
          field: z
            .string()
            .min(1)
            .describe(
              'a date (or date_nanos) field of the source: the copy goes from its newest values back',
            ),
          windows: z
            .number()
            .int()
            .min(2)
            .max(1000)
            .default(16)
            .describe(
              'the span between the oldest and the newest value is cut into this many equal time windows, copied newest first; each window of each shard has its own checkpoint',
            ),
        })
        .optional()
        .describe('required by copy.order newest-first'),
      workers: z
        .strictObject({
          kind: z.literal('nats'),
          servers: z
            .string()
            .min(1)
            .default('nats://127.0.0.1:4222')
            .describe('NATS server(s) with JetStream, comma-separated'),
          bucket: z
            .string()
            .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-"')
            .optional()
            .describe('JetStream key-value bucket (default: derived from the migration name)'),
          leaseSeconds: z
            .number()
            .int()
            .min(3)
            .max(600)
            .default(15)
            .describe(
              'a slice whose holder has not renewed its lease for this long (as seen by the one taking it) is continued by another process from its checkpoint',
            ),
        })
        .optional()
        .describe(
          "many processes, one copy: `cutover run` publishes the copy plan and the slices' checkpoints in a NATS JetStream key-value bucket, and `cutover worker <spec>` on any machine leases slices from it; a process killed with kill -9 loses its leases and another continues its slices from their checkpoints. The runbook (capture, gates, switch) stays with `cutover run`. Client engine only",
        ),
    })
    .refine((c) => c.order !== 'newest-first' || c.newestFirst !== undefined, {
      message:
        'copy.newestFirst.field (a date field of the source) is required when copy.order is newest-first',
      path: ['newestFirst'],
    })
    .prefault({}),
  capture: z
    .strictObject({
      strategy: z
        .enum(['none', 'seqno', 'timestamp', 'append-only', 'proxy'])
        .optional()
        .describe(
          'default: seqno when aliases.write is set (there is a write alias to move under a freeze), none otherwise. none: copy a point in time (writers must pause or the gates refuse); seqno: tail the source by _seq_no during and after the copy, find deletes by id reconcile, switch under a short write freeze; timestamp: tail by a field set on every write; append-only: move the write alias to the target first, backfill with op_type=create, move reads when done (no freeze; for indices never updated or deleted); proxy: the application writes through `cutover proxy`, which journals every written and deleted id; the runner copies their current state, seqno rounds run as a safety net, and the switch holds writes in the proxy instead of refusing them',
        ),
      force: z.boolean().default(false).describe('append-only even when the source shows updates or deletes'),
      maxLagSeconds: z
        .number()
        .gt(0)
        .max(3600)
        .default(2)
        .describe('seqno/timestamp: the switch is attempted only once the catch-up lag is below this'),
      tailIntervalMs: z
        .number()
        .int()
        .min(50)
        .max(60_000)
        .default(500)
        .describe(
          'seqno/timestamp: a catch-up round starts at most this often (a round that took longer is followed at once by the next)',
        ),
      copyYields: z
        .boolean()
        .default(true)
        .describe(
          'seqno/timestamp: the backfill (and the id scan after it) pauses while catch-up is more than maxLagSeconds / 2 behind, so live changes reach the target first (as gh-ost throttles its row copy on replication lag); false: both run flat out',
        ),
      timestamp: z
        .strictObject({
          field: z.string().min(1).describe('a date field the application sets on every write'),
          marginSeconds: z
            .number()
            .min(0)
            .default(5)
            .describe(
              'each pass re-reads from the previous pass start minus this margin (clock skew, slow writes)',
            ),
          softDeleteField: z
            .string()
            .min(1)
            .optional()
            .describe(
              'boolean field the application sets instead of deleting; such documents are deleted on the target. Absent: deletes are found by id reconcile',
            ),
        })
        .optional()
        .describe('required by capture.strategy timestamp'),
    })
    .refine((c) => c.strategy !== 'timestamp' || c.timestamp !== undefined, {
      message: 'capture.timestamp.field is required when capture.strategy is timestamp',
      path: ['timestamp'],
    })
    .prefault({}),
  proxy: z
    .strictObject({
      listen: z
        .string()
        .regex(/^[^\s:]+:\d{1,5}$/, 'HOST:PORT, e.g. 127.0.0.1:9250')
        .default('127.0.0.1:9250')
        .describe(
          'address the application talks to instead of the cluster (`cutover proxy --listen` overrides it)',
        ),
      control: z
        .string()
        .regex(/^[^\s:]+:\d{1,5}$/, 'HOST:PORT, e.g. 127.0.0.1:9251 (port 0: any free port)')
        .default('127.0.0.1:0')
        .describe(
          'hold/release control, apart from the data port; every request needs the token in the state directory',
        ),
      journal: z
        .union([
          z.strictObject({ kind: z.literal('file') }),
          z.strictObject({
            kind: z.literal('nats'),
            servers: z
              .string()
              .min(1)
              .default('nats://127.0.0.1:4222')
              .describe('NATS server(s), comma-separated'),
            stream: z
              .string()
              .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-"')
              .optional()
              .describe('JetStream stream name (default: derived from the migration name)'),
          }),
        ])
        .default({ kind: 'file' })
        .describe(
          'file: one proxy, journal in the state directory (fdatasync group commit); nats: several proxies share a JetStream stream',
        ),
      concreteNames: z
        .enum(['report', 'route'])
        .default('report')
        .describe(
          'after the switch, writes naming the old index by its concrete name: report them (they land in the old index), or route them to the new index',
        ),
      tls: z
        .strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) })
        .optional()
        .describe('serve HTTPS on the data port with this certificate and key (PEM files)'),
      heartbeatMs: z
        .number()
        .int()
        .min(100)
        .max(60_000)
        .default(1000)
        .describe('nats: how often each proxy says it is alive'),
      moveApplication: z
        .boolean()
        .default(true)
        .describe(
          'when target.cluster is another cluster: at the switch the proxies send every request (reads and writes) to it, so the application moves with no deploy',
        ),
      targetAuth: z
        .union([z.literal('forward'), authSchema])
        .default('forward')
        .describe(
          "once the application moved to the target cluster: forward each client's own Authorization header, or replace it with these credentials (prefer passwordEnv / apiKeyEnv / bearerEnv)",
        ),
    })
    .prefault({}),
  audit: z
    .strictObject({
      index: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]*$/, 'a lowercase index name')
        .optional()
        .describe(
          'mirror every audit record into this index as the run goes (the audit file stays the record of truth)',
        ),
      cluster: z.enum(['target', 'source']).default('target').describe('which cluster holds the audit index'),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      webhooks: z
        .array(
          z.strictObject({
            url: z
              .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
              .optional()
              .describe('where to POST (prefer urlEnv: a Slack or PagerDuty URL is a secret)'),
            urlEnv: secretRef.env.optional(),
            format: z
              .enum(['json', 'slack', 'pagerduty'])
              .default('json')
              .describe(
                'json: the event as is; slack: an incoming-webhook message; pagerduty: Events API v2',
              ),
            routingKey: z
              .string()
              .min(1)
              .optional()
              .describe('pagerduty: the integration key (prefer routingKeyEnv)'),
            routingKeyEnv: secretRef.env.optional(),
            events: z
              .array(
                z.enum([
                  'started',
                  'step-done',
                  'throttled',
                  'paused',
                  'resumed',
                  'dead-letters',
                  'switch-refused',
                  'switched',
                  'finished',
                  'failed',
                  'rolled-back',
                  'cleaned-up',
                ]),
              )
              .optional()
              .describe('only these events (default: all)'),
          }),
        )
        .default([])
        .describe('webhooks told about the migration as it goes'),
      throttledMinutes: z
        .number()
        .min(0)
        .default(10)
        .describe('alert once the copy has been held below its ceiling (or paused) this long'),
      hooksPath: z
        .string()
        .min(1)
        .optional()
        .describe(
          'directory of executables named on-<event> (e.g. on-switched, before-switch), run with the facts in CUTOVER_* variables; a failing before-switch vetoes the switch (relative to the spec file)',
        ),
    })
    .prefault({}),
  verify: z
    .strictObject({
      mode: z
        .enum(['versions', 'full', 'sample', 'off'])
        .default('versions')
        .describe(
          "proof before cutover: versions (every id's version on both sides, content for verify.sampleRate of the ids and for every id whose versions disagree), full (every document's content), sample (that share of ids, content), or off",
        ),
      sampleRate: z
        .number()
        .gt(0)
        .max(1)
        .default(0.01)
        .describe(
          'share of ids (stable hash of the id): checked at all in sample mode, content-compared in versions mode',
        ),
      ignore: z
        .array(z.string().min(1))
        .default([])
        .describe('dotted field paths left out of the comparison (e.g. fields a target pipeline sets)'),
      maxDifferences: z
        .number()
        .int()
        .min(0)
        .default(0)
        .describe('differences tolerated before cutover is refused'),
    })
    .prefault({}),
  transform: z
    .string()
    .min(1)
    .optional()
    .describe('JS/TS module exporting default (doc, meta) => doc | null'),
  cutover: z
    .strictObject({
      mode: z.enum(['auto', 'manual']).default('auto').describe('manual: wait for `cutover cutover`'),
      retentionHours: z
        .number()
        .min(0)
        .default(72)
        .describe('old index kept at least this long before cleanup'),
      freezeBudgetMs: z
        .number()
        .int()
        .min(100)
        .max(60_000)
        .default(1000)
        .describe(
          'seqno/timestamp: longest write freeze on the source; a switch that cannot finish inside it lifts the freeze and tries again',
        ),
      maxFreezeAttempts: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(20)
        .describe(
          'tries (write freezes, and skipped tries while deletes keep coming) before the run stops (exit 3) with the writes still on the source',
        ),
      maxFutileFreezes: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(3)
        .describe(
          'write freezes lifted without switching that one run may cost the application (each refuses its writes for up to freezeBudgetMs); then the run stops (exit 3) and says what to change',
        ),
      holdBudgetMs: z
        .number()
        .int()
        .min(50)
        .max(30_000)
        .default(1000)
        .describe(
          'proxy: longest time the proxy holds the application writes at the switch (they wait, none is refused); well under client timeouts (30 s in the official clients). The proxy itself releases the queue at this deadline if the runner is gone',
        ),
      holdMaxDrain: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(100)
        .describe(
          "proxy: a hold starts only once the journal's last read before it found fewer documents than this (the drain under the hold copies what came in after that read, with the application waiting); while the reads stay larger the hold is put off and catch-up goes on, at most 5 times per switch, then it holds anyway",
        ),
      searchableAtSwitch: z
        .boolean()
        .default(false)
        .describe(
          "proxy: refresh the new index under the hold, so every document the old index showed to searches is searchable on the new one the moment the aliases move (a longer hold: one more refresh under it). Off: the new index's count under the hold comes from the writer's answers and it is refreshed right after the hold; until then a search may miss a document written in the last moments before the switch, as a replica not yet refreshed would",
        ),
      postponeFlagFile: z
        .string()
        .min(1)
        .optional()
        .describe('while this file exists, keep catching up and do not switch (relative to the spec file)'),
      revertWindowMinutes: z
        .number()
        .min(0)
        .max(7 * 24 * 60)
        .default(0)
        .describe(
          "seqno/timestamp: after the switch, keep copying the new index's changes back to the old one this long, so a rollback inside the window loses no write",
        ),
      revertTransform: z
        .string()
        .min(1)
        .optional()
        .describe(
          'module (doc, meta) => doc | null turning a new-index document back into the old shape for the reverse sync; absent: copied as is',
        ),
      warmup: z
        .strictObject({
          queries: z
            .union([
              z.array(z.record(z.string(), z.unknown())).min(1),
              z
                .string()
                .min(1)
                .describe('a JSON file holding an array of search bodies (relative to the spec file)'),
            ])
            .describe(
              'search bodies run against the new index before the aliases move (a cold index answers slowly at first)',
            ),
          runs: z.number().int().min(1).max(100).default(5).describe('times each query runs on each index'),
        })
        .optional()
        .describe(
          'warm the new index before readers move to it; the report shows each query on the old and the new index',
        ),
    })
    .prefault({}),
  watchdog: z
    .strictObject({
      enabled: z.boolean().default(true).describe('watch the health of both clusters while a command runs'),
      intervalSeconds: z
        .number()
        .gt(0)
        .max(3600)
        .default(15)
        .describe('how often _cluster/health of the source and the target is read'),
      redAfterSeconds: z
        .number()
        .min(0)
        .max(86_400)
        .default(60)
        .describe(
          'a cluster red this long pauses the copy and the capture rounds (checkpoints are kept) until it is yellow or green again',
        ),
    })
    .prefault({}),
  stateDir: z.string().min(1).default('.cutover').describe('state directory, relative to the spec file'),
});

export type SpecInput = z.input<typeof specSchema>;
export type Spec = z.output<typeof specSchema>;
export type ClusterSpec = z.output<typeof clusterSchema>;
export type AuthSpec = z.output<typeof authSchema>;
