/** PortTakenError: a bind refused because another process holds the port, named by its variable. */
import { Server } from '@grpc/grpc-js';
import { createServer, type Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bindServer } from '../../cluster/grpc-server.ts';
import { ListenError, listenErrorCode, listenOn, PortTakenError } from '../../node/port-taken-error.ts';

let held: NetServer | undefined;
/** A loopback port held by a plain listener, as another process would hold it. */
async function heldPort(): Promise<number> {
  held = createServer();
  await new Promise<void>((resolve) => held!.listen(0, '127.0.0.1', resolve));
  return (held.address() as { port: number }).port;
}
afterEach(async () => {
  await new Promise<void>((resolve) => (held ? held.close(() => resolve()) : resolve()));
  held = undefined;
});

const listenPlain = (port: number): Promise<NetServer> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

describe('PortTakenError', () => {
  it('turns a plain listener refused with EADDRINUSE into a PortTakenError naming the variable, host and port', async () => {
    const port = await heldPort();
    const failed = listenOn('HTTP_PORT', '127.0.0.1', port, () => listenPlain(port));
    await expect(failed).rejects.toBeInstanceOf(PortTakenError);
    await expect(failed).rejects.toMatchObject({ code: 'PORT_TAKEN', variable: 'HTTP_PORT', host: '127.0.0.1', port });
    await expect(failed).rejects.toThrow(`HTTP_PORT=${port}: 127.0.0.1:${port} is already in use by another process; stop that process`);
    const cause = await failed.catch((err: Error) => err.cause);
    expect(cause).toMatchObject({ code: 'EADDRINUSE' });
  });

  it('recognises a grpc-js bind refused because the port is taken (grpc-js keeps the errno only in its message)', async () => {
    const port = await heldPort();
    const server = new Server();
    try {
      const failed = bindServer(server, '127.0.0.1', port);
      await expect(failed).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await expect(failed).rejects.toThrow(`cannot bind 127.0.0.1:${port}`);
      const wrapped = listenOn('PEER_PORT', '::1', port, () => bindServer(server, '127.0.0.1', port));
      // An IPv6 host is bracketed in the message.
      await expect(wrapped).rejects.toThrow(`PEER_PORT=${port}: [::1]:${port} is already in use`);
    } finally {
      server.forceShutdown();
    }
  });

  it('passes every other failure through unchanged, and finds EADDRINUSE anywhere in a cause chain', async () => {
    const other = Object.assign(new Error('listen ECONNRESET: something else 0.0.0.0:80'), { code: 'ECONNRESET' });
    await expect(listenOn('HTTP_PORT', '0.0.0.0', 80, () => Promise.reject(other))).rejects.toBe(other);
    const deep = new Error('outer', { cause: new Error('middle', { cause: Object.assign(new Error('inner'), { code: 'EADDRINUSE' }) }) });
    expect(listenErrorCode(deep)).toBe('PORT_TAKEN');
    expect(listenErrorCode(other)).toBeUndefined();
    expect(listenErrorCode('EADDRINUSE')).toBeUndefined();
    expect(listenErrorCode(undefined)).toBeUndefined();
  });
});

describe('ListenError: binds a restart cannot fix (exit 2: a configuration problem, not a failure a restart may clear)', () => {
  // TEST-NET-1 (RFC 5737): never an address of this machine.
  const ABSENT = '192.0.2.1';

  it('an address this machine does not have: ADDRESS_NOT_AVAILABLE naming the host variable, for plain and grpc-js listeners', async () => {
    const plain = listenOn(
      'HTTP_PORT',
      ABSENT,
      0,
      () =>
        new Promise<NetServer>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, ABSENT, () => resolve(server));
        }),
    );
    await expect(plain).rejects.toBeInstanceOf(ListenError);
    await expect(plain).rejects.toMatchObject({ code: 'ADDRESS_NOT_AVAILABLE', variable: 'HOST', host: ABSENT, port: 0 });
    await expect(plain).rejects.toThrow(`HOST=${ABSENT}: this machine has no such address`);
    const server = new Server();
    try {
      const grpc = listenOn('PEER_PORT', ABSENT, 0, () => bindServer(server, ABSENT, 0));
      await expect(grpc).rejects.toMatchObject({ code: 'ADDRESS_NOT_AVAILABLE', variable: 'PEER_HOST' });
      await expect(grpc).rejects.toThrow('set PEER_HOST to an address of this machine');
    } finally {
      server.forceShutdown();
    }
    await expect(
      listenOn('METRICS_PORT', ABSENT, 0, () => Promise.reject(Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }))),
    ).rejects.toMatchObject({ variable: 'METRICS_HOST' });
  });

  it('a port this process may not open (EACCES): PORT_FORBIDDEN naming the port variable', async () => {
    // The tests may run as root, which may bind port 80: the refusal is the one Node gives an unprivileged process.
    const refused = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES', syscall: 'listen' });
    const failed = listenOn('HTTP_PORT', '0.0.0.0', 80, () => Promise.reject(refused));
    await expect(failed).rejects.toMatchObject({
      code: 'PORT_FORBIDDEN',
      variable: 'HTTP_PORT',
      host: '0.0.0.0',
      port: 80,
      cause: refused,
    });
    await expect(failed).rejects.toThrow('HTTP_PORT=80: this process may not listen on 0.0.0.0:80');
    // grpc-js keeps the errno only in its message.
    const grpc = new Error('cannot bind 0.0.0.0:443: No address added out of total 1 resolved', {
      cause: new Error('Failed to add port 0.0.0.0:443: listen EACCES: permission denied'),
    });
    expect(listenErrorCode(grpc)).toBe('PORT_FORBIDDEN');
    await expect(listenOn('GRPC_PORT', '0.0.0.0', 443, () => Promise.reject(grpc))).rejects.toMatchObject({
      code: 'PORT_FORBIDDEN',
      variable: 'GRPC_PORT',
    });
  });

  it('a PortTakenError is a ListenError too (main handles them as one)', () => {
    const taken = new PortTakenError('GRPC_PORT', '::', 50051);
    expect(taken).toBeInstanceOf(ListenError);
    expect(taken).toMatchObject({ code: 'PORT_TAKEN', variable: 'GRPC_PORT', name: 'PortTakenError' });
  });
});
