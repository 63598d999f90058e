/** NodeDelivery: one handler per channel, payloads for this node handled in place, others handed to the transport. */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { NodeDelivery } from '../../cluster/node-delivery.ts';
import { LogThrottle } from '../../runtime/log-throttle.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { runtimeError } from '../../runtime/result.ts';

describe('NodeDelivery', () => {
  it('hands a payload for another node to the transport, untouched', async () => {
    const sent: unknown[] = [];
    const nodes = new NodeDelivery(
      'n1',
      (node, channel, payload) => (sent.push({ node, channel, payload }), { ok: true, value: undefined }),
      silentLogger,
    );
    expect(await nodes.deliverTo('n2', 'c', { a: [1] })).toEqual({ ok: true, value: undefined });
    expect(sent).toEqual([{ node: 'n2', channel: 'c', payload: { a: [1] } }]);
  });

  it('passes the transport’s failure back', async () => {
    const nodes = new NodeDelivery('n1', () => Promise.resolve(runtimeError('unavailable', 'breaker open')), silentLogger);
    expect(await nodes.deliverTo('n2', 'c', 1)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
  });

  it('runs the channel’s handler for a received payload and reports ok, refused or no_handler', () => {
    const nodes = new NodeDelivery('n1', () => runtimeError('unavailable', 'unused'), silentLogger);
    const got: unknown[] = [];
    nodes.onDelivery('c', (payload, from) => (got.push({ payload, from }), payload === 'take'));
    expect(nodes.receive('c', 'take', 'n2')).toBe('ok');
    expect(nodes.receive('c', 'leave', 'n3')).toBe('refused');
    expect(nodes.receive('other', 'take', 'n2')).toBe('no_handler');
    expect(got).toEqual([
      { payload: 'take', from: 'n2' },
      { payload: 'leave', from: 'n3' },
    ]);
  });

  it('handles a payload for this node in place, without the transport', async () => {
    const nodes = new NodeDelivery(
      'n1',
      () => {
        throw new Error('the transport must not be used');
      },
      silentLogger,
    );
    const got: unknown[] = [];
    nodes.onDelivery('c', (payload) => got.push(payload) > 0);
    expect(await nodes.deliverTo('n1', 'c', 7)).toEqual({ ok: true, value: undefined });
    expect(got).toEqual([7]);
    expect(await nodes.deliverTo('n1', 'none', 7)).toMatchObject({ ok: false, error: { code: 'unavailable' } });
  });

  it('takes one handler per channel; unregistering frees it', () => {
    const nodes = new NodeDelivery('n1', () => runtimeError('unavailable', 'unused'), silentLogger);
    const off = nodes.onDelivery('c', () => true);
    expect(() => nodes.onDelivery('c', () => true)).toThrow(/already has a handler/);
    off();
    expect(nodes.receive('c', 1, 'n2')).toBe('no_handler');
    nodes.onDelivery('c', () => false);
    expect(nodes.receive('c', 1, 'n2')).toBe('refused');
  });

  it('logs deliveries on unknown channels sparingly, with the peer-chosen channel name cut short', () => {
    const lines: { channel: string; suppressed: number }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { channel: string; suppressed: number }) },
    );
    const nodes = new NodeDelivery('n1', () => runtimeError('unavailable', 'unused'), logger, new LogThrottle(3, 1_000, () => 0));
    for (let i = 0; i < 50; i++) expect(nodes.receive(`${'x'.repeat(10_000)}${i}`, {}, 'n2')).toBe('no_handler');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.channel).toBe('x'.repeat(100));
  });
});
