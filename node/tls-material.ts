/** TLS material of the node's endpoints: PEM files read once at start, and whether a bind address is loopback. */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from '../runtime/logger.ts';
import { ConfigError, type TlsFiles } from './config.ts';

/** PEM contents of a TLS endpoint; `ca` present = peers must present a certificate that chains to it. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

function readPem(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${variable}=${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * Checks that `pem` parses as what `variable` names: found probing, a garbage CA was accepted and
 * the endpoint then refused every client, and a garbage certificate or key stopped the node with a
 * bare OpenSSL stack naming no variable.
 */
function checkPem(pem: Buffer, variable: string, path: string, kind: 'certificate' | 'key'): void {
  try {
    if (kind === 'key') createPrivateKey(pem);
    else new X509Certificate(pem); // the first certificate of the file (a CA bundle may hold more)
  } catch (err) {
    throw new ConfigError(`${variable}=${path} is not a PEM ${kind} (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Reads the files of `<prefix>_CERT/_KEY/_CA`; throws ConfigError naming the variable whose file cannot be read or parsed. */
export function readTlsMaterial(files: TlsFiles | undefined, prefix: string): TlsMaterial | undefined {
  if (files === undefined) return undefined;
  const cert = readPem(files.cert, `${prefix}_CERT`);
  checkPem(cert, `${prefix}_CERT`, files.cert, 'certificate');
  const key = readPem(files.key, `${prefix}_KEY`);
  checkPem(key, `${prefix}_KEY`, files.key, 'key');
  let ca: Buffer | undefined;
  if (files.ca !== undefined) {
    ca = readPem(files.ca, `${prefix}_CA`);
    checkPem(ca, `${prefix}_CA`, files.ca, 'certificate');
  }
  return { cert, key, ca };
}

/**
 * With mutual TLS between nodes, any certificate the peer CA signed is a cluster member: refuses a
 * peer CA that is also the hubs' or the apps' client CA (found probing: a hub's client certificate
 * opened the peer port). One CA per cluster, used for nothing else.
 */
export function checkPeerCaIsOwn(peer: TlsMaterial | undefined, others: Readonly<Record<string, TlsMaterial | undefined>>): void {
  if (peer?.ca === undefined) return;
  for (const [prefix, material] of Object.entries(others)) {
    if (material?.ca !== undefined && material.ca.equals(peer.ca))
      throw new ConfigError(
        `PEER_TLS_CA is also ${prefix}_CA: every certificate it signs would be a cluster member; give the cluster its own CA`,
      );
  }
}

/** True when `host` binds only the loopback interface (`localhost`, 127.0.0.0/8, ::1). */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

/** A server of the node, for `warnIfPlaintext`. */
export interface ServedEndpoint {
  /** What serves ("HTTP edge", "the hub ingress"): the warning's subject. */
  readonly name: string;
  readonly protocol: 'HTTP' | 'gRPC';
  readonly host: string;
  readonly port?: number | undefined;
  readonly tls: boolean;
  /** How to turn TLS on (or why plaintext is acceptable), appended to the warning. */
  readonly hint: string;
}

/**
 * Warns that `endpoint` serves plaintext on a non-loopback address (the one start-up warning every
 * server of the node gives); true when it warned. Plaintext on loopback is the quiet default.
 */
export function warnIfPlaintext(log: Logger, endpoint: ServedEndpoint): boolean {
  const { name, protocol, host, port, tls, hint } = endpoint;
  if (tls || isLoopbackHost(host)) return false;
  log.warn({ host, ...(port === undefined ? {} : { port }) }, `${name} serves plaintext ${protocol} on a non-loopback address: ${hint}`);
  return true;
}
