/**
 * The real clusters a test run talks to, handed in by scripts/with-clusters.ts through env vars:
 *
 *   CUTOVER_TEST_<ID>_URL             always (ID = ES8, ES9, OS3, ES7, ES8SEC, ES8TLS)
 *   CUTOVER_TEST_<ID>_PID             pid of the server JVM (for SIGSTOP/SIGCONT tests)
 *   CUTOVER_TEST_<ID>_USER/_PASSWORD  ES8SEC, ES8TLS: basic auth as `elastic`
 *   CUTOVER_TEST_<ID>_CA_FILE         ES8TLS: PEM of the throwaway CA that signed the server cert
 *   CUTOVER_TEST_<ID>_CA_FINGERPRINT  ES8TLS: lowercase hex SHA-256 of that CA's DER encoding
 *   CUTOVER_TEST_KINDS                the ids with-clusters started (informational)
 *
 * A missing cluster is an error, never a skip: a green run must mean every server was exercised.
 */
import { randomBytes } from 'node:crypto';

export type PlainKind = 'es8' | 'es9' | 'os3' | 'es7';
export type TestClusterId = PlainKind | 'es8sec' | 'es8tls';

export interface TestCluster {
  id: TestClusterId;
  url: string;
  username?: string;
  password?: string;
  caFile?: string;
  caFingerprint?: string;
  pid?: number;
  /** es8sec/es8tls: a service account token for bearer auth */
  bearer?: string;
  /** es8sec/es8tls: a file-realm user with rights on `limitedIndexPattern` only */
  limitedUser?: string;
  limitedPassword?: string;
  limitedIndexPattern?: string;
}

export interface Flavor {
  distribution: 'elasticsearch' | 'opensearch';
  major: number;
}

export const FLAVORS: Record<TestClusterId, Flavor> = {
  es8: { distribution: 'elasticsearch', major: 8 },
  es9: { distribution: 'elasticsearch', major: 9 },
  os3: { distribution: 'opensearch', major: 3 },
  // 7.17 starts fine on Java 17, so it is a required member of the matrix like the others.
  es7: { distribution: 'elasticsearch', major: 7 },
  es8sec: { distribution: 'elasticsearch', major: 8 },
  es8tls: { distribution: 'elasticsearch', major: 8 },
};

const ALL_IDS = Object.keys(FLAVORS) as TestClusterId[];
const PLAIN: readonly PlainKind[] = ['es8', 'es9', 'os3', 'es7'];

/**
 * Every cluster the suite expects. CUTOVER_TEST_MATRIX=es8,os3 narrows it for a quick local loop
 * (paired with `with-clusters --kinds es8,os3`); it is never set by the scripts, so CI always
 * demands the full set.
 */
export const EXPECTED: readonly TestClusterId[] = parseMatrix(process.env.CUTOVER_TEST_MATRIX);

/** The unsecured servers every behaviour should be checked against. */
export const MATRIX: readonly PlainKind[] = PLAIN.filter((k) => EXPECTED.includes(k));

function parseMatrix(value: string | undefined): TestClusterId[] {
  if (!value) return ALL_IDS;
  const ids = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const id of ids) {
    if (!(ALL_IDS as string[]).includes(id)) {
      throw new Error(`CUTOVER_TEST_MATRIX: unknown cluster id "${id}" (known: ${ALL_IDS.join(', ')})`);
    }
  }
  return ids as TestClusterId[];
}

export function testCluster(id: TestClusterId): TestCluster {
  const prefix = `CUTOVER_TEST_${id.toUpperCase()}_`;
  const get = (name: string) => process.env[prefix + name] || undefined;
  const url = get('URL');
  if (!url) {
    throw new Error(
      `${prefix}URL is not set: no ${id} cluster for this test. Run the tests through ` +
        `\`node --import tsx scripts/with-clusters.ts -- <test command>\` (it starts real servers).`,
    );
  }
  const cluster: TestCluster = { id, url };
  const username = get('USER');
  const password = get('PASSWORD');
  const caFile = get('CA_FILE');
  const caFingerprint = get('CA_FINGERPRINT');
  const pid = get('PID');
  if (username !== undefined) cluster.username = username;
  if (password !== undefined) cluster.password = password;
  if (caFile !== undefined) cluster.caFile = caFile;
  if (caFingerprint !== undefined) cluster.caFingerprint = caFingerprint;
  if (pid !== undefined) cluster.pid = Number(pid);
  cluster.bearer = get('BEARER');
  cluster.limitedUser = get('LIMITED_USER');
  cluster.limitedPassword = get('LIMITED_PASSWORD');
  cluster.limitedIndexPattern = get('LIMITED_INDEX_PATTERN');
  if ((id === 'es8sec' || id === 'es8tls') && (username === undefined || password === undefined)) {
    throw new Error(`${prefix}USER and ${prefix}PASSWORD must be set for the secured ${id} cluster`);
  }
  if (id === 'es8tls' && (caFile === undefined || caFingerprint === undefined)) {
    throw new Error(`${prefix}CA_FILE and ${prefix}CA_FINGERPRINT must be set for the TLS cluster`);
  }
  return cluster;
}

/** A fresh index/alias name per test, so tests sharing a cluster never collide. */
export function uniqueName(prefix: string): string {
  const base =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9_.-]/g, '-')
      .replace(/^[-_+.]+/, '') || 'idx';
  return `${base}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}
