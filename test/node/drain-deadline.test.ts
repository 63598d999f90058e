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

describe('drainWithin', () => {
  it('gives up on a drain that never finishes after the timeout: logs an error naming it, resolves false, and the shutdown goes on', async () => {
    const { log, lines } = capture();
    const started = Date.now();
    await expect(drainWithin(new Promise<void>(() => {}), 100, log)).resolves.toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        drainTimeoutMs: 100,
        msg: 'drain did not finish in 100 ms (DRAIN_TIMEOUT_MS); leases will lapse',
      }),
    ]);
  });

  it('resolves true for a drain that finishes in time, without a line, and does not hold the process with its timer', async () => {
    const { log, lines } = capture();
    await expect(drainWithin(Promise.resolve(), 60_000, log)).resolves.toBe(true);
    expect(lines).toEqual([]);
  });

  it('logs a failed drain and resolves false; a drain failing after the timeout is no unhandled rejection', async () => {
    const { log, lines } = capture();
    await expect(drainWithin(Promise.reject(new Error('redis gone')), 60_000, log)).resolves.toBe(false);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'drain failed; leases will lapse',
        err: expect.objectContaining({ message: 'redis gone' }),
      }),
    ]);
    let fail: (err: Error) => void = () => {};
    const late = new Promise<void>((_resolve, reject) => (fail = reject));
    await expect(drainWithin(late, 10, log)).resolves.toBe(false);
    // Would surface as an unhandled rejection (and fail the run) if nothing handled it.
    fail(new Error('too late'));
    await new Promise((resolve) => setTimeout(resolve, 20));
  });
});
