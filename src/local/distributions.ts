import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type ServerKind = 'es8' | 'es9' | 'os3' | 'es7';
export type Distribution = 'elasticsearch' | 'opensearch';

export const SERVER_KINDS: readonly ServerKind[] = ['es8', 'es9', 'os3', 'es7'];

/**
 * Integ-test zips are the only server builds on Maven Central. Gaps matter: ES 9.2.5-9.2.7 and all
 * 9.3+ integ zips were not published there, OpenSearch 3.9.0's was not either.
 */
export const SERVER_VERSIONS: Record<ServerKind, string> = {
  es8: '8.19.14',
  es9: '9.2.8',
  os3: '3.8.0',
  es7: '7.17.29',
};

const JAVA17 = '/usr/lib/jvm/java-17-openjdk-amd64';
const JAVA25 = '/usr/lib/jvm/temurin-25-jdk-amd64';

export interface KindInfo {
  distribution: Distribution;
  groupId: string;
  artifactId: string;
  /** Prefix of the launcher's env vars: ES_JAVA_HOME vs OPENSEARCH_JAVA_HOME and friends. */
  envPrefix: 'ES' | 'OPENSEARCH';
  defaultJavaHome: string;
  minJava: number;
}

export const KINDS: Record<ServerKind, KindInfo> = {
  es8: es(JAVA17, 17),
  // ES 9 needs Java 21+; Temurin 25 is the only such JDK on the dev/CI machine.
  es9: es(JAVA25, 21),
  os3: {
    distribution: 'opensearch',
    groupId: 'org.opensearch.distribution.integ-test-zip',
    artifactId: 'opensearch',
    envPrefix: 'OPENSEARCH',
    defaultJavaHome: JAVA25,
    minJava: 21,
  },
  es7: es(JAVA17, 11),
};

function es(defaultJavaHome: string, minJava: number): KindInfo {
  return {
    distribution: 'elasticsearch',
    groupId: 'org.elasticsearch.distribution.integ-test-zip',
    artifactId: 'elasticsearch',
    envPrefix: 'ES',
    defaultJavaHome,
    minJava,
  };
}

/** CUTOVER_<KIND>_VERSION lets a developer try another published version without editing code. */
export function versionOf(kind: ServerKind): string {
  return process.env[`CUTOVER_${kind.toUpperCase()}_VERSION`] || SERVER_VERSIONS[kind];
}

export function javaHomeOf(kind: ServerKind): string {
  const override = process.env[`CUTOVER_${kind.toUpperCase()}_JAVA_HOME`];
  if (override) return override;
  const info = KINDS[kind];
  if (existsSync(path.join(info.defaultJavaHome, 'bin', 'java'))) return info.defaultJavaHome;
  if (process.env.JAVA_HOME && existsSync(path.join(process.env.JAVA_HOME, 'bin', 'java'))) {
    return process.env.JAVA_HOME;
  }
  throw new Error(
    `no Java ${info.minJava}+ found for ${kind}: expected ${info.defaultJavaHome}; ` +
      `set CUTOVER_${kind.toUpperCase()}_JAVA_HOME to a JDK home`,
  );
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Downloaded zips: `${CUTOVER_CACHE | XDG_CACHE_HOME | ~/.cache}/cutover/servers`. */
export function zipCacheDir(): string {
  const base = process.env.CUTOVER_CACHE || process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'cutover', 'servers');
}

/**
 * Extracted homes and per-cluster run dirs. As root the server runs as an unprivileged user that
 * cannot enter root's 0700 home, so everything it touches lives under /var/tmp instead.
 */
export function serversBaseDir(): string {
  if (process.env.CUTOVER_SERVERS_DIR) return process.env.CUTOVER_SERVERS_DIR;
  if (isRoot()) return '/var/tmp/cutover-servers';
  return path.join(zipCacheDir(), 'homes');
}

export function runBaseDir(): string {
  if (isRoot() || process.env.CUTOVER_SERVERS_DIR) return path.join(serversBaseDir(), 'run');
  return path.join(os.tmpdir(), `cutover-servers-${process.getuid?.() ?? 'user'}`);
}
