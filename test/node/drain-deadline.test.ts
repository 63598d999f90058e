/** drainWithin: the shutdown's bound on the cluster drain (DRAIN_TIMEOUT_MS). */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { drainWithin } from '../../node/drain-deadline.ts';
import type { Logger } from '../../runtime/logger.ts';

/** A logger whose lines land in the returned array, parsed. */
function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info', base: {} }, sink), lines };
}

const REMEDY =
  'the node closes anyway, releasing the shard leases it still holds, and the other nodes take it out of the ring once its heartbeat is gone; ' +
  'if the ring still lists n1 afterwards (no other node alive), take it out: npm run ring -- remove n1 (or POST /v1/admin/ring {"remove":["n1"]})';

describe('drainWithin', () => {
  it('gives up on a drain that never finishes after the timeout: aborts its signal, logs what happens and what to do, resolves false', async () => {
    const { log, lines } = capture();
    let signal: AbortSignal | undefined;
    const started = Date.now();
    const drain = (s: AbortSignal): Promise<void> => {
      signal = s;
      return new Promise<void>(() => {});
    };
    await expect(drainWithin(drain, { timeoutMs: 100, nodeId: 'n1', log })).resolves.toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(Date.now() - started).toBeLessThan(2_000);
    // The drain is told to stop (before the fix it polled, and later changed the ring, for ever).
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toEqual(new Error('the drain did not finish within DRAIN_TIMEOUT_MS (100 ms)'));
    expect(lines).toEqual([
      expect.objectContaining({ level: 50, drainTimeoutMs: 100, msg: `drain did not finish in 100 ms (DRAIN_TIMEOUT_MS): ${REMEDY}` }),
    ]);
    expect(lines[0]!.msg).not.toContain('lapse');
  });

  it('resolves true for a drain that finishes in time, without a line and without aborting it, and does not hold the process with its timer', async () => {
    const { log, lines } = capture();
    let signal: AbortSignal | undefined;
    const drain = async (s: AbortSignal): Promise<void> => void (signal = s);
    await expect(drainWithin(drain, { timeoutMs: 60_000, nodeId: 'n1', log })).resolves.toBe(true);
    expect(signal?.aborted).toBe(false);
    expect(lines).toEqual([]);
  });

  it('logs a failed drain with what to do and resolves false; a drain failing after the timeout is no unhandled rejection', async () => {
    const { log, lines } = capture();
    await expect(drainWithin(() => Promise.reject(new Error('redis gone')), { timeoutMs: 60_000, nodeId: 'n1', log })).resolves.toBe(false);
    expect(lines).toEqual([
      expect.objectContaining({ level: 50, msg: `drain failed: ${REMEDY}`, err: expect.objectContaining({ message: 'redis gone' }) }),
    ]);
    let fail: (err: Error) => void = () => {};
    const late = new Promise<void>((_resolve, reject) => (fail = reject));
    await expect(drainWithin(() => late, { timeoutMs: 10, nodeId: 'n1', log })).resolves.toBe(false);
    // Would surface as an unhandled rejection (and fail the run) if nothing handled it.
    fail(new Error('too late'));
    await new Promise((resolve) => setTimeout(resolve, 20));
  });
});
