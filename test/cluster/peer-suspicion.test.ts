/** The peer transport's suspicion hooks over real gRPC on loopback: a stream that breaks under a node reports the node on the other end. */
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { signPeerStream, type PeerAuthConfig } from '../../cluster/peer-auth.ts';
import { PeerPool } from '../../cluster/peer-pool.ts';
import { PeerServer, type PeerHandler } from '../../cluster/peer-server.ts';
import { exchangeMethod, type WirePeerBatch } from '../../cluster/peer-wire.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ok } from '../../runtime/result.ts';

const HOST = '127.0.0.1';
const AUTH: PeerAuthConfig = { cluster: 'peer-suspicion', secret: 'peer-suspicion-test-secret-0123456789abcdef' };
const echo: PeerHandler = {
  ask: (actorId) => Promise.resolve(ok(actorId)),
  tell: () => {},
  deliver: () => 'ok',
};

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function server(nodeId: string, broken: string[]): Promise<{ server: PeerServer; port: number }> {
  const s = new PeerServer({
    nodeId,
    handler: echo,
    auth: AUTH,
    acceptsMessage: () => undefined,
    logger: silentLogger,
    registry: new Registry(),
    shutdownGraceMs: 200,
    onStreamBroken: (peer) => broken.push(peer),
  });
  const port = await s.listen(HOST, 0);
  closers.push(() => s.close());
  return { server: s, port };
}

describe('peer stream suspicion hooks', () => {
  it('the client reports the peer whose server went away under its stream, not one it closed itself', async () => {
    const brokenAtServer: string[] = [];
    const b = await server('node-b', brokenAtServer);
    const brokenAtClient: string[] = [];
    const pool = new PeerPool(() => `${HOST}:${b.port}`, {
      nodeId: 'node-a',
      auth: AUTH,
      logger: silentLogger,
      registry: new Registry(),
      onStreamBroken: (id) => brokenAtClient.push(id),
    });
    closers.push(() => pool.close());
    expect(await pool.get('node-b').ask('x', {}, 2_000, 0, 1)).toEqual({ ok: true, value: 'x' });
    // As a killed process does: every connection dropped, no goodbye on the stream.
    (b.server as unknown as { server: { forceShutdown(): void } }).server.forceShutdown();
    await vi.waitFor(() => expect(brokenAtClient).toEqual(['node-b']));

    // A client this node closes is no suspicion.
    const other = await server('node-c', []);
    const quiet: string[] = [];
    const pool2 = new PeerPool(() => `${HOST}:${other.port}`, {
      nodeId: 'node-a',
      auth: AUTH,
      logger: silentLogger,
      registry: new Registry(),
      onStreamBroken: (id) => quiet.push(id),
    });
    expect(await pool2.get('node-c').ask('y', {}, 2_000, 0, 1)).toMatchObject({ ok: true });
    await pool2.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(quiet).toEqual([]);
  });

  it('the server reports the peer whose stream was cancelled under it (a client that went away), once', async () => {
    const broken: string[] = [];
    const b = await server('node-b', broken);
    const client = new Client(`${HOST}:${b.port}`, credentials.createInsecure());
    closers.push(() => client.close());
    const md = new Metadata();
    signPeerStream(md, AUTH.secret, AUTH.cluster, 'node-a', 'node-b');
    const method = exchangeMethod();
    const call = client.makeBidiStreamRequest<WirePeerBatch, WirePeerBatch>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      md,
      {},
    );
    call.on('error', () => {});
    await new Promise<void>((resolve) => call.once('metadata', () => resolve()));
    call.cancel();
    await vi.waitFor(() => expect(broken).toEqual(['node-a']));
    await new Promise((r) => setTimeout(r, 50));
    expect(broken).toEqual(['node-a']);
  });
});
