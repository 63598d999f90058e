/**
 * The cluster end to end: real `node/main.ts` processes on 127.0.0.1 sharing one private
 * redis-server (each test its own CLUSTER name), real gRPC hubs, the admin API. Cross-node
 * forwarding both ways, a node joining under load, a planned drain, and a node SIGKILLed under
 * load — counting every report and command so that nothing acked is lost and nothing is applied
 * or executed twice.
 */
import { describe, expect, it, vi } from 'vitest';
import { planMoves } from '../../cluster/hash-ring.ts';
import {
  exited,
  homesOn,
  metric,
  ownerOfHome,
  provisionHome,
  ShardSampler,
  stopNode,
  tableOf,
  clusterTestFile,
  TestCluster,
  type Api,
} from '../support/cluster-harness.ts';
import { HubClient, type HelloDevice, type HubReport } from '../../tools/hub-client/hub-client.ts';
import { LoadHub, percentile } from '../support/load-hub.ts';

const ADMIN = 'admin-token-for-cluster-tests';
const SHARDS = 64;
const DEVICE_COUNT = 10;
const loadDevices: HelloDevice[] = Array.from({ length: DEVICE_COUNT }, (_, i) => ({
  deviceId: `d${i}`,
  type: 'plug',
  capabilities: ['n'],
}));
/** Report `seq` goes to device d(seq % 10) and sets n = seq: every applied report bumps that device's version by exactly one. */
const numbered = (seq: number): HubReport => ({
  seq,
  device: `d${seq % DEVICE_COUNT}`,
  attributes: { n: seq },
  tsMs: 1_700_000_000_000 + seq,
});

const file = clusterTestFile({ adminToken: ADMIN, shards: SHARDS, tag: 'c' });
const newCluster = (): TestCluster => file.newCluster();

/** Closes (or stops) a hub after the test. */
function track<T extends { stop(): void } | { close(): void }>(hub: T): T {
  file.cleanup(() => ('stop' in hub ? hub.stop() : hub.close()));
  return hub;
}

/** A hub that streams numbered reports to `home` at `rate`, connected to `first` and, after that node is gone, to the next running node. */
function loadHub(cluster: TestCluster, homeId: string, secret: string, first: string, rate: number): LoadHub {
  return track(
    new LoadHub({
      address: (attempt) => {
        const running = cluster.running();
        if (attempt === 0 || running.includes(first)) return cluster.grpc(running.includes(first) ? first : running[0]!);
        return cluster.grpc(running[attempt % running.length]!);
      },
      secret,
      hubId: 'hub1',
      homeId,
      devices: loadDevices,
      report: numbered,
      ratePerSec: rate,
    }),
  );
}

/** Every device of the home saw exactly its reports 1..total: version = reports sent to it, n = its highest seq. */
async function expectEveryReportAppliedOnce(api: Api, homeId: string, appToken: string, total: number): Promise<void> {
  const seen = [];
  for (const d of loadDevices) {
    const r = await api('GET', `/v1/homes/${homeId}/devices/${d.deviceId}`, appToken);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    seen.push({ home: homeId, device: d.deviceId, version: r.body.version as number, n: (r.body.reported?.n?.value ?? 0) as number });
  }
  const expected = loadDevices.map((d) => ({ home: homeId, device: d.deviceId, version: 0, n: 0 }));
  for (let seq = 1; seq <= total; seq++) {
    const e = expected[seq % DEVICE_COUNT]!;
    e.version++;
    e.n = seq;
  }
  expect(seen).toEqual(expected);
}

const fmt = (ms: number): string => `${Math.round(ms)} ms`;

/** Epoch ms of the first "heartbeats expired" line the `nodes` logged at `since` or later (NaN if none). */
function removedAt(cluster: TestCluster, nodes: readonly string[], since: number): number {
  const times = nodes.flatMap((id) =>
    cluster
      .node(id)
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes('"heartbeats expired'))
      .map((l) => Number((JSON.parse(l) as { time: number }).time))
      .filter((t) => t >= since),
  );
  return times.length === 0 ? Number.NaN : Math.min(...times);
}

describe('cluster (real node processes, one private redis-server)', () => {
  it('forwards both ways: a hub on one node, its home on the other — reports acked, the rule fires, commands reach the hub and complete', async () => {
    const cluster = newCluster();
    await Promise.all([cluster.start('node-a'), cluster.start('node-b')]);
    const status = await cluster.settled('node-a', ['node-a', 'node-b']);
    expect(status.shardCount).toBe(SHARDS);
    expect(status.nodes.map((n) => n.shardsOwned).reduce((a, b) => a + b, 0)).toBe(SHARDS);

    const devices: HelloDevice[] = [
      { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
      { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
    ];
    const rule = {
      id: 'hall-light',
      name: 'Hall light on motion when dark',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
      if: [{ device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }],
      then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } }],
    };
    const deviceActivations = async (id: string): Promise<number> =>
      metric(cluster.api(id), ADMIN, 'iot_actor_activations_total', 'kind="device"');

    for (const [hubNode, homeNode] of [
      ['node-a', 'node-b'],
      ['node-b', 'node-a'],
    ] as const) {
      const [homeId] = homesOn(status, homeNode, 1, `cross-${hubNode}`);
      expect(ownerOfHome(status, homeId!)).toBe(homeNode);
      const viaHub = cluster.api(hubNode);
      const viaHome = cluster.api(homeNode);
      const activationsBefore = { hub: await deviceActivations(hubNode), home: await deviceActivations(homeNode) };
      // Provisioned through the hub's node: the home, hub and token writes are forwarded.
      const { secret, appToken } = await provisionHome(viaHub, ADMIN, homeId!);
      expect((await viaHub('PUT', `/v1/homes/${homeId}/rules/hall-light`, appToken, rule)).status).toBeLessThan(300);

      const hub = track(new HubClient(cluster.grpc(hubNode), secret));
      hub.hello('hub1', homeId!, devices);
      expect(await hub.welcome()).toMatchObject({ node_id: hubNode, last_durable_seq: '0' });
      hub.reports([{ seq: 1, device: 'motion1', attributes: { motion: true, illuminance: 12 }, event: 'motion_detected' }]);
      expect(await hub.ackAtLeast(1)).toBe(1);

      // The rule runs in the home actor on the other node; its command comes back to this stream.
      const command = await hub.waitFor((m) => m.command, 'rule command');
      expect(command).toMatchObject({ device_id: 'light1', name: 'set', params: { on: { flag: true }, brightness: { number: 60 } } });
      hub.send({ command_result: { command_id: command.command_id, ok: true, error: '' } });
      hub.reports([{ seq: 2, device: 'light1', attributes: { on: true, brightness: 60 } }]);
      expect(await hub.ackAtLeast(2)).toBe(2);
      const commandPath = `/v1/homes/${homeId}/commands/${encodeURIComponent(command.command_id)}`;
      for (const api of [viaHome, viaHub]) {
        await vi.waitFor(async () => expect((await api('GET', commandPath, appToken)).body).toMatchObject({ status: 'succeeded' }), {
          timeout: 5_000,
          interval: 20,
        });
      }
      const decisions = await viaHub('GET', `/v1/homes/${homeId}/decisions?limit=10`, appToken);
      expect(decisions.body.items).toEqual([expect.objectContaining({ ruleId: 'hall-light', outcome: 'fired' })]);

      // An app command sent through the home's node, to the hub on the other one; the hub fails it.
      const sent = await viaHome('POST', `/v1/homes/${homeId}/devices/light1/commands`, appToken, {
        name: 'set',
        params: { on: false },
        ttlMs: 30_000,
      });
      expect(sent).toMatchObject({ status: 202, body: { status: 'sent' } });
      const appCommand = await hub.waitFor((m) => (m.command?.command_id === sent.body.commandId ? m.command : undefined), 'app command');
      expect(appCommand).toMatchObject({ device_id: 'light1', name: 'set', params: { on: { flag: false } } });
      hub.send({ command_result: { command_id: appCommand.command_id, ok: false, error: 'bulb unreachable' } });
      const appPath = `/v1/homes/${homeId}/commands/${encodeURIComponent(sent.body.commandId as string)}`;
      for (const api of [viaHub, viaHome]) {
        await vi.waitFor(
          async () => expect((await api('GET', appPath, appToken)).body).toMatchObject({ status: 'failed', error: 'bulb unreachable' }),
          {
            timeout: 5_000,
            interval: 20,
          },
        );
      }
      // Both nodes read the same shadow; the device actors ran on the home's node only.
      const shadows = await Promise.all([viaHub, viaHome].map((api) => api('GET', `/v1/homes/${homeId}/devices/light1`, appToken)));
      expect(shadows[0]!.body).toEqual(shadows[1]!.body);
      expect(shadows[0]!.body.reported).toMatchObject({ on: { value: true }, brightness: { value: 60 } });
      expect(hub.errors()).toEqual([]);
      expect(hub.messages.filter((m) => m.command)).toHaveLength(2);
      expect(await deviceActivations(hubNode)).toBe(activationsBefore.hub);
      expect(await deviceActivations(homeNode)).toBe(activationsBefore.home + 2);
      hub.close();
    }
  }, 40_000);

  it('a 4th node joins under load: it takes about a quarter of the shards, only those move, every report is acked and applied once, no command twice', async () => {
    const cluster = newCluster();
    const first = ['n1', 'n2', 'n3'];
    await Promise.all(first.map((id) => cluster.start(id)));
    const before = await cluster.settled('n1', first);

    // Two homes on each node; each home's hub streams to another node, two hubs per node.
    const homes = first.flatMap((owner) => homesOn(before, owner, 2, 'load'));
    const provisioned = await Promise.all(homes.map((homeId, i) => provisionHome(cluster.api(first[i % 3]!), ADMIN, homeId)));
    const RATE = 250;
    const hubs = homes.map((homeId, i) => {
      const owner = first.indexOf(ownerOfHome(before, homeId));
      return loadHub(cluster, homeId, provisioned[i]!.secret, first[(owner + 1 + (i % 2)) % 3]!, RATE);
    });
    for (const hub of hubs) hub.start();
    await vi.waitFor(() => expect(hubs.map((h) => h.highestAck >= 100)).not.toContain(false), { timeout: 15_000, interval: 20 });

    // Apps send commands meanwhile, each with an idempotency key and re-sent with it (to the next node) until accepted.
    const commands: { homeId: string; commandId: string; attempts: number; refusals: string[] }[] = [];
    let commanding = true;
    const acked = (): number => hubs.reduce((sum, h) => sum + h.highestAck, 0);
    const commander = (async () => {
      for (let n = 0; commanding; n++) {
        const homeId = homes[n % homes.length]!;
        const running = cluster.running();
        const entry = { homeId, commandId: '', attempts: 0, refusals: [] as string[] };
        await vi
          .waitFor(
            async () => {
              const api = cluster.api(running[(n + entry.attempts++) % running.length]!);
              const r = await api(
                'POST',
                `/v1/homes/${homeId}/devices/d0/commands`,
                ADMIN,
                { name: 'set', params: { n }, ttlMs: 60_000 },
                { 'Idempotency-Key': `k${n}` },
              ).catch(() => undefined);
              if (r?.status === 202) return void (entry.commandId = r.body.commandId as string);
              entry.refusals.push(r ? `${r.status} ${JSON.stringify(r.body)}` : 'no response');
              throw new Error(`command k${n} refused`);
            },
            { timeout: 5_000, interval: 100 },
          )
          .catch(() => {}); // never accepted: the count of accepted commands below shows it, with the refusals
        commands.push(entry);
        // Paced by the load, not the clock: the next command once the hubs have had ~75 more reports acked (~50 ms).
        const mark = acked();
        await vi.waitFor(() => expect(!commanding || acked() >= mark + 75).toBe(true), { timeout: 10_000, interval: 10 });
      }
    })();
    file.cleanup(() => void (commanding = false));

    await vi.waitFor(() => expect(hubs.map((h) => h.highestAck >= 500)).not.toContain(false), { timeout: 15_000, interval: 50 });
    const moveStarted = performance.now();
    const joinedAt = Date.now();
    await cluster.start('n4');
    const after = await cluster.settled('n1', [...first, 'n4'], 30_000);
    const moveEnded = performance.now();
    // A little more traffic on the new ring, then the apps and hubs finish.
    const issuedBySettle = commands.length;
    await vi.waitFor(() => expect(commands.length).toBeGreaterThanOrEqual(issuedBySettle + homes.length), {
      timeout: 10_000,
      interval: 20,
    });
    commanding = false;
    await commander;
    await Promise.all(hubs.map((h) => h.finish(20_000)));

    // Placement: the newcomer owns about a quarter, and the only shards that moved went to it.
    const n4 = after.nodes.find((n) => n.id === 'n4')!;
    expect(n4).toMatchObject({ state: 'active', alive: true });
    expect(n4.shardsOwned).toBe(n4.shardsAssigned);
    expect(n4.shardsOwned).toBeGreaterThanOrEqual(10);
    expect(n4.shardsOwned).toBeLessThanOrEqual(23);
    // The status names every shard's owner (the admin console's shard map): the table the nodes derive.
    expect(after.owners).toEqual([...tableOf(after).owners]);
    expect(before.owners).toEqual([...tableOf(before).owners]);
    const moves = planMoves(tableOf(before), tableOf(after));
    expect(moves.every((m) => m.to === 'n4')).toBe(true);
    expect(moves.length).toBe(n4.shardsOwned);
    expect(after.nodes.filter((n) => n.state === 'active').reduce((sum, n) => sum + n.shardsOwned, 0)).toBe(SHARDS);

    // Reports: every hub kept one stream, nothing refused, every report applied exactly once.
    const api = cluster.api('n4');
    for (const [i, hub] of hubs.entries()) {
      expect(hub.errors, hub.describe()).toEqual([]);
      expect(hub.streams, hub.describe()).toHaveLength(1);
      expect(hub.highestAck).toBe(hub.produced);
      await expectEveryReportAppliedOnce(api, homes[i]!, provisioned[i]!.appToken, hub.produced);
    }

    // Commands: each accepted one reached its hub exactly once and completed.
    const accepted = commands.filter((c) => c.commandId !== '');
    expect(accepted.length).toBe(commands.length);
    const deliveries = new Map<string, number>();
    for (const hub of hubs) for (const [id, list] of hub.deliveriesById()) deliveries.set(id, (deliveries.get(id) ?? 0) + list.length);
    const outcome = async (c: (typeof accepted)[number]) => {
      const r = await api(
        'GET',
        `/v1/homes/${c.homeId}/commands/${encodeURIComponent(c.commandId)}`,
        provisioned[homes.indexOf(c.homeId)]!.appToken,
      );
      const status = r.status === 200 ? (r.body.status as string) : `${r.status} ${JSON.stringify(r.body)}`;
      const delivered = hubs.flatMap((h) => h.deliveries.filter((d) => d.commandId === c.commandId));
      return {
        home: c.homeId,
        commandId: c.commandId,
        status,
        deliveries: delivered.length,
        ...(status === 'succeeded' ? {} : { record: r.body, deliveredAt: delivered.map((d) => d.at) }),
      };
    };
    const outcomesOfAll = async () => {
      const all = [];
      for (const c of accepted) all.push(await outcome(c)); // one at a time: the edge rate-limits each token
      return all;
    };
    // Completed: every command was delivered once and its result reached the device actor, wherever it lives now.
    const outcomes = await vi
      .waitFor(
        async () => {
          const all = await outcomesOfAll();
          if (all.some((o) => o.status !== 'succeeded')) throw new Error('not all succeeded yet');
          return all;
        },
        { timeout: 10_000, interval: 200 },
      )
      .catch(outcomesOfAll);
    const incomplete = outcomes.filter((o) => o.status !== 'succeeded' || o.deliveries !== 1);
    expect(incomplete, `${incomplete.length} of ${outcomes.length} commands incomplete: ${JSON.stringify(incomplete)}`).toEqual([]);
    expect([...deliveries].filter(([, n]) => n > 1)).toEqual([]);

    const during = hubs.flatMap((h) => h.latenciesSentBetween(moveStarted, moveEnded));
    const steady = hubs.flatMap((h) => h.latenciesSentBetween(0, moveStarted));
    const all = hubs.flatMap((h) => h.latencies.map((l) => l.ackedAt - l.sentAt));
    console.log(
      `[cluster] add a 4th node: ${moves.length}/${SHARDS} shards moved to n4 (${((100 * moves.length) / SHARDS).toFixed(1)}%), ` +
        `join → settled ${fmt(moveEnded - moveStarted)} (started ${new Date(joinedAt).toISOString()}); ` +
        `ack latency during the move p50 ${fmt(percentile(during, 50))} p99 ${fmt(percentile(during, 99))} max ${fmt(percentile(during, 100))} (${during.length} reports), ` +
        `before it p99 ${fmt(percentile(steady, 99))} (${steady.length}), whole run p99 ${fmt(percentile(all, 99))}; ` +
        `${hubs.reduce((s, h) => s + h.produced, 0)} reports, ${accepted.length} commands (${accepted.filter((c) => c.attempts > 1).length} re-sent by the app)`,
    );
    const refusals = commands.flatMap((c) => c.refusals);
    if (refusals.length > 0)
      console.log(`[cluster] command POSTs refused during the move (re-sent with the same Idempotency-Key): ${refusals.join('; ')}`);
  }, 75_000);

  it('drains a node: its shards move to the others, it ends owning nothing, exits 0 on SIGTERM, and the hubs keep working', async () => {
    const cluster = newCluster();
    const ids = ['m1', 'm2', 'm3'];
    await Promise.all(ids.map((id) => cluster.start(id)));
    const before = await cluster.settled('m1', ids);
    const leaving = 'm3';

    // A home on each node; the hub of m3's home streams to m1, the hub of m1's home streams to m3 (it must move when m3 exits).
    const homes = ids.map((owner) => homesOn(before, owner, 1, 'drain')[0]!);
    const provisioned = await Promise.all(homes.map((homeId) => provisionHome(cluster.api('m1'), ADMIN, homeId)));
    const hubNodes = ['m3', 'm2', 'm1'];
    const hubs = homes.map((homeId, i) => loadHub(cluster, homeId, provisioned[i]!.secret, hubNodes[i]!, 200));
    for (const hub of hubs) hub.start();
    await vi.waitFor(() => expect(hubs.map((h) => h.highestAck >= 200)).not.toContain(false), { timeout: 15_000, interval: 50 });

    const admin = cluster.api('m1');
    const plan = await admin('POST', '/v1/admin/ring/plan?detail=true', ADMIN, { drain: [leaving] });
    const assigned = before.nodes.find((n) => n.id === leaving)!.shardsAssigned;
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ epoch: before.epoch, moving: assigned });
    expect((plan.body.moves as { from: string }[]).every((m) => m.from === leaving)).toBe(true);

    const applied = await admin('POST', '/v1/admin/ring', ADMIN, { drain: [leaving] });
    expect(applied).toMatchObject({ status: 202, body: { epoch: before.epoch + 1, moving: assigned } });
    // One change at a time: another one while shards move is refused.
    const busy = await cluster.api('m2')('POST', '/v1/admin/ring', ADMIN, { weights: { m1: 2 } });
    expect(busy.status, JSON.stringify(busy.body)).toBe(409);

    const drained = await cluster.settled('m1', ['m1', 'm2']);
    expect(drained.nodes.find((n) => n.id === leaving)).toMatchObject({
      state: 'draining',
      alive: true,
      shardsAssigned: 0,
      shardsOwned: 0,
    });
    expect(drained.nodes.filter((n) => n.id !== leaving).reduce((sum, n) => sum + n.shardsOwned, 0)).toBe(SHARDS);
    // The drained node still forwards: its hub keeps being acked while it is drained.
    const ackAtDrained = hubs.map((h) => h.highestAck);
    await vi.waitFor(() => expect(hubs.map((h, i) => h.highestAck > ackAtDrained[i]! + 100)).not.toContain(false), {
      timeout: 10_000,
      interval: 20,
    });

    // SIGTERM: the drained node takes itself out of the ring (not left to the liveness check) and exits 0;
    // its hub stream moves to another node.
    const code = await stopNode(cluster.node(leaving));
    expect(code).toBe(0);
    const drainOutput = cluster.node(leaving).output();
    expect(drainOutput).not.toMatch(/drain failed|could not remove this node/);
    const left = await cluster.status('m1');
    expect(left.nodes.find((n) => n.id === leaving)).toMatchObject({ state: 'left', alive: false, shardsOwned: 0 });
    expect(left.epoch).toBe(before.epoch + 2);
    const ackAtExit = hubs.map((h) => h.highestAck);
    await vi.waitFor(() => expect(hubs.map((h, i) => h.highestAck > ackAtExit[i]! + 100)).not.toContain(false), {
      timeout: 15_000,
      interval: 20,
    });
    await Promise.all(hubs.map((h) => h.finish(20_000)));

    const api = cluster.api('m2');
    for (const [i, hub] of hubs.entries()) {
      expect(hub.errors, hub.describe()).toEqual([]);
      await expectEveryReportAppliedOnce(api, homes[i]!, provisioned[i]!.appToken, hub.produced);
    }
    expect(hubs[0]!.streams.length, hubs[0]!.describe()).toBeGreaterThan(1); // it was on m3
    expect(hubs[1]!.streams, hubs[1]!.describe()).toHaveLength(1);
    expect(hubs[2]!.streams, hubs[2]!.describe()).toHaveLength(1);
    for (const id of ['m1', 'm2']) expect(cluster.node(id).output()).not.toContain('heartbeats expired');
  }, 60_000);

  it('a node SIGKILLed under load: its homes are served again within 3 s (asserted with slack); nothing acked is lost or applied twice; fences only grow', async () => {
    const cluster = newCluster();
    const ids = ['k1', 'k2', 'k3'];
    // k1 first (it creates the ring; on a loaded machine three compiles at once can miss the start timeout).
    await cluster.start('k1');
    await Promise.all(ids.slice(1).map((id) => cluster.start(id)));
    const before = await cluster.settled('k1', ids);
    const victim = 'k3';
    const survivors = ['k1', 'k2'];

    // Two homes on each node. The victim's homes have one hub on the victim and one on a survivor;
    // the survivors' homes one hub on the victim and one on the other survivor.
    const homes = ids.flatMap((owner) => homesOn(before, owner, 2, 'kill'));
    const provisioned = await Promise.all(homes.map((homeId) => provisionHome(cluster.api('k1'), ADMIN, homeId)));
    const hubNodes = ['k3', 'k2', 'k3', 'k1', 'k3', 'k1'];
    const hubs = homes.map((homeId, i) => loadHub(cluster, homeId, provisioned[i]!.secret, hubNodes[i]!, 200));
    const victimHomes = homes
      .map((h, i) => [h, i] as const)
      .filter(([h]) => ownerOfHome(before, h) === victim)
      .map(([, i]) => i);
    expect(victimHomes).toEqual([4, 5]);

    // Every 100 ms: every shard's lease holder and fence token from Redis (checked sample to sample),
    // and every 100 ms the shards each live node says it owns.
    const sampler = new ShardSampler(file.redis.url, cluster.opts.cluster, SHARDS);
    sampler.start(100);
    file.cleanup(() => sampler.stop());
    const owned: { at: number; alive: { id: string; owned: number }[]; total: number }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await cluster.status('k1').catch(() => undefined);
        if (s) {
          const alive = s.nodes.filter((n) => n.alive).map((n) => ({ id: n.id, owned: n.shardsOwned }));
          owned.push({ at: Date.now(), alive, total: alive.reduce((sum, n) => sum + n.owned, 0) });
        }
        // One ownership sample per lease sample: the two series share their pace.
        const seen = sampler.samples.length;
        await vi.waitFor(() => expect(!watching || sampler.samples.length > seen).toBe(true), { timeout: 5_000, interval: 10 });
      }
    })();
    file.cleanup(() => void (watching = false));

    for (const hub of hubs) hub.start();
    await vi.waitFor(() => expect(hubs.map((h) => h.highestAck >= 300)).not.toContain(false), { timeout: 15_000, interval: 50 });

    const producedAtKill = hubs.map((h) => h.produced);
    const killedAt = Date.now();
    const killed = cluster.node(victim);
    killed.child.kill('SIGKILL');
    expect(await exited(killed)).toBeNull(); // died of the signal

    // Served again: a report sent after the kill is acked, for every home (the victim's last).
    const servedAfter = await Promise.all(
      hubs.map((hub, i) =>
        vi.waitFor(
          () => {
            const ack = hub.ackLog.find((a) => a.upTo > producedAtKill[i]!);
            if (!ack) throw new Error(`hub of ${homes[i]} not served since the kill: ${hub.describe()}`);
            return ack.at - killedAt;
          },
          { timeout: 20_000, interval: 20 },
        ),
      ),
    );
    const failover = Math.max(...victimHomes.map((i) => servedAfter[i]!));
    const settled = await cluster.settled('k1', survivors, 15_000);
    const settledAt = Date.now();
    const settledAfter = settledAt - killedAt;
    await Promise.all(hubs.map((h) => h.finish(20_000)));
    // Both series need a sample after the ring settled before the watch stops.
    await vi.waitFor(() => expect(sampler.samples.some((x) => x.at >= settledAt) && owned.some((o) => o.at >= settledAt)).toBe(true), {
      timeout: 5_000,
      interval: 20,
    });
    watching = false;
    await watcher;
    await sampler.stop();

    // Liveness: the victim's homes within 3 s of the kill (HEARTBEAT_TTL_MS 2 s, then confirmation and
    // take-over); asserted with slack for a loaded machine (the figure is printed below).
    expect(failover).toBeLessThanOrEqual(6_000);
    expect(settled.nodes.find((n) => n.id === victim)).toMatchObject({ state: 'left', alive: false });
    for (const [i, hub] of hubs.entries()) {
      expect(hub.errors, hub.describe()).toEqual([]);
      await expectEveryReportAppliedOnce(cluster.api('k2'), homes[i]!, provisioned[i]!.appToken, hub.produced);
    }
    // The hubs that were on the victim moved to a survivor.
    for (const [i, hub] of hubs.entries()) {
      const last = hub.streams.at(-1)!;
      expect(last.address, hub.describe()).not.toBe(cluster.grpc(victim));
      if (hubNodes[i] === victim) expect(hub.streams.length).toBeGreaterThan(1);
    }

    // Fencing: no fence went down, no shard changed holder without a new token, the victim's
    // shards were taken with new tokens, and in the end no lease names the victim.
    expect(sampler.violations).toEqual([]);
    // The samples cover the failover: before the kill, through it (counts allow for a loaded machine), after it settled.
    const during = (at: number): boolean => at > killedAt && at < settledAt;
    expect(sampler.samples.filter((x) => x.at <= killedAt).length).toBeGreaterThan(0);
    expect(sampler.samples.filter((x) => during(x.at)).length).toBeGreaterThanOrEqual(10);
    expect(sampler.samples.filter((x) => x.at >= settledAt).length).toBeGreaterThan(0);
    const atKill = sampler.samples.filter((x) => x.at <= killedAt).at(-1)!;
    const last = sampler.samples.at(-1)!;
    const victimShards = atKill.holders
      .map((h, s) => [h, s] as const)
      .filter(([h]) => h === victim)
      .map(([, s]) => s);
    expect(victimShards.length).toBe(before.nodes.find((n) => n.id === victim)!.shardsAssigned);
    for (const s of victimShards) {
      expect(survivors).toContain(last.holders[s]);
      expect(last.fences[s]!).toBeGreaterThan(atKill.fences[s]!);
    }
    expect(last.holders.filter((h) => h === victim)).toEqual([]);
    // No two live nodes claimed the same shard: what they report owning never adds up to more than there are.
    expect(owned.filter((o) => o.at <= killedAt).length).toBeGreaterThan(0);
    // (a status read through k1 takes a while on a loaded machine, and the failover itself only ~2 s)
    expect(owned.filter((o) => during(o.at)).length).toBeGreaterThanOrEqual(2);
    expect(owned.filter((o) => o.at >= settledAt).length).toBeGreaterThan(0);
    expect(owned.filter((o) => o.total > SHARDS)).toEqual([]);
    expect(owned.at(-1)!.total).toBe(SHARDS);

    console.log(
      `[cluster] SIGKILL of ${victim}: its homes served again after ${victimHomes.map((i) => fmt(servedAfter[i]!)).join(', ')} (max ${fmt(failover)}); ` +
        `other homes after ${hubs
          .map((_, i) => i)
          .filter((i) => !victimHomes.includes(i))
          .map((i) => fmt(servedAfter[i]!))
          .join(', ')}; ` +
        `ring settled on ${survivors.join(', ')} after ${fmt(settledAfter)}; ${sampler.samples.length} lease/fence samples, ${owned.length} ownership samples; ` +
        `taken out of the ring after ${fmt(removedAt(cluster, survivors, killedAt) - killedAt)}; ` +
        `self-fences on the survivors (a stalled event loop): ${survivors
          .map(
            (id) =>
              (
                cluster
                  .node(id)
                  .output()
                  .match(/"self-fence/g) ?? []
              ).length,
          )
          .join(', ')}; ` +
        `${hubs.reduce((s, h) => s + h.produced, 0)} reports, ${hubs.reduce((s, h) => s + h.reportsSent - h.produced, 0)} re-sent`,
    );
  }, 75_000);
});
