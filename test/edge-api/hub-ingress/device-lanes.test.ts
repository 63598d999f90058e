import { describe, expect, it, vi } from 'vitest';
import { DeviceLanes } from '../../../edge-api/hub-ingress/device-lanes.ts';

interface Item {
  key: string;
  n: number;
}

/** Lanes whose `run` fails an item while `failing` holds it, recording every attempt. */
function lanes(giveUpAfterMs = 10_000, maxBatch?: number) {
  const attempts: string[] = [];
  const done: string[] = [];
  const failing = new Set<string>();
  const gaveUp: string[] = [];
  const l = new DeviceLanes<Item>({
    run: async (items) => {
      const ids = items.map(({ key, n }) => `${key}${n}`);
      attempts.push(ids.join('+'));
      await Promise.resolve();
      if (ids.some((id) => failing.has(id))) return 'overloaded';
      done.push(...ids);
      return undefined;
    },
    onGiveUp: (items, reason) => gaveUp.push(`${items[0]!.key}${items[0]!.n}:${reason}`),
    ...(maxBatch === undefined ? {} : { maxBatch }),
    retry: { baseMs: 1, maxMs: 4, giveUpAfterMs },
    clock: Date.now,
    random: () => 0.5,
  });
  return { l, attempts, done, failing, gaveUp };
}

describe('DeviceLanes', () => {
  it('runs one key in order and retries a failing item in place, so later items never overtake it', async () => {
    const { l, done, failing, attempts } = lanes();
    failing.add('a1');
    for (const n of [1, 2, 3]) l.push('a', { key: 'a', n });
    l.push('b', { key: 'b', n: 1 });
    await vi.waitFor(() => expect(attempts.filter((x) => x === 'a1+a2+a3').length).toBeGreaterThanOrEqual(3));
    expect(done).toEqual(['b1']);
    failing.delete('a1');
    await vi.waitFor(() => expect(done).toEqual(['b1', 'a1', 'a2', 'a3']));
    expect(l.size).toBe(0);
  });

  it('sends what one tick pushed as one batch, up to maxBatch', async () => {
    const { l, done, attempts } = lanes(10_000, 3);
    for (const n of [1, 2, 3, 4, 5, 6]) l.push('a', { key: 'a', n });
    await vi.waitFor(() => expect(done).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6']));
    expect(attempts).toEqual(['a1+a2+a3', 'a4+a5+a6']);
  });

  it('sends what queued while a batch was in flight as the next batch', async () => {
    const { l, done, attempts } = lanes();
    l.push('a', { key: 'a', n: 1 });
    await vi.waitFor(() => expect(attempts).toEqual(['a1'])); // in flight
    l.push('a', { key: 'a', n: 2 });
    l.push('a', { key: 'a', n: 3 });
    await vi.waitFor(() => expect(done).toEqual(['a1', 'a2', 'a3']));
    expect(attempts).toEqual(['a1', 'a2+a3']);
  });

  it('gives up after giveUpAfterMs and stops every lane', async () => {
    const { l, failing, gaveUp, done } = lanes(30);
    failing.add('a1');
    l.push('a', { key: 'a', n: 1 });
    l.push('a', { key: 'a', n: 2 });
    await vi.waitFor(() => expect(gaveUp).toEqual(['a1:overloaded']));
    l.push('b', { key: 'b', n: 1 });
    await Promise.resolve();
    expect(done).toEqual([]);
  });

  it('stops at once: a backoff wait ends and nothing more runs', async () => {
    const { l, failing, attempts } = lanes();
    failing.add('a1');
    l.push('a', { key: 'a', n: 1 });
    await vi.waitFor(() => expect(attempts.length).toBeGreaterThanOrEqual(1));
    l.stop();
    const seen = attempts.length;
    failing.delete('a1');
    await new Promise((r) => setImmediate(r));
    expect(attempts.length).toBe(seen);
    expect(l.size).toBe(0);
  });
});
