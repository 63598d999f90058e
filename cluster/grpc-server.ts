/** Binding and graceful shutdown of a grpc-js server, shared by the peer server and the hub ingress. */
import { ServerCredentials, type Server } from '@grpc/grpc-js';

/** `host:port`, an IPv6 host bracketed (`[::1]:50052`) as gRPC and URL authorities need. */
export const hostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/**
 * Binds `host:port` without TLS (port 0 = a free port; IPv6 hosts are bracketed) and resolves the
 * port actually bound; rejects naming the address when it cannot. (The TLS endpoints run their own
 * listeners and inject sockets: the hub ingress's connection gate, the peer port's TLS listener.)
 */
export function bindServer(server: Server, host: string, port: number): Promise<number> {
  const address = hostPort(host, port);
  return new Promise((resolve, reject) => {
    // grpc-js says only "No address added out of total 1 resolved": name the address that failed.
    // It keeps the socket's error code only in its message: `code` carries EADDRINUSE on, so the
    // node can tell a port taken by another process from other failures.
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => {
      if (!err) return resolve(bound);
      const failed: NodeJS.ErrnoException = new Error(`cannot bind ${address}: ${err.message}`, { cause: err });
      if (/\bEADDRINUSE\b/.test(err.message)) failed.code = 'EADDRINUSE';
      reject(failed);
    });
  });
}

/** Lets open calls finish; resolves true when the server drained within `graceMs` (milliseconds), false when it had to force. */
export function shutdownServer(server: Server, graceMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve(false);
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
