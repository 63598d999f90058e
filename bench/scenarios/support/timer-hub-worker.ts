/**
 * A load process of the timers scenario (started by `TimerHubPool`): one hub stream per home over
 * a shared channel, declaring the light its cron rule commands. Each command is acknowledged at
 * once (so its expiry reminder is cancelled) and, while recording, timed against the cron boundary
 * it answers: lateness = receipt − due time, on this machine's clock (the node shares it).
 */
import { closeSharedChannels, HubClient } from '../../../tools/hub-client/hub-client.ts';
import { LatencyRecorder } from '../../harness/hdr.ts';
import type { HubSpec } from '../../harness/load-protocol.ts';
import { serveRequests } from '../../harness/worker-process.ts';
import { cronSlotOf, dueBefore, dueTimesIn, TIMER_DEVICE, type CronSlot } from './timer-rules.ts';

/** A home's hub and the index that sets its cron's second offset. */
export interface TimerHubSpec extends HubSpec {
  readonly index: number;
}

export interface TimerHubOps {
  connect: { args: { hubs: TimerHubSpec[]; periodS: number; concurrency: number }; result: { connected: number } };
  /** Records the firings due in [from, to) (epoch ms, period boundaries), waiting `graceMs` after `to` for late ones. */
  record: {
    args: { from: number; to: number; graceMs: number };
    result: {
      /** Receipt − due time of each firing due in the window (first receipt per due time). */
      lateness: string;
      /** A setTimeout chain in this process aimed at every 10 ms instant of the window: the floor of what this process can time. */
      timerFloor: string;
      received: number;
      /** Due times in the window with no command received by `to + graceMs`. */
      missing: number;
      /** Commands beyond the first for one due time. */
      doubled: number;
      /** Hub streams that ended (they should stay up throughout). */
      ended: number;
    };
  };
  close: { args: Record<string, never>; result: { closed: number } };
}

type Op = keyof TimerHubOps;

interface Hub {
  readonly client: HubClient;
  readonly slot: CronSlot;
  /** Per due time in the recorded window: commands received for it. */
  readonly seen: Map<number, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nowMs = (): number => performance.timeOrigin + performance.now();

let hubs: Hub[] = [];
let window: { from: number; to: number; lateness: LatencyRecorder } | undefined;

function onCommand(hub: Hub, commandId: string): void {
  const at = nowMs();
  hub.client.commandResult(commandId, true);
  const w = window;
  if (!w) return;
  const due = dueBefore(hub.slot, at);
  if (due < w.from || due >= w.to) return;
  const n = hub.seen.get(due) ?? 0;
  hub.seen.set(due, n + 1);
  if (n === 0) w.lateness.record(at - due);
}

async function connect(args: TimerHubOps['connect']['args']): Promise<TimerHubOps['connect']['result']> {
  const { hubs: specs, periodS, concurrency } = args;
  for (let i = 0; i < specs.length; i += concurrency) {
    const batch = specs.slice(i, i + concurrency).map((spec) => {
      const client = new HubClient(spec.addresses[spec.first]!, spec.secret, { shared: true, keepMessages: false });
      const hub: Hub = { client, slot: cronSlotOf(spec.index, periodS), seen: new Map() };
      client.onMessage((m) => {
        if (m.command) onCommand(hub, m.command.command_id);
      });
      client.hello(spec.hubId, spec.homeId, [TIMER_DEVICE], 'bench-timers');
      hubs.push(hub);
      return client.welcome(60_000);
    });
    await Promise.all(batch);
  }
  return { connected: hubs.length };
}

async function record(args: TimerHubOps['record']['args']): Promise<TimerHubOps['record']['result']> {
  const { from, to, graceMs } = args;
  for (const h of hubs) h.seen.clear();
  const lateness = LatencyRecorder.create();
  const timerFloor = LatencyRecorder.create();
  window = { from, to, lateness };
  // The floor: how late a plain timer of this process runs at the same moments.
  let target = Math.ceil(Math.max(nowMs(), from) / 10) * 10;
  let floorTimer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    timerFloor.record(nowMs() - target);
    target += 10;
    if (target < to) floorTimer = setTimeout(tick, Math.max(0, target - nowMs()));
  };
  floorTimer = setTimeout(tick, Math.max(0, target - nowMs()));
  await sleep(Math.max(0, to + graceMs - nowMs()));
  clearTimeout(floorTimer);
  window = undefined;
  let received = 0;
  let missing = 0;
  let doubled = 0;
  for (const h of hubs) {
    for (const due of dueTimesIn(h.slot, from, to)) {
      const n = h.seen.get(due) ?? 0;
      received += n;
      if (n === 0) missing++;
      else doubled += n - 1;
    }
  }
  return {
    lateness: lateness.encode(),
    timerFloor: timerFloor.encode(),
    received,
    missing,
    doubled,
    ended: hubs.filter((h) => h.client.status !== undefined).length,
  };
}

const handlers: { [K in Op]: (args: TimerHubOps[K]['args']) => Promise<TimerHubOps[K]['result']> } = {
  connect,
  record,
  close: async () => {
    for (const h of hubs) h.client.close();
    const closed = hubs.length;
    hubs = [];
    return { closed };
  },
};

serveRequests((op, args) => {
  const handler = handlers[op as Op] as ((args: unknown) => Promise<unknown>) | undefined;
  return handler ? handler(args) : Promise.reject(new Error(`unknown operation ${op}`));
}, closeSharedChannels);
