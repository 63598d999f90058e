/**
 * A port the node must listen on cannot be bound, for a reason a restart cannot fix (taken by
 * another process, an address this machine does not have, a port it may not open): named by its
 * variable, so `main` prints one line saying what to change and exits 2, the exit code of a
 * configuration problem. (A supervisor set to restart always, as Kubernetes and compose here are,
 * restarts it anyway: the code and the line tell whoever looks that a restart will not help.)
 */
import { hostPort } from '../cluster/grpc-server.ts';

/** The variables of the ports a node listens on. */
export type PortVariable = 'HTTP_PORT' | 'GRPC_PORT' | 'PEER_PORT' | 'METRICS_PORT';

/** The variable of the address each port binds. */
export const HOST_VARIABLE_OF: Readonly<Record<PortVariable, 'HOST' | 'PEER_HOST' | 'METRICS_HOST'>> = {
  HTTP_PORT: 'HOST',
  GRPC_PORT: 'HOST',
  PEER_PORT: 'PEER_HOST',
  METRICS_PORT: 'METRICS_HOST',
};

/** Stable codes of the binds refused for good: the port in use, the address not on this machine, the port not allowed. */
export type ListenErrorCode = 'PORT_TAKEN' | 'ADDRESS_NOT_AVAILABLE' | 'PORT_FORBIDDEN';

/** The socket error behind each code. */
const ERRNO_OF: Readonly<Record<ListenErrorCode, string>> = {
  PORT_TAKEN: 'EADDRINUSE',
  ADDRESS_NOT_AVAILABLE: 'EADDRNOTAVAIL',
  PORT_FORBIDDEN: 'EACCES',
};

export class ListenError extends Error {
  override readonly name: string = 'ListenError';

  constructor(
    /** Stable code, printed in the fatal log line. */
    readonly code: ListenErrorCode,
    /** The variable to change: the port's (PORT_TAKEN, PORT_FORBIDDEN) or its host's (ADDRESS_NOT_AVAILABLE). */
    readonly variable: PortVariable | 'HOST' | 'PEER_HOST' | 'METRICS_HOST',
    readonly host: string,
    readonly port: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class PortTakenError extends ListenError {
  override readonly name = 'PortTakenError';
  declare readonly code: 'PORT_TAKEN';
  declare readonly variable: PortVariable;

  constructor(variable: PortVariable, host: string, port: number, options?: ErrorOptions) {
    super(
      'PORT_TAKEN',
      variable,
      host,
      port,
      `${variable}=${port}: ${hostPort(host, port)} is already in use by another process; ` +
        `stop that process or set ${variable} to a free port (0 picks one)`,
      options,
    );
  }
}

/** The ListenError for a bind of `variable`'s port on `host` refused with `code`. */
export function listenError(
  code: ListenErrorCode,
  variable: PortVariable,
  host: string,
  port: number,
  options?: ErrorOptions,
): ListenError {
  const hostVariable = HOST_VARIABLE_OF[variable];
  switch (code) {
    case 'PORT_TAKEN':
      return new PortTakenError(variable, host, port, options);
    case 'ADDRESS_NOT_AVAILABLE':
      return new ListenError(
        code,
        hostVariable,
        host,
        port,
        `${hostVariable}=${host}: this machine has no such address, so ${variable} cannot be bound there; ` +
          `set ${hostVariable} to an address of this machine (0.0.0.0 or :: binds every interface)`,
        options,
      );
    case 'PORT_FORBIDDEN':
      return new ListenError(
        code,
        variable,
        host,
        port,
        `${variable}=${port}: this process may not listen on ${hostPort(host, port)} (ports below 1024 need privileges); ` +
          `set ${variable} to 1024 or above`,
        options,
      );
  }
}

/**
 * The ListenError code of `err`, or of an error in its `cause` chain: its errno `code`, or the
 * errno named in its message (grpc-js keeps the socket's error only in its message).
 */
export function listenErrorCode(err: unknown): ListenErrorCode | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    for (const [code, errno] of Object.entries(ERRNO_OF) as [ListenErrorCode, string][]) {
      if ((e as NodeJS.ErrnoException).code === errno || new RegExp(`\\b${errno}\\b`).test(e.message)) return code;
    }
  }
  return undefined;
}

/**
 * Runs `listen` for the port of `variable` on `host`; a bind refused for good (in use, no such
 * address, not allowed) becomes a {@link ListenError}, other failures pass unchanged.
 */
export async function listenOn<T>(variable: PortVariable, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    const code = listenErrorCode(err);
    if (code !== undefined) throw listenError(code, variable, host, port, { cause: err });
    throw err;
  }
}
