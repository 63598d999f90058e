import { describe, expect, it, vi } from 'vitest';
import { DeviceLanes } from '../../../edge-api/hub-ingress/device-lanes.ts';

interface Item { key: string; n: number }

/** Lanes whose `run` fails an item while `failing` holds it, recording every attempt. */
function lanes(giveUpAfterMs = 10_000) {
  const attempts: string[] = [];
  const done: string[] = [];
  const failing = new Set<string>();
  const gaveUp: string[] = [];
  const l = new DeviceLanes<Item>({
    run: async ({ key, n }) => {
      const id = `${key}${n}`;
      attempts.push(id);
      await Promise.resolve();
      if (failing.has(id)) return 'overloaded';
      done.push(id);
      return undefined;
    },
    onGiveUp: ({ key, n }, reason) => gaveUp.push(`${key}${n}:${reason}`),
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
    await vi.waitFor(() => expect(attempts.filter((x) => x === 'a1').length).toBeGreaterThanOrEqual(3));
    expect(done).toEqual(['b1']);
    failing.delete('a1');
    await vi.waitFor(() => expect(done).toEqual(['b1', 'a1', 'a2', 'a3']));
    expect(l.size).toBe(0);
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
