/** Binding and graceful shutdown of a grpc-js server, shared by the peer server and the hub ingress. */
import { ServerCredentials, type Server } from '@grpc/grpc-js';

/**
 * Binds `host:port` (port 0 = a free port; IPv6 hosts are bracketed) with `credentials` (default:
 * plaintext) and resolves the port actually bound.
 */
export function bindServer(
  server: Server,
  host: string,
  port: number,
  credentials: ServerCredentials = ServerCredentials.createInsecure(),
): Promise<number> {
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
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
