/**
 * The reindex module for the Elasticsearch 7.17 test server. The integ-test zips carry no reindex module, but for
 * 7.x Maven Central has its classes as `org.elasticsearch.plugin:reindex-client` (8.x and 9.x have no such
 * artifact). Installed as `modules/reindex` with the REST client it reads remote clusters through (the HTTP
 * libraries are the ones x-pack-core already ships in the same zip) and the descriptor the real distribution has,
 * it gives the 7.17 test server `_reindex`, `_update_by_query` and `_delete_by_query`, so the reindex engine is
 * tested on Elasticsearch too. Idempotent: a home that has the module is left alone.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mavenCopy } from './maven.js';
import { hasCommand, runChecked } from './proc.js';
import { ensureServerUser } from './user.js';

const FROM_XPACK = [
  'commons-codec-',
  'commons-logging-',
  'elasticsearch-ssl-config-',
  'httpasyncclient-',
  'httpclient-',
  'httpcore-',
  'httpcore-nio-',
];

export async function installReindexModule(home: string, version: string): Promise<void> {
  const dir = path.join(home, 'modules', 'reindex');
  if (existsSync(path.join(dir, 'plugin-descriptor.properties'))) return;
  if (!hasCommand('mvn'))
    throw new Error('the reindex module for Elasticsearch 7.17 comes from Maven: install maven');
  const tmp = await mkdtemp(path.join(path.dirname(home), '.reindex-'));
  try {
    for (const artifact of [
      `org.elasticsearch.plugin:reindex-client:${version}`,
      `org.elasticsearch.client:elasticsearch-rest-client:${version}`,
    ])
      await mavenCopy(artifact, tmp);
    const xpack = path.join(home, 'modules', 'x-pack-core');
    for (const f of await readdir(xpack))
      if (f.endsWith('.jar') && FROM_XPACK.some((p) => f.startsWith(p) && /^\d/.test(f.slice(p.length))))
        await copyFile(path.join(xpack, f), path.join(tmp, f));
    await writeFile(
      path.join(tmp, 'plugin-descriptor.properties'),
      [
        'description=The Reindex module adds APIs to reindex from one index to another or update documents in place.',
        `version=${version}`,
        'name=reindex',
        'classname=org.elasticsearch.reindex.ReindexPlugin',
        'java.version=1.8',
        `elasticsearch.version=${version}`,
        'extended.plugins=',
        'has.native.controller=false',
        '',
      ].join('\n'),
    );
    // Reindex from remote opens connections to the remote cluster.
    await writeFile(
      path.join(tmp, 'plugin-security.policy'),
      'grant {\n  permission java.net.SocketPermission "*", "connect";\n};\n',
    );
    await mkdir(path.dirname(dir), { recursive: true });
    const user = await ensureServerUser();
    if (user) await runChecked('chown', ['-R', `${user.uid}:${user.gid}`, tmp]);
    await rename(tmp, dir).catch(async (e) => {
      if (!existsSync(path.join(dir, 'plugin-descriptor.properties'))) throw e; // another process won the race
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
