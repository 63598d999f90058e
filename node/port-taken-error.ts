/** A port the node must listen on is held by another process: named by its variable, so `main` prints one line saying what to change. */
import { hostPort } from '../cluster/grpc-server.ts';

/** The variables of the ports a node listens on. */
export type PortVariable = 'HTTP_PORT' | 'GRPC_PORT' | 'PEER_PORT' | 'METRICS_PORT';

export class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
  /** Stable code, printed in the fatal log line. */
  readonly code = 'PORT_TAKEN';

  constructor(
    readonly variable: PortVariable,
    readonly host: string,
    readonly port: number,
    options?: ErrorOptions,
  ) {
    super(
      `${variable}=${port}: ${hostPort(host, port)} is already in use by another process; ` +
        `stop that process or set ${variable} to a free port (0 picks one)`,
      options,
    );
  }
}

/**
 * True when `err`, or an error in its `cause` chain, is a bind refused because the address is in
 * use (Node's `EADDRINUSE`; cluster/grpc-server.ts gives grpc-js's bind failure that code too).
 */
export function isAddressInUse(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  }
  return false;
}

/** Runs `listen` for the port of `variable` on `host`; a port in use becomes a {@link PortTakenError}, other failures pass unchanged. */
export async function listenOn<T>(variable: PortVariable, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    if (isAddressInUse(err)) throw new PortTakenError(variable, host, port, { cause: err });
    throw err;
  }
}
