/** A throwaway PKI for TLS tests, made with the openssl CLI: a CA, a server certificate for 127.0.0.1/localhost, and a client certificate. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM file paths (for config variables) of one certificate and its key. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA certificate (PEM path) both leaf certificates are signed by. */
  readonly ca: string;
  /** Server certificate: subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost. */
  readonly server: CertFiles;
  /** Client certificate (CN test-client). */
  readonly client: CertFiles;
  /** A second, unrelated CA: what a certificate from elsewhere chains to. */
  readonly otherCa: string;
  /** A client certificate signed by `otherCa`. */
  readonly strangerClient: CertFiles;
  read(path: string): Buffer;
  /** Deletes the directory. */
  remove(): void;
}

const openssl = (args: string[], cwd: string): void => void execFileSync('openssl', args, { cwd, stdio: 'pipe' });

/** P-256 keys: generated in milliseconds, unlike RSA. */
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`], dir);
}

function makeLeaf(dir: string, name: string, ca: string, extensions: string): CertFiles {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(['req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** Makes the PKI in a fresh directory under the OS temp dir (call `remove` when done). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'iot-pki-'));
  makeCa(dir, 'test-ca');
  makeCa(dir, 'other-ca');
  const server = makeLeaf(
    dir,
    'test-server',
    'test-ca',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  const client = makeLeaf(dir, 'test-client', 'test-ca', 'extendedKeyUsage=clientAuth\n');
  const strangerClient = makeLeaf(dir, 'stranger-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: join(dir, 'test-ca.crt'),
    server,
    client,
    otherCa: join(dir, 'other-ca.crt'),
    strangerClient,
    read: (path) => readFileSync(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
