import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KINDS, type ServerKind, serversBaseDir, versionOf, zipCacheDir } from './distributions.js';
import { mavenCopy } from './maven.js';
import { hasCommand, runChecked } from './proc.js';
import { installReindexModule } from './reindex-module.js';
import { ensureServerUser } from './user.js';

const EXTRACTED_MARKER = '.cutover-extracted';
const inFlight = new Map<string, Promise<string>>();

/** Returns the extracted server home for `kind`, downloading and extracting it on first use. */
export function ensureServer(kind: ServerKind): Promise<string> {
  const version = versionOf(kind);
  const key = `${kind}-${version}`;
  let p = inFlight.get(key);
  if (!p) {
    p = ensureServerUncached(kind, version);
    inFlight.set(key, p);
    p.catch(() => inFlight.delete(key));
  }
  return p;
}

async function ensureServerUncached(kind: ServerKind, version: string): Promise<string> {
  const home = path.join(serversBaseDir(), `${kind}-${version}`);
  if (!existsSync(path.join(home, EXTRACTED_MARKER))) {
    const zip = await ensureZip(kind, version);
    await extract(zip, home, `${KINDS[kind].distribution}-${version}`);
  }
  // The 7.x integ-test zip lacks the reindex module; Maven has its classes (reindex-module.ts).
  if (KINDS[kind].distribution === 'elasticsearch' && version.startsWith('7.'))
    await installReindexModule(home, version);
  return home;
}

export async function ensureZip(kind: ServerKind, version: string): Promise<string> {
  const info = KINDS[kind];
  const dir = zipCacheDir();
  const zip = path.join(dir, `${info.artifactId}-${version}.zip`);
  if (existsSync(zip)) return zip;
  if (!hasCommand('mvn')) {
    throw new Error(`${zip} is missing and mvn is not installed to fetch it (apt-get install maven)`);
  }
  await mkdir(dir, { recursive: true });
  // Copy into a private dir first so a concurrent or interrupted fetch never leaves a truncated zip
  // under the final name.
  const tmp = await mkdtemp(path.join(dir, '.fetch-'));
  try {
    const artifact = `${info.groupId}:${info.artifactId}:${version}:zip`;
    await mavenCopy(artifact, tmp);
    await rename(path.join(tmp, path.basename(zip)), zip);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return zip;
}

async function extract(zip: string, home: string, topDir: string): Promise<void> {
  const parent = path.dirname(home);
  await mkdir(parent, { recursive: true });
  // The server user must be able to traverse to its home.
  await chmod(parent, 0o755);
  const tmp = await mkdtemp(path.join(parent, '.extract-'));
  try {
    if (hasCommand('unzip')) {
      await runChecked('unzip', ['-q', zip, '-d', tmp]);
    } else if (hasCommand('python3')) {
      // zipfile drops Unix modes, so the launch scripts get their exec bits back below.
      await runChecked('python3', ['-m', 'zipfile', '-e', zip, tmp]);
      await restoreExecBits(path.join(tmp, topDir, 'bin'));
    } else {
      throw new Error(
        `cannot extract ${zip}: neither unzip nor python3 is installed (apt-get install unzip)`,
      );
    }
    const extracted = path.join(tmp, topDir);
    if (!existsSync(extracted)) throw new Error(`${zip} has no top-level ${topDir}/ directory`);
    await writeFile(path.join(extracted, EXTRACTED_MARKER), `${new Date().toISOString()}\n`);
    const user = await ensureServerUser();
    if (user) await runChecked('chown', ['-R', `${user.uid}:${user.gid}`, extracted]);
    await chmod(extracted, 0o755);
    try {
      await rename(extracted, home);
    } catch (err) {
      // Another process won the race; its complete copy is as good as ours.
      if (!existsSync(path.join(home, EXTRACTED_MARKER))) {
        if (existsSync(home)) {
          // A half-extracted leftover from a killed run (no marker): replace it.
          await rm(home, { recursive: true, force: true });
          await rename(extracted, home);
        } else {
          throw err;
        }
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function restoreExecBits(binDir: string): Promise<void> {
  for (const name of await readdir(binDir)) {
    const file = path.join(binDir, name);
    if ((await stat(file)).isFile() && !name.endsWith('.bat') && !name.endsWith('.exe')) {
      await chmod(file, 0o755);
    }
  }
}
