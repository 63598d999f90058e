/** TLS material read at start (checked PEM, a cluster CA of its own) and warnIfPlaintext: the one start-up warning of every server of the node that serves plaintext beyond loopback. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../node/config.ts';
import { checkPeerCaIsOwn, readTlsMaterial, warnIfPlaintext } from '../../node/tls-material.ts';
import { makeTestPki, type TestPki } from '../support/test-certificates.ts';

function capture() {
  const lines: { level: number; msg: string; host?: string; port?: number }[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
}

describe('warnIfPlaintext', () => {
  it('warns, naming the server, protocol, host, port and the hint, for plaintext on a non-loopback address', () => {
    const { lines, log } = capture();
    expect(
      warnIfPlaintext(log, { name: 'the peer port', protocol: 'gRPC', host: '10.0.0.7', port: 50052, tls: false, hint: 'set PEER_TLS_*' }),
    ).toBe(true);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        host: '10.0.0.7',
        port: 50052,
        msg: 'the peer port serves plaintext gRPC on a non-loopback address: set PEER_TLS_*',
      }),
    ]);
  });

  it('stays quiet with TLS or on loopback', () => {
    const { lines, log } = capture();
    for (const [host, tls] of [
      ['0.0.0.0', true],
      ['127.0.0.1', false],
      ['::1', false],
      ['localhost', false],
    ] as const)
      expect(warnIfPlaintext(log, { name: 'HTTP edge', protocol: 'HTTP', host, tls, hint: 'use TLS' })).toBe(false);
    expect(lines).toEqual([]);
  });
});

describe('readTlsMaterial', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.remove());

  it('reads a certificate, its key and a CA', () => {
    const m = readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca }, 'HUB_TLS');
    expect(m?.cert.toString()).toContain('BEGIN CERTIFICATE');
    expect(m?.ca).toBeDefined();
  });

  it('refuses at start a file that is not what its variable names, naming the variable (not a bare OpenSSL stack)', () => {
    const garbage = join(pki.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a pem at all\n');
    expect(() => readTlsMaterial({ cert: garbage, key: pki.server.key, ca: undefined }, 'HTTP_TLS')).toThrow(
      /^HTTP_TLS_CERT=.*garbage\.pem is not a PEM certificate/,
    );
    expect(() => readTlsMaterial({ cert: pki.server.cert, key: garbage, ca: undefined }, 'HTTP_TLS')).toThrow(
      /^HTTP_TLS_KEY=.*is not a PEM key/,
    );
    // A CA that is garbage used to be accepted: the endpoint then refused every client.
    expect(() => readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: garbage }, 'PEER_TLS')).toThrow(ConfigError);
    expect(() => readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: garbage }, 'PEER_TLS')).toThrow(/^PEER_TLS_CA=/);
  });

  it('refuses a peer CA that is also the hubs’ or the apps’ client CA: its certificates would all be cluster members', () => {
    const peer = readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca }, 'PEER_TLS');
    const sameCa = readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca }, 'HUB_TLS');
    const otherCa = readTlsMaterial({ cert: pki.server.cert, key: pki.server.key, ca: pki.otherCa }, 'HTTP_TLS');
    expect(() => checkPeerCaIsOwn(peer, { HUB_TLS: sameCa, HTTP_TLS: undefined })).toThrow(/PEER_TLS_CA is also HUB_TLS_CA/);
    expect(() => checkPeerCaIsOwn(peer, { HUB_TLS: undefined, HTTP_TLS: otherCa })).not.toThrow();
    expect(() => checkPeerCaIsOwn(undefined, { HUB_TLS: sameCa })).not.toThrow();
  });
});
