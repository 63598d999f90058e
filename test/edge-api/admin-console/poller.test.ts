import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';

/** A browser module of the console, imported as it is served (plain JS, no DOM at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

let nextDelay: (startedAt: number, finishedAt: number, periodMs: number) => number;
let createPoller: (task: (isCurrent: () => boolean) => Promise<void>, options?: Record<string, unknown>) => any;

beforeAll(async () => {
  ({ nextDelay, createPoller } = await load('poller.js'));
});

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** A task taking `ms` per run, recording when each run started and how many ran at once. */
function slowTask(ms: () => number) {
  const starts: number[] = [];
  let running = 0;
  let most = 0;
  const task = async (): Promise<void> => {
    starts.push(Date.now());
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, ms()));
    running--;
  };
  return { task, starts, most: () => most };
}

describe('admin console: the polling loop', () => {
  it('waits what is left of the period, never less than nothing', () => {
    expect(nextDelay(1_000, 1_200, 1_000)).toBe(800);
    expect(nextDelay(1_000, 2_000, 1_000)).toBe(0);
    expect(nextDelay(1_000, 4_500, 1_000)).toBe(0);
  });

  it('starts a run every period when runs are quick (≤ 1 s apart, not 1 s plus the run)', async () => {
    const { task, starts } = slowTask(() => 300);
    const poller = createPoller(task, { periodMs: 1_000 });
    poller.start();
    await vi.advanceTimersByTimeAsync(3_050);
    poller.stop();
    expect(starts).toEqual([0, 1_000, 2_000, 3_000]);
  });

  it('runs a slow read back to back, never two at once', async () => {
    const { task, starts, most } = slowTask(() => 2_500);
    const poller = createPoller(task, { periodMs: 1_000 });
    poller.start();
    await vi.advanceTimersByTimeAsync(7_600);
    poller.stop();
    // Each next run at once (a timer of 0 ms fires 1 ms later).
    expect(starts.length).toBe(4);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(2_500);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeLessThanOrEqual(2_501);
    expect(most()).toBe(1);
  });

  it('does not overlap across stop and start: the new loop waits for the run in progress', async () => {
    const { task, starts, most } = slowTask(() => 800);
    const poller = createPoller(task, { periodMs: 1_000 });
    poller.start();
    await vi.advanceTimersByTimeAsync(100);
    poller.stop();
    poller.start();
    poller.start();
    await vi.advanceTimersByTimeAsync(2_000);
    poller.stop();
    expect(most()).toBe(1);
    expect(starts).toEqual([0, 800, 1_800]);
  });

  it('marks the answer of a run stopped meanwhile as stale, and runs no more', async () => {
    const seen: boolean[] = [];
    const poller = createPoller(async (isCurrent: () => boolean) => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      seen.push(isCurrent());
    });
    poller.start();
    await vi.advanceTimersByTimeAsync(2_200);
    expect(seen).toEqual([true, true]);
    // The third run (from 2 000 ms) is in progress.
    poller.stop();
    expect(poller.running).toBe(false);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(seen).toEqual([true, true, false]);
  });

  it('skips runs while told to (a hidden tab), and goes on after a failed run', async () => {
    let hidden = true;
    let runs = 0;
    const poller = createPoller(
      async () => {
        runs++;
        throw new Error('the node is down');
      },
      { skip: () => hidden },
    );
    poller.start();
    await vi.advanceTimersByTimeAsync(2_500);
    expect(runs).toBe(0);
    hidden = false;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(runs).toBe(2);
    poller.stop();
  });
});
