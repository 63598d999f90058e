/** The node's HTTP servers (the edge, the metrics port): plaintext or TLS, listening on a bound port, closed with a grace period. */
import { serve, type ServerType } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { httpStatusOf, type ErrorCode } from '../edge-api/error-codes.ts';
import type { Logger } from '../runtime/logger.ts';
import { warnIfPlaintext, type TlsMaterial } from './tls-material.ts';

type Fetch = Parameters<typeof serve>[0]['fetch'];

export interface HttpListenOptions {
  /** What the server is, for logs ("HTTP edge", "metrics"). */
  readonly name: string;
  readonly host: string;
  /** 0 = pick a free port. */
  readonly port: number;
  /**
   * Serve HTTPS with this certificate and key; with `ca`, clients must present a certificate
   * that chains to it (refused in the TLS handshake otherwise). Undefined: plaintext HTTP.
   */
  readonly tls?: TlsMaterial | undefined;
  /** Said when plaintext is served on a non-loopback address: how to turn TLS on. */
  readonly plaintextHint: string;
  readonly log: Logger;
}

/** A listening server. */
export interface HttpListener {
  readonly server: ServerType;
  /** The bound port (differs from the requested one when that was 0). */
  readonly port: number;
  readonly tls: boolean;
  /** Stops accepting, lets open requests (SSE streams) finish for `graceMs` milliseconds, then cuts them. Never rejects. */
  close(graceMs: number): Promise<void>;
}

/** Starts `fetch` on `host:port` and resolves once it listens; rejects when it cannot bind. */
export async function listenHttp(fetch: Fetch, opts: HttpListenOptions): Promise<HttpListener> {
  const { tls, host } = opts;
  const server = tls
    ? serve({
        fetch,
        port: opts.port,
        hostname: host,
        createServer: createHttpsServer,
        serverOptions: {
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca === undefined ? {} : { ca: tls.ca, requestCert: true, rejectUnauthorized: true }),
        },
      })
    : serve({ fetch, port: opts.port, hostname: host });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      // Bound: a later error is no bind failure, and a leftover `reject` would swallow the first one.
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  // Requests Node's parser refuses before Hono sees them (headers over 16 KiB, bad framing) get
  // the edge's error shape too, not Node's empty 431/400.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket));
  // Errors of the listening server (EMFILE on accept, ...): logged; without a listener Node would throw them.
  server.on('error', (err: Error) => opts.log.error({ err, host, port }, `${opts.name} server error`));
  const warned = warnIfPlaintext(opts.log, {
    name: opts.name,
    protocol: 'HTTP',
    host,
    port,
    tls: tls !== undefined,
    hint: opts.plaintextHint,
  });
  if (!warned) opts.log.info({ host, port, tls: Boolean(tls), clientCertificates: tls?.ca !== undefined }, `${opts.name} listening`);

  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    tls: tls !== undefined,
    close: (graceMs) =>
      (closing ??= new Promise<void>((resolve) => {
        const s = server as ServerType & { closeAllConnections?: () => void; closeIdleConnections?: () => void };
        const cut = setTimeout(() => s.closeAllConnections?.(), graceMs);
        s.close(() => {
          clearTimeout(cut);
          resolve();
        });
        s.closeIdleConnections?.();
      })),
  };
}

/** Answers a request the HTTP parser refused with `{error: {code, message}}` and closes the connection. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A connection reset or one already answered: nothing to tell.
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [code, message]: [ErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? ['headers_too_large', 'request headers exceed 16 KiB']
      : ['invalid_argument', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  const status = httpStatusOf(code);
  const reason = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
