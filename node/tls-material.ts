/** TLS material of the node's endpoints: PEM files read once at start, and whether a bind address is loopback. */
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

/** Reads the files of `<prefix>_CERT/_KEY/_CA`; throws ConfigError naming the variable whose file cannot be read. */
export function readTlsMaterial(files: TlsFiles | undefined, prefix: string): TlsMaterial | undefined {
  if (files === undefined) return undefined;
  return {
    cert: readPem(files.cert, `${prefix}_CERT`),
    key: readPem(files.key, `${prefix}_KEY`),
    ca: files.ca === undefined ? undefined : readPem(files.ca, `${prefix}_CA`),
  };
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
