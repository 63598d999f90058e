/**
 * Events everywhere, end to end: three real node processes on one private redis-server. An app on
 * node A follows a home that lives on node B; B is SIGKILLed under load; the app resumes on node C
 * from its Last-Event-ID and, across both streams, gets every event the home's log holds — in
 * order, none twice, no reset.
 */
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { shardOfHome } from '../../cluster/shard-of.ts';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { clusterTestFile, exited, homesOn, ownerOfHome, provisionHome, type TestCluster } from '../support/cluster-harness.ts';
import { LoadHub } from '../support/load-hub.ts';
import type { HelloDevice, HubReport } from '../../tools/hub-client/hub-client.ts';

const ADMIN = 'admin-token-for-events-everywhere';
const SHARDS = 64;
const file = clusterTestFile({ adminToken: ADMIN, shards: SHARDS, tag: 'ev' });
/** Long enough that the test's whole history stays in the log (it compares the streams with it). */
const NODE_ENV = { EVENT_LOG_LENGTH: '100000' };

const devices: HelloDevice[] = [
  { deviceId: 'd0', type: 'plug', capabilities: ['n'] },
  { deviceId: 'd1', type: 'plug', capabilities: ['n'] },
];
/** Report `seq` sets n = seq on d(seq % 2): every applied report changes a shadow, one `device.shadow` event each. */
const numbered = (seq: number): HubReport => ({ seq, device: `d${seq % 2}`, attributes: { n: seq }, tsMs: 1_700_000_000_000 + seq });

interface SseEvent {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly data: unknown;
}

/**
 * An app's event stream over HTTP (as an EventSource reads it). `following` resolves with the
 * `retry:` line, which the node writes once it follows the home.
 */
function openStream(cluster: TestCluster, nodeId: string, homeId: string, token: string, lastEventId?: string) {
  const abort = new AbortController();
  const events: SseEvent[] = [];
  let following: () => void = () => {};
  const followed = new Promise<void>((resolve) => (following = resolve));
  const reading = (async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.node(nodeId).httpPort}/v1/homes/${homeId}/events`, {
      headers: { authorization: `Bearer ${token}`, ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
      signal: abort.signal,
    });
    if (res.status !== 200) throw new Error(`GET events on ${nodeId}: HTTP ${res.status} ${await res.text()}`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
        const fields = new Map<string, string>();
        for (const line of buffer.slice(0, i).split('\n')) {
          const c = line.indexOf(':');
          if (c > 0) fields.set(line.slice(0, c), line.slice(c + 1).replace(/^ /, ''));
        }
        buffer = buffer.slice(i + 2);
        if (fields.has('retry')) following();
        if (fields.has('event')) {
          const data = fields.get('data');
          events.push({ id: fields.get('id'), event: fields.get('event'), data: data === undefined ? undefined : JSON.parse(data) });
        }
      }
    }
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
  const stream = {
    events,
    ids: () => events.filter((e) => e.id !== undefined).map((e) => e.id!),
    following: () =>
      Promise.race([followed, reading.then(() => Promise.reject(new Error(`the stream on ${nodeId} ended before it followed`)))]),
    close: async () => {
      abort.abort();
      await reading.catch(() => undefined);
    },
  };
  file.cleanup(() => stream.close());
  return stream;
}

/** Ids that occur more than once. */
const duplicates = (ids: readonly string[]): string[] => ids.filter((id, i) => ids.indexOf(id) !== i);

describe('events everywhere (real node processes, one private redis-server)', () => {
  it('an app on node A follows a home on node B; after B is SIGKILLed it resumes on node C from Last-Event-ID with no gap', async () => {
    const cluster = file.newCluster();
    await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => cluster.start(id, NODE_ENV)));
    const status = await cluster.settled('node-a', ['node-a', 'node-b', 'node-c']);
    const [homeId] = homesOn(status, 'node-b', 1, 'everywhere');
    expect(ownerOfHome(status, homeId!)).toBe('node-b');
    const { secret, appToken } = await provisionHome(cluster.api('node-a'), ADMIN, homeId!);

    // The app follows the home on node A (the home lives on B); a second app follows it on B itself.
    const onA = openStream(cluster, 'node-a', homeId!, appToken);
    const onB = openStream(cluster, 'node-b', homeId!, appToken);
    await Promise.all([onA.following(), onB.following()]);

    // The hub is connected to C (it survives), its home's actors live on B.
    const hub = new LoadHub({
      address: () => cluster.grpc(cluster.running().includes('node-c') ? 'node-c' : cluster.running()[0]!),
      secret,
      hubId: 'hub1',
      homeId: homeId!,
      devices,
      report: numbered,
      ratePerSec: 40,
    });
    file.cleanup(() => hub.stop());
    hub.start();

    // Events of a home on B reach the app on A.
    await vi.waitFor(() => expect(onA.ids().length).toBeGreaterThanOrEqual(30), { timeout: 20_000, interval: 50 });
    expect(onA.events.find((e) => e.id !== undefined)).toMatchObject({
      event: 'device.shadow',
      data: { deviceId: expect.stringMatching(/^d[01]$/) },
    });
    expect(onA.ids().every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    // The owner's own stream gets each event once too (they come from the log, not also from the effect).
    await vi.waitFor(() => expect(onB.ids().length).toBeGreaterThanOrEqual(30), { timeout: 10_000 });
    expect(duplicates(onB.ids())).toEqual([]);
    const common = Math.min(onA.ids().length, onB.ids().length);
    expect(onB.ids().slice(0, common)).toEqual(onA.ids().slice(0, common));

    // B dies; the app's connection moves (a load balancer sends it to C) with its last id.
    const producedAtKill = hub.produced;
    const killed = cluster.node('node-b');
    const killedAt = Date.now();
    killed.child.kill('SIGKILL');
    expect(await exited(killed)).toBeNull();
    await onA.close();
    const lastSeen = onA.ids().at(-1)!;
    const onC = openStream(cluster, 'node-c', homeId!, appToken, lastSeen);
    await onC.following();

    // The home is served again (on A or C): reports sent after the kill are acked and make events.
    await vi.waitFor(() => expect(hub.highestAck).toBeGreaterThan(producedAtKill + 40), { timeout: 60_000, interval: 100 });
    const servedAfterMs = (hub.ackLog.find((a) => a.upTo > producedAtKill)?.at ?? Date.now()) - killedAt;
    // And they reach the app on C live (not only its replay).
    await vi.waitFor(() => expect(onC.ids().length).toBeGreaterThanOrEqual(10), { timeout: 30_000, interval: 100 });
    await hub.finish(30_000);

    // Every event the home's log holds, in order: A's stream up to the kill, then C's from Last-Event-ID.
    const redis = new Redis(file.redis.url);
    file.cleanup(() => redis.disconnect());
    const key = new KeyLayout(cluster.opts.cluster).events(shardOfHome(homeId!, SHARDS), homeId!);
    const logIds = async (): Promise<string[]> => (await redis.xrange(key, '-', '+')).map(([id]) => id);
    await vi.waitFor(async () => expect(onC.ids().at(-1)).toBe((await logIds()).at(-1)), { timeout: 20_000, interval: 100 });
    // From A's first event on (the log may hold events of the provisioning, before the app followed).
    const log = await logIds();
    const all = log.slice(log.indexOf(onA.ids()[0]!));
    const received = [...onA.ids(), ...onC.ids()];
    expect(onC.events.filter((e) => e.event === 'reset')).toEqual([]);
    expect(duplicates(received)).toEqual([]);
    expect(received).toEqual(all);
    // The last shadow event of each device shows the last report the hub got acked for it (reports
    // are applied in batches, one event per device per batch): nothing acked is missing from the stream.
    const lastSeq = hub.highestAck;
    for (const [device, last] of [
      ['d0', lastSeq % 2 === 0 ? lastSeq : lastSeq - 1],
      ['d1', lastSeq % 2 === 1 ? lastSeq : lastSeq - 1],
    ] as const) {
      const shadows = onC.events.filter((e) => e.event === 'device.shadow' && (e.data as { deviceId: string }).deviceId === device);
      expect(shadows.at(-1)?.data).toMatchObject({ reported: { n: last } });
    }
    console.log(
      `[events-everywhere] ${all.length} events; ${onA.ids().length} on A before the kill, ${onC.ids().length} on C after resuming; ` +
        `home served again ${servedAfterMs} ms after SIGKILL of its node`,
    );
  }, 150_000);
});
