/** warnIfPlaintext: the one start-up warning of every server of the node that serves plaintext beyond loopback. */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { warnIfPlaintext } from '../../node/tls-material.ts';

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
