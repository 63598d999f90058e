/** The node's HTTP servers: HTTPS with a certificate (and client certificates with a CA), plaintext with a warning off loopback. */
import { Hono } from 'hono';
import { request } from 'node:https';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listenHttp, type HttpListener } from '../../node/http-listener.ts';
import { readTlsMaterial } from '../../node/tls-material.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { makeTestPki, type TestPki } from '../support/test-certificates.ts';

let pki: TestPki;
const listeners: HttpListener[] = [];

beforeAll(() => {
  pki = makeTestPki();
});

afterAll(() => pki.remove());

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close(100)));
});

const app = new Hono().get('/healthz', (c) => c.json({ status: 'ok' }));

async function listen(opts: Partial<Parameters<typeof listenHttp>[1]> = {}): Promise<HttpListener> {
  const l = await listenHttp(app.fetch, {
    name: 'HTTP edge',
    host: '127.0.0.1',
    port: 0,
    plaintextHint: 'use TLS',
    log: silentLogger,
    ...opts,
  });
  listeners.push(l);
  return l;
}

/** A GET over HTTPS that trusts `ca` only, optionally with a client certificate. */
function httpsGet(port: number, o: { ca: Buffer; client?: { cert: Buffer; key: Buffer } }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca: o.ca, agent: false, ...(o.client ?? {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A logger whose lines land in `lines` (parsed). */
function capturingLogger() {
  const lines: { level: number; msg: string; host?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

const WARN = 40;

describe('listenHttp', () => {
  it('serves HTTPS with the configured certificate: a client trusting the CA gets through', async () => {
    const tls = readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: undefined }, 'HTTP_TLS');
    const l = await listen({ tls });
    expect(l.tls).toBe(true);
    expect(await httpsGet(l.port, { ca: pki.read(pki.ca) })).toEqual({ status: 200, body: '{"status":"ok"}' });
    // A client that trusts another CA refuses the server.
    await expect(httpsGet(l.port, { ca: pki.read(pki.otherCa) })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    // Plaintext HTTP on the TLS port gets no answer.
    await expect(fetch(`http://127.0.0.1:${l.port}/healthz`)).rejects.toThrow();
  });

  it('with a CA, requires a client certificate that chains to it', async () => {
    const tls = readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca }, 'HTTP_TLS');
    const l = await listen({ tls });
    const ca = pki.read(pki.ca);
    const client = { cert: pki.read(pki.client.cert), key: pki.read(pki.client.key) };
    expect((await httpsGet(l.port, { ca, client })).status).toBe(200);
    await expect(httpsGet(l.port, { ca })).rejects.toThrow();
    const stranger = { cert: pki.read(pki.strangerClient.cert), key: pki.read(pki.strangerClient.key) };
    await expect(httpsGet(l.port, { ca, client: stranger })).rejects.toThrow();
  });

  it('warns when it serves plaintext on a non-loopback address, and not on loopback or with TLS', async () => {
    const plainLoopback = capturingLogger();
    await listen({ log: plainLoopback.log });
    const plainWide = capturingLogger();
    const wide = await listen({ host: '0.0.0.0', log: plainWide.log });
    const tlsWide = capturingLogger();
    await listen({
      host: '0.0.0.0',
      log: tlsWide.log,
      tls: readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: undefined }, 'HTTP_TLS'),
    });

    expect(plainWide.lines.filter((l) => l.level === WARN)).toEqual([
      expect.objectContaining({ host: '0.0.0.0', msg: 'HTTP edge serves plaintext HTTP on a non-loopback address: use TLS' }),
    ]);
    expect(plainLoopback.lines.filter((l) => l.level >= WARN)).toEqual([]);
    expect(tlsWide.lines.filter((l) => l.level >= WARN)).toEqual([]);
    expect((await fetch(`http://127.0.0.1:${wide.port}/healthz`)).status).toBe(200);
  });

  it('rejects when the port is taken', async () => {
    const first = await listen();
    await expect(
      listenHttp(app.fetch, { name: 'x', host: '127.0.0.1', port: first.port, plaintextHint: '', log: silentLogger }),
    ).rejects.toThrow(/EADDRINUSE/);
  });

  it('logs every error of the listening server, the first one too, and keeps serving', async () => {
    const { log, lines } = capturingLogger();
    const l = await listen({ log });
    // Before, the bind-time `once('error', reject)` stayed attached: it swallowed the first runtime error, and the second threw.
    l.server.emit('error', new Error('accept failed: EMFILE'));
    l.server.emit('error', new Error('accept failed again'));
    const errors = lines.filter((line) => line.level === 50);
    expect(errors).toEqual([
      expect.objectContaining({ msg: 'HTTP edge server error', err: expect.objectContaining({ message: 'accept failed: EMFILE' }) }),
      expect.objectContaining({ msg: 'HTTP edge server error', err: expect.objectContaining({ message: 'accept failed again' }) }),
    ]);
    expect((await fetch(`http://127.0.0.1:${l.port}/healthz`)).status).toBe(200);
  });

  it('answers requests the HTTP parser refuses with the error shape: oversized headers 431, garbage 400', async () => {
    const l = await listen();
    const big = await fetch(`http://127.0.0.1:${l.port}/healthz`, { headers: { 'x-a': 'a'.repeat(9_000), 'x-b': 'b'.repeat(9_000) } });
    expect(big.status).toBe(431);
    expect(await big.json()).toEqual({ error: { code: 'headers_too_large', message: 'request headers exceed 16 KiB' } });
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(l.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toContain('{"error":{"code":"invalid_argument","message":"malformed HTTP request"}}');
    // The server still serves.
    expect((await fetch(`http://127.0.0.1:${l.port}/healthz`)).status).toBe(200);
  });

  it('closes, cutting open requests after the grace period', async () => {
    let release: (() => void) | undefined;
    const slow = new Hono().get('/slow', () => new Promise<Response>((resolve) => (release = () => resolve(new Response('late')))));
    const l = await listenHttp(slow.fetch, { name: 'x', host: '127.0.0.1', port: 0, plaintextHint: '', log: silentLogger });
    const pending = fetch(`http://127.0.0.1:${l.port}/slow`).then(
      (r) => r.status,
      () => 'cut',
    );
    await expect.poll(() => release !== undefined).toBe(true);
    await l.close(50);
    expect(await pending).toBe('cut');
    release?.();
  });
});
