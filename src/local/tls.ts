import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hasCommand, runChecked } from './proc.js';

export interface NodeCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Lowercase hex SHA-256 of the CA certificate's DER encoding (no colons). */
  caFingerprint: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, both valid for ten years. */
export async function generateNodeCerts(dir: string): Promise<NodeCerts> {
  if (!hasCommand('openssl'))
    throw new Error('openssl is required for a TLS cluster (apt-get install openssl)');
  await mkdir(dir, { recursive: true });
  const f = (name: string) => path.join(dir, name);
  await runChecked('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '3650',
    '-subj',
    '/CN=cutover local test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
  ]);
  await runChecked('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-subj',
    '/CN=localhost',
    '-keyout',
    f('node.key'),
    '-out',
    f('node.csr'),
  ]);
  await writeFile(
    f('node.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  );
  await runChecked('openssl', [
    'x509',
    '-req',
    '-sha256',
    '-days',
    '3650',
    '-in',
    f('node.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-set_serial',
    `0x${Date.now().toString(16)}`,
    '-extfile',
    f('node.ext'),
    '-out',
    f('node.crt'),
  ]);
  // Serve the whole chain, as Elasticsearch's own security auto-configuration does: clients that pin the CA
  // by fingerprint find it in the handshake.
  await writeFile(
    f('node.crt'),
    `${(await readFile(f('node.crt'), 'utf8')).trimEnd()}\n${await readFile(f('ca.crt'), 'utf8')}`,
  );
  // The CA key has done its job; nothing should be able to mint more certificates from it.
  await rm(f('ca.key'), { force: true });
  await rm(f('node.csr'), { force: true });
  await rm(f('node.ext'), { force: true });
  const ca = new X509Certificate(await readFile(f('ca.crt')));
  return {
    caFile: f('ca.crt'),
    certFile: f('node.crt'),
    keyFile: f('node.key'),
    caFingerprint: createHash('sha256').update(ca.raw).digest('hex'),
  };
}
