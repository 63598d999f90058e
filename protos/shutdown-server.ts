/** Graceful shutdown of a grpc-js server: let open calls finish, force them after a grace period. */
import type { Server } from '@grpc/grpc-js';

/** Resolves true when the server drained within `graceMs` (milliseconds), false when it had to force. */
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
