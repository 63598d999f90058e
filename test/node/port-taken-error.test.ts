/** PortTakenError: a bind refused because another process holds the port, named by its variable. */
import { Server } from '@grpc/grpc-js';
import { createServer, type Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bindServer } from '../../cluster/grpc-server.ts';
import { isAddressInUse, listenOn, PortTakenError } from '../../node/port-taken-error.ts';

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
    const other = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' });
    await expect(listenOn('HTTP_PORT', '0.0.0.0', 80, () => Promise.reject(other))).rejects.toBe(other);
    const deep = new Error('outer', { cause: new Error('middle', { cause: Object.assign(new Error('inner'), { code: 'EADDRINUSE' }) }) });
    expect(isAddressInUse(deep)).toBe(true);
    expect(isAddressInUse(other)).toBe(false);
    expect(isAddressInUse('EADDRINUSE')).toBe(false);
    expect(isAddressInUse(undefined)).toBe(false);
  });
});
