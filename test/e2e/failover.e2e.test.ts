/**
 * Failover in seconds, end to end: real `node/main.ts` processes on 127.0.0.1 sharing one private
 * redis-server, HEARTBEAT_TTL_MS at its default (2 s). A SIGKILLed node's homes are served again
 * within 3 s (measured and printed; asserted with slack for a shared machine). A node paused
 * (SIGSTOP) for longer than the TTL stops serving its shards before another node takes them, and
 * once woken serves no read or ack from the shards it lost; fence tokens only grow.
 */
import { describe, expect, it, vi } from 'vitest';
import { HubClient, type HelloDevice, type HubReport } from '../../tools/hub-client/hub-client.ts';
import {
  clusterTestFile,
  exited,
  homesOn,
  ownerOfHome,
  provisionHome,
  ShardSampler,
  type Api,
  type TestCluster,
} from '../support/cluster-harness.ts';
import { LoadHub } from '../support/load-hub.ts';

const ADMIN = 'admin-token-for-failover-tests';
const SHARDS = 64;
/** The default HEARTBEAT_TTL_MS. */
const TTL_MS = 2_000;
/** The goal, and what is asserted on a machine shared with other test runs (the figure is printed). */
const TARGET_MS = 3_000;
const ASSERTED_MS = 6_000;

const file = clusterTestFile({ adminToken: ADMIN, shards: SHARDS, tag: 'f', outputChars: 6_000 });

const devices: HelloDevice[] = Array.from({ length: 4 }, (_, i) => ({ deviceId: `d${i}`, type: 'plug', capabilities: ['n'] }));
const numbered = (seq: number): HubReport => ({
  seq,
  device: `d${seq % devices.length}`,
  attributes: { n: seq },
  tsMs: 1_700_000_000_000 + seq,
});

function track<T extends { stop(): void } | { close(): void }>(hub: T): T {
  file.cleanup(() => ('stop' in hub ? hub.stop() : hub.close()));
  return hub;
}

/** A hub streaming numbered reports to `home` through node `via` only (its stream never breaks: what it measures is the server side). */
function steadyHub(cluster: TestCluster, homeId: string, secret: string, via: string): LoadHub {
  return track(
    new LoadHub({
      address: () => cluster.grpc(via),
      secret,
      hubId: 'hub1',
      homeId,
      devices,
      report: numbered,
      ratePerSec: 100,
    }),
  );
}

/** Epoch ms of the first line of `output` logged at `since` or later whose msg starts with `msg` (and the line), or undefined. */
function logLine(output: string, msg: string, since = 0): { at: number; line: Record<string, unknown> } | undefined {
  for (const text of output.split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      const line = JSON.parse(text) as Record<string, unknown>;
      if (typeof line.msg === 'string' && line.msg.startsWith(msg) && Number(line.time) >= since) return { at: Number(line.time), line };
    } catch {
      // a partial line
    }
  }
  return undefined;
}

/** Reads a device until it answers 200: epoch ms of that answer. */
async function servedAt(api: Api, homeId: string, token: string, timeoutMs: number): Promise<number> {
  return vi.waitFor(
    async () => {
      const r = await api('GET', `/v1/homes/${homeId}/devices/d0`, token);
      if (r.status !== 200) throw new Error(`GET device of ${homeId}: ${r.status} ${JSON.stringify(r.body)}`);
      return Date.now();
    },
    { timeout: timeoutMs, interval: 20 },
  );
}

const fmt = (ms: number): string => `${Math.round(ms)} ms`;

/** Starts the first node alone (it creates the ring, and warms the compile cache on a loaded machine), then the others together. */
async function startAll(cluster: TestCluster, ids: readonly string[]): Promise<void> {
  await cluster.start(ids[0]!);
  await Promise.all(ids.slice(1).map((id) => cluster.start(id)));
}

describe('failover (real node processes, HEARTBEAT_TTL_MS 2 s)', () => {
  it('SIGKILL of a node, twice: its homes are served again within 3 s each time (reads and hub acks through the survivors); fences only grow', async () => {
    const cluster = file.newCluster();
    const sampler = new ShardSampler(file.redis.url, cluster.opts.cluster, SHARDS);
    file.cleanup(() => sampler.stop());
    const figures: string[] = [];
    const worst: number[] = [];
    let members = ['f1', 'f2', 'f3'];
    await startAll(cluster, members);
    sampler.start(100);
    for (const [round, victim] of ['f3', 'f4'].entries()) {
      if (round > 0) {
        await cluster.start(victim);
        members = [...members, victim];
      }
      const before = await cluster.settled('f1', members, 30_000);
      const survivors = members.filter((id) => id !== victim);
      // Two of the victim's homes, each followed through a survivor (its hub streams to that survivor: a peer stream to the victim exists).
      const homes = homesOn(before, victim, 2, `kill${round}`);
      const provisioned = await Promise.all(homes.map((h) => provisionHome(cluster.api('f1'), ADMIN, h)));
      const hubs = homes.map((h, i) => steadyHub(cluster, h, provisioned[i]!.secret, survivors[i % survivors.length]!));
      for (const hub of hubs) hub.start();
      await vi.waitFor(() => expect(hubs.map((h) => h.highestAck >= 50)).not.toContain(false), { timeout: 15_000, interval: 20 });
      for (const [i, h] of homes.entries())
        await servedAt(cluster.api(survivors[i % survivors.length]!), h, provisioned[i]!.appToken, 5_000);

      const producedAtKill = hubs.map((h) => h.produced);
      const killedAt = Date.now();
      cluster.node(victim).child.kill('SIGKILL');
      const [reads, acks] = await Promise.all([
        Promise.all(
          homes.map((h, i) => servedAt(cluster.api(survivors[(i + 1) % survivors.length]!), h, provisioned[i]!.appToken, 20_000)),
        ),
        Promise.all(
          hubs.map((hub, i) =>
            vi.waitFor(
              () => {
                const ack = hub.ackLog.find((a) => a.upTo > producedAtKill[i]!);
                if (!ack) throw new Error(`hub of ${homes[i]} not acked since the kill: ${hub.describe()}`);
                return ack.at;
              },
              { timeout: 20_000, interval: 10 },
            ),
          ),
        ),
      ]);
      expect(await exited(cluster.node(victim))).toBeNull();
      const readAfter = reads.map((at) => at - killedAt);
      const ackAfter = acks.map((at) => at - killedAt);
      const removals = survivors.map((id) => logLine(cluster.node(id).output(), 'heartbeats expired', killedAt)).filter((x) => x);
      const removal = removals.sort((a, b) => a!.at - b!.at)[0];
      figures.push(
        `kill ${round + 1} (${victim}): reads served after ${readAfter.map(fmt).join(', ')}; reports acked after ${ackAfter.map(fmt).join(', ')}; ` +
          `taken out of the ring after ${removal ? fmt(removal.at - killedAt) : '?'} (${typeof removal?.line.why === 'string' ? removal.line.why : '?'}); ` +
          `self-fences on the survivors: ${survivors
            .map(
              (id) =>
                (
                  cluster
                    .node(id)
                    .output()
                    .match(/"self-fence/g) ?? []
                ).length,
            )
            .join(', ')}`,
      );
      worst.push(Math.max(...readAfter, ...ackAfter));
      members = survivors;
      await cluster.settled('f1', members, 30_000);
      await Promise.all(hubs.map((h) => h.finish(20_000)));
      for (const hub of hubs) {
        expect(hub.errors, hub.describe()).toEqual([]);
        expect(hub.highestAck, hub.describe()).toBe(hub.produced);
      }
      expect(ownerOfHome(await cluster.status('f1'), homes[0]!)).not.toBe(victim);
    }
    await sampler.stop();
    console.log(`[failover] SIGKILL, HEARTBEAT_TTL_MS ${TTL_MS} (target ${TARGET_MS} ms): ${figures.join(' | ')}`);
    expect(sampler.violations).toEqual([]);
    for (const ms of worst) expect(ms).toBeLessThanOrEqual(ASSERTED_MS);
  }, 120_000);

  it('a node paused (SIGSTOP) longer than HEARTBEAT_TTL_MS stops serving before another node takes its shards, and once woken serves no read or ack from them', async () => {
    const cluster = file.newCluster();
    const ids = ['p1', 'p2', 'p3'];
    await startAll(cluster, ids);
    const before = await cluster.settled('p1', ids);
    const paused = 'p3';
    const [homeId] = homesOn(before, paused, 1, 'pause');
    const { secret, appToken } = await provisionHome(cluster.api('p1'), ADMIN, homeId!);
    const hub2 = await cluster.api('p1')('POST', `/v1/homes/${homeId}/hubs`, ADMIN, { hubId: 'hub2' });
    expect(hub2.status).toBe(201);
    const viaP1 = cluster.api('p1');
    const viaPaused = cluster.api(paused);

    // hub1 streams through p1 (forwarded to p3), hub2 straight to p3.
    const hubA = track(new HubClient(cluster.grpc('p1'), secret));
    hubA.hello('hub1', homeId!, [{ deviceId: 'a1', type: 'plug', capabilities: ['n'] }]);
    await hubA.welcome();
    hubA.reports([{ seq: 1, device: 'a1', attributes: { n: 1 } }]);
    expect(await hubA.ackAtLeast(1)).toBe(1);
    const hubB = track(new HubClient(cluster.grpc(paused), hub2.body.secret as string));
    hubB.hello('hub2', homeId!, [{ deviceId: 'b1', type: 'plug', capabilities: ['n'] }]);
    await hubB.welcome();
    hubB.reports([{ seq: 1, device: 'b1', attributes: { n: 1 } }]);
    expect(await hubB.ackAtLeast(1)).toBe(1);
    const read = async (api: Api, device: string) => api('GET', `/v1/homes/${homeId}/devices/${device}`, appToken);
    expect((await read(viaPaused, 'a1')).body.reported.n.value).toBe(1);

    const sampler = new ShardSampler(file.redis.url, cluster.opts.cluster, SHARDS);
    file.cleanup(() => sampler.stop());
    const atPause = await sampler.sample();
    sampler.start(100);
    const node = cluster.node(paused);
    node.child.kill('SIGSTOP');
    file.cleanup(() => void node.child.kill('SIGCONT'));
    const stoppedAt = Date.now();

    // Reads and a report sent to the paused node meanwhile wait in its sockets. (a1 is the device
    // the new owner changes meanwhile: a read of it answered from the paused node's memory would
    // show n = 1.)
    const staleReads = [read(viaPaused, 'a1'), read(viaPaused, 'a1')];
    hubB.reports([{ seq: 2, device: 'b1', attributes: { n: 2 } }]);

    // The others take it out of the ring and its shards over; the new owner applies a newer report.
    await cluster.settled('p1', ['p1', 'p2'], 20_000);
    const takenAfter = Date.now() - stoppedAt;
    hubA.reports([{ seq: 2, device: 'a1', attributes: { n: 2 } }]);
    expect(await hubA.ackAtLeast(2)).toBe(2);
    expect((await read(viaP1, 'a1')).body.reported.n.value).toBe(2);
    expect(Date.now() - stoppedAt).toBeGreaterThan(TTL_MS);

    node.child.kill('SIGCONT');
    const wokenAfter = Date.now() - stoppedAt;
    // What waited in its sockets: never the state it had before it lost the shard.
    const answers = await Promise.all(staleReads);
    const answered = answers.map((r) => `${r.status} ${JSON.stringify(r.body?.reported ?? r.body?.error ?? null)}`);
    for (const r of answers) {
      if (r.status === 200) expect(r.body.reported.n.value, answered.join('; ')).not.toBe(1);
      else expect(r.status, answered.join('; ')).toBe(503);
    }
    // The report sent to it while it was paused is acked only once the shard's owner has it.
    expect(await hubB.ackAtLeast(2, 20_000)).toBe(2);
    expect((await read(viaP1, 'b1')).body.reported.n.value).toBe(2);
    for (let i = 0; i < 5; i++) {
      const r = await read(viaPaused, 'a1');
      if (r.status === 200) expect(r.body.reported.n.value).toBe(2);
    }

    // Its own log: it stopped serving (the deadline, on the wall clock) before the acquirer took the leases over.
    await vi.waitFor(() => expect(logLine(node.output(), 'self-fence')).toBeDefined(), { timeout: 10_000, interval: 50 });
    const fence = logLine(node.output(), 'self-fence')!;
    const stoppedServing = Date.parse(String(fence.line.stoppedServingAt));
    const takeovers = ['p1', 'p2']
      .map((id) => logLine(cluster.node(id).output(), 'taking over the leases of a dead node'))
      .filter((x) => x);
    expect(takeovers.length).toBeGreaterThan(0);
    const firstTakeover = Math.min(...takeovers.map((t) => t!.at));
    expect(stoppedServing).toBeLessThan(firstTakeover);
    expect(stoppedServing).toBeGreaterThan(stoppedAt - 100);

    // It re-joins (AUTO_JOIN) and takes shards again with new fence tokens; fences only grew throughout.
    const after = await cluster.settled('p1', ids, 30_000);
    const last = await sampler.sample();
    await sampler.stop();
    expect(sampler.violations).toEqual([]);
    const pausedShards = atPause.holders.flatMap((h, s) => (h === paused ? [s] : []));
    expect(pausedShards.length).toBeGreaterThan(0);
    for (const s of pausedShards) expect(last.fences[s]!).toBeGreaterThan(atPause.fences[s]!);
    expect(after.nodes.find((n) => n.id === paused)).toMatchObject({ state: 'active', alive: true });
    expect(hubA.errors()).toEqual([]);
    console.log(
      `[failover] SIGSTOP of ${paused} (HEARTBEAT_TTL_MS ${TTL_MS}): it stopped serving ${fmt(stoppedServing - stoppedAt)} after the stop ` +
        `(by its log, written when woken), the first take-over began ${fmt(firstTakeover - stoppedAt)} after the stop; ring settled without it after ${fmt(takenAfter)}; ` +
        `woken after ${fmt(wokenAfter)}; reads that waited in its sockets answered: ${answered.join('; ')}`,
    );
  }, 90_000);
});
