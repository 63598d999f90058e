/**
 * Timed rules end to end: real `node/main.ts` processes on a private real Redis, real gRPC hubs.
 * A `for` hold survives a SIGKILL and a restart and fires once; a `time` rule whose owner is
 * SIGKILLed fires once from the new owner; a node whose fence token went stale (paused while the
 * cluster gave its shards away) still holds an overdue reminder when it wakes and hands it to its
 * home, but that step is refused: the reminder fires once, from the new owner. (The write path of a
 * stale node is pinned deterministically in test/runtime/redis/stale-fence-reminders.test.ts.)
 * Reminders that come due while a planned drain moves their shard fire once each, from whichever
 * node held the lease when they ran.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  clusterTestFile,
  exited,
  homesOn,
  metric,
  ownerOfHome,
  provisionHome,
  ShardSampler,
  stopNode,
  TestCluster,
} from '../support/cluster-harness.ts';
import { shardOfHome } from '../../cluster/shard-of.ts';
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';

const ADMIN = 'admin-token-for-timer-tests';
const SHARDS = 64;
const devices: HelloDevice[] = [
  { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion'] },
  { deviceId: 'light1', type: 'light', capabilities: ['on'] },
];

const file = clusterTestFile({ adminToken: ADMIN, shards: SHARDS, tag: 't', outputChars: 6_000 });
const newCluster = (): TestCluster => file.newCluster();

/** One command message received by the hub, with the connection it came on. */
interface Delivery {
  readonly commandId: string;
  readonly deviceId: string;
  readonly connection: number;
  /** Epoch ms. */
  readonly at: number;
}

/**
 * Hub `hub1` of one home across connections: each `connect` opens a new stream (hello, welcome),
 * every command received on any of them is recorded and answered ok (executed once per id, as a
 * hub dedupes).
 */
class TimerHub {
  readonly deliveries: Delivery[] = [];
  readonly connections: HubClient[] = [];

  constructor(
    private readonly homeId: string,
    private readonly secret: string,
  ) {
    file.cleanup(() => this.close());
  }

  async connect(address: string): Promise<HubClient> {
    const hub = new HubClient(address, this.secret);
    const connection = this.connections.push(hub) - 1;
    hub.onMessage((m) => {
      if (!m.command) return;
      this.deliveries.push({ commandId: m.command.command_id, deviceId: m.command.device_id, connection, at: Date.now() });
      hub.commandResult(m.command.command_id, true);
    });
    hub.hello('hub1', this.homeId, devices);
    await hub.welcome(10_000);
    return hub;
  }

  /** Deliveries per command id. */
  byId(): Map<string, Delivery[]> {
    const by = new Map<string, Delivery[]>();
    for (const d of this.deliveries) by.set(d.commandId, [...(by.get(d.commandId) ?? []), d]);
    return by;
  }

  /** The errors the cloud sent on any connection. */
  errors(): unknown[] {
    return this.connections.flatMap((c) => c.errors());
  }

  close(): void {
    for (const c of this.connections) c.close();
  }
}

/** Local `HH:MM:SS` of epoch ms `at` in `timeZone`. */
function localTime(at: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(at);
}

const lightOn = { type: 'command', device: 'light1', name: 'set', params: { on: true } };

describe('timed rules (real node processes, private redis-server)', () => {
  it('a `for: 2s` hold whose node is SIGKILLed 0.5 s after the report and restarted fires its command exactly once, about 2 s after the report', async () => {
    const cluster = newCluster();
    await cluster.start('solo');
    const homeId = 'hold-home';
    const { secret, appToken } = await provisionHome(cluster.api('solo'), ADMIN, homeId);
    const rule = {
      id: 'motion-held',
      name: 'Light on after 2 s of motion',
      when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true, for: '2s' }],
      then: [lightOn],
    };
    expect((await cluster.api('solo')('PUT', `/v1/homes/${homeId}/rules/${rule.id}`, appToken, rule)).status).toBeLessThan(300);

    const hub = new TimerHub(homeId, secret);
    const first = await hub.connect(cluster.grpc('solo'));
    first.reports([{ seq: 1, device: 'motion1', attributes: { motion: false } }]);
    await first.ackAtLeast(1, 10_000);
    const reportedAt = Date.now();
    first.reports([{ seq: 2, device: 'motion1', attributes: { motion: true }, tsMs: reportedAt }]);
    await first.ackAtLeast(2, 10_000);
    const ackedAt = Date.now();

    // 0.5 s after the ack the node dies; the hold (due at report + 2 s) exists only in Redis now.
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThanOrEqual(ackedAt + 500), { timeout: 2_000, interval: 5 });
    const killed = cluster.node('solo');
    killed.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await exited(killed)).toBeNull();
    expect(hub.deliveries).toEqual([]);

    // Same NODE_ID, same Redis and CLUSTER; the hub reconnects as soon as the node listens.
    const restarted = await cluster.start('solo');
    const listeningAt = Date.now();
    await hub.connect(cluster.grpc('solo'));
    const reconnectedAt = Date.now();
    await vi.waitFor(() => expect(hub.deliveries.length).toBeGreaterThan(0), { timeout: 20_000, interval: 10 });
    const delivery = hub.deliveries[0]!;
    const api = cluster.api('solo');
    const path = `/v1/homes/${homeId}/commands/${encodeURIComponent(delivery.commandId)}`;
    await vi.waitFor(async () => expect((await api('GET', path, appToken)).body).toMatchObject({ status: 'succeeded' }), {
      timeout: 10_000,
      interval: 50,
    });
    // Nothing more comes: wait past what a second firing (a replayed or twice-loaded hold) would take.
    await new Promise((r) => setTimeout(r, 3_000));

    const latency = delivery.at - reportedAt;
    console.log(
      `[timers] for-hold across SIGKILL: report → command at the hub ${latency} ms (due at +2000 ms); ack +${ackedAt - reportedAt} ms, ` +
        `kill +${killedAt - reportedAt} ms, node listening again +${listeningAt - reportedAt} ms (restart ${listeningAt - killedAt} ms), ` +
        `hub reconnected +${reconnectedAt - reportedAt} ms; late-fire lateness on the new process ` +
        `${await metric(api, ADMIN, 'iot_reminder_lateness_seconds_sum', 'kind="home"')} s; deliveries ${JSON.stringify(hub.deliveries.map((d) => ({ ...d, at: d.at - reportedAt })))}`,
    );
    // The rule fired once: one command id (and one `fired` decision below), on the new stream. The
    // same id may reach the stream twice when the restarted device, still believing its hub online,
    // sends it just before the hub's reconnect re-sends every `sent` command (hubs dedupe by id; the
    // re-send race is issue 15's "never twice on the same stream"), never a second command.
    expect([...new Set(hub.deliveries.map((d) => `${d.commandId}|${d.deviceId}|${d.connection}`))]).toEqual([
      `${delivery.commandId}|light1|1`,
    ]);
    expect(hub.deliveries.length).toBeLessThanOrEqual(2);
    expect(latency).toBeGreaterThanOrEqual(2_000);
    // 2–4 s when the node is back before the hold is due; later only by the time the restart itself took.
    expect(latency).toBeLessThanOrEqual(Math.max(4_000, reconnectedAt - reportedAt + 2_000));
    const decisions = await api('GET', `/v1/homes/${homeId}/decisions?rule=${rule.id}`, appToken);
    expect(decisions.status).toBe(200);
    expect(decisions.body.items).toEqual([
      expect.objectContaining({ ruleId: rule.id, outcome: 'fired', trigger: expect.objectContaining({ type: 'attribute', for: '2s' }) }),
    ]);
    expect(restarted.child.exitCode).toBeNull();
    expect(await stopNode(restarted)).toBe(0);
  }, 60_000);

  it('a `time` rule due 8 s ahead whose owner is SIGKILLed at +2 s fires exactly once, from the new owner, within its misfire grace', async () => {
    const cluster = newCluster();
    const ids = ['t1', 't2', 't3'];
    await Promise.all(ids.map((id) => cluster.start(id)));
    const before = await cluster.settled('t1', ids);
    const victim = 't3'; // not the coordinator (the lowest live id): its death is noticed by the usual path
    const [homeId] = homesOn(before, victim, 1, 'clock');
    const { secret, appToken } = await provisionHome(cluster.api('t1'), ADMIN, homeId!);
    // The hub lives on a survivor that does not own the home: the command crosses nodes after the failover.
    const hub = new TimerHub(homeId!, secret);
    await hub.connect(cluster.grpc('t2'));

    // Due on a whole second about 8 s ahead, in the home's time zone (provisionHome: Europe/Berlin).
    const dueAt = Math.ceil((Date.now() + 8_000) / 1_000) * 1_000;
    const rule = {
      id: 'evening-light',
      name: 'Light on at a set time',
      when: [{ type: 'time', at: localTime(dueAt, 'Europe/Berlin') }],
      then: [lightOn],
    };
    const put = await cluster.api('t1')('PUT', `/v1/homes/${homeId}/rules/${rule.id}`, appToken, rule);
    expect(put.status, JSON.stringify(put.body)).toBeLessThan(300);

    // The owner dies 6 s before the rule is due (about +2 s).
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThanOrEqual(dueAt - 6_000), { timeout: 10_000, interval: 10 });
    const killed = cluster.node(victim);
    killed.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await exited(killed)).toBeNull();
    expect(hub.deliveries).toEqual([]);

    await vi.waitFor(() => expect(hub.deliveries.length).toBeGreaterThan(0), { timeout: 30_000, interval: 10 });
    const delivery = hub.deliveries[0]!;
    const after = await cluster.settled('t1', ['t1', 't2'], 20_000);
    const newOwner = ownerOfHome(after, homeId!);
    expect(['t1', 't2']).toContain(newOwner);
    const viaSurvivor = cluster.api('t1');
    const path = `/v1/homes/${homeId}/commands/${encodeURIComponent(delivery.commandId)}`;
    await vi.waitFor(async () => expect((await viaSurvivor('GET', path, appToken)).body).toMatchObject({ status: 'succeeded' }), {
      timeout: 10_000,
      interval: 50,
    });
    // Nothing more comes: wait past what a second firing (the same reminder loaded twice) would take.
    await new Promise((r) => setTimeout(r, 3_000));

    const decisions = await viaSurvivor('GET', `/v1/homes/${homeId}/decisions?rule=${rule.id}`, appToken);
    expect(decisions.status).toBe(200);
    const items = decisions.body.items as { outcome: string; at: number; trigger: { type: string; dueAt: number } }[];
    const firedByOwner = await metric(cluster.api(newOwner), ADMIN, 'iot_reminders_fired_total', 'kind="home"');
    const lateness = await metric(cluster.api(newOwner), ADMIN, 'iot_reminder_lateness_seconds_sum', 'kind="home"');
    console.log(
      `[timers] time rule across a SIGKILL of its owner ${victim}: due ${new Date(dueAt).toISOString()}, killed ${dueAt - killedAt} ms before; ` +
        `command at the hub ${delivery.at - dueAt} ms after due (decision at +${(items[0]?.at ?? NaN) - dueAt} ms); ` +
        `new owner ${newOwner} (home reminders fired there: ${firedByOwner}, lateness sum ${lateness} s)`,
    );
    expect(items).toEqual([
      expect.objectContaining({ ruleId: rule.id, outcome: 'fired', trigger: expect.objectContaining({ type: 'time' }) }),
    ]);
    expect(hub.deliveries.map((d) => ({ commandId: d.commandId, device: d.deviceId }))).toEqual([
      { commandId: delivery.commandId, device: 'light1' },
    ]);
    // Fired after its due time, by a survivor (the victim was dead by then), late by failover time, far inside the 10 m grace.
    expect(items[0]!.at).toBeGreaterThanOrEqual(dueAt);
    expect(delivery.at).toBeGreaterThan(killedAt);
    expect(delivery.at - dueAt).toBeLessThan(20_000);
    expect(firedByOwner).toBeGreaterThanOrEqual(1);
    expect(hub.errors()).toEqual([]);
  }, 60_000);

  it('a node whose fence went stale (paused while its shards moved) never fires the reminders it still holds: the new owner fires them once', async () => {
    const cluster = newCluster();
    const [stale, live] = ['s1', 's2'];
    await Promise.all([cluster.start(stale), cluster.start(live)]);
    const before = await cluster.settled(stale, [stale, live]);
    const [homeId] = homesOn(before, stale, 1, 'paused');
    expect(ownerOfHome(before, homeId!)).toBe(stale);
    const shard = shardOfHome(homeId!, before.shardCount);
    const { secret, appToken } = await provisionHome(cluster.api(live), ADMIN, homeId!);
    const hub = new TimerHub(homeId!, secret);
    await hub.connect(cluster.grpc(live));
    const viaStale = cluster.api(stale);
    const viaLive = cluster.api(live);

    // Set on the stale-to-be node, durable there, due 3 s from now: while that node is paused.
    const dueAt = Math.ceil((Date.now() + 3_000) / 1_000) * 1_000;
    const rule = {
      id: 'paused-timer',
      name: 'Due while its node is paused',
      when: [{ type: 'time', at: localTime(dueAt, 'Europe/Berlin') }],
      then: [lightOn],
    };
    const put = await viaStale('PUT', `/v1/homes/${homeId}/rules/${rule.id}`, appToken, rule);
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    const fencedBefore = await metric(viaStale, ADMIN, 'iot_persist_fence_rejections_total');
    const firedBefore = await metric(viaStale, ADMIN, 'iot_reminders_fired_total', 'kind="home"');

    const paused = cluster.node(stale);
    paused.child.kill('SIGSTOP');
    file.cleanup(() => void paused.child.kill('SIGCONT'));
    const stoppedAt = Date.now();
    expect(stoppedAt).toBeLessThan(dueAt - 500);
    // Its heartbeat expires; the live node takes it out of the ring, takes its leases with new fence
    // tokens, loads the shard's reminders and fires this one (late by the failover) to the hub.
    await cluster.settled(live, [live], 30_000);
    const takenAt = Date.now();
    await vi.waitFor(() => expect(hub.deliveries.length).toBeGreaterThan(0), { timeout: 15_000, interval: 10 });
    const delivery = hub.deliveries[0]!;

    // Woken, the paused node's scheduler still holds the reminder, long overdue. The node stopped
    // its shards itself (self-fence: its heartbeat went stale) — or, if the reminder fired first,
    // before the node read that its leases moved on, its step must not become durable.
    paused.child.kill('SIGCONT');
    const wokenAt = Date.now();
    await vi.waitFor(async () => expect((await viaStale('GET', '/readyz')).status).toBeLessThan(600), { timeout: 10_000, interval: 50 });
    // Time for a second firing to reach the hub if the stale node's step got through (a command takes ~10 ms).
    await new Promise((r) => setTimeout(r, 3_000));
    const fencedAfter = await metric(viaStale, ADMIN, 'iot_persist_fence_rejections_total');
    const firedAfter = await metric(viaStale, ADMIN, 'iot_reminders_fired_total', 'kind="home"');
    const staleLog = paused.output();
    const byLease = staleLog.includes(`this node holds no lease on shard ${shard}`);
    const decisions = await viaLive('GET', `/v1/homes/${homeId}/decisions?rule=${rule.id}`, appToken);
    console.log(
      `[timers] stale fence: ${stale} paused at due −${dueAt - stoppedAt} ms, ${live} held every shard ${takenAt - stoppedAt} ms later, ` +
        `the command reached the hub ${delivery.at - dueAt} ms after due; woken ${wokenAt - dueAt} ms after due: home reminders it handed its ` +
        `reducer ${firedBefore} → ${firedAfter}, its windows refused by the fence script ${fencedBefore} → ${fencedAfter}, ` +
        `refused by its lease check: ${byLease}; deliveries ${JSON.stringify(hub.deliveries.map((d) => ({ ...d, at: d.at - dueAt })))}`,
    );
    // Exactly one firing, the live owner's: one command at the hub, one `fired` decision.
    expect(hub.deliveries.map((d) => ({ commandId: d.commandId, device: d.deviceId }))).toEqual([
      { commandId: delivery.commandId, device: 'light1' },
    ]);
    expect(delivery.at).toBeGreaterThan(takenAt - 1_000);
    expect(delivery.at).toBeLessThan(wokenAt);
    expect(decisions.status).toBe(200);
    expect(decisions.body.items).toEqual([expect.objectContaining({ ruleId: rule.id, outcome: 'fired' })]);
    const path = `/v1/homes/${homeId}/commands/${encodeURIComponent(delivery.commandId)}`;
    await vi.waitFor(async () => expect((await viaLive('GET', path, appToken)).body).toMatchObject({ status: 'succeeded' }), {
      timeout: 10_000,
      interval: 50,
    });
    // The stale node fenced itself once woken (paused longer than HEARTBEAT_TTL_MS); if its
    // scheduler handed the overdue reminder to the home all the same, the window was refused by
    // the fence, in Redis or by its own lease check.
    expect(staleLog, staleLog.slice(-3_000)).toContain('self-fence');
    if (firedAfter > firedBefore) expect(fencedAfter > fencedBefore || byLease, staleLog.slice(-3_000)).toBe(true);
    expect(hub.errors()).toEqual([]);
  }, 60_000);

  it('reminders that come due while a planned drain moves their shard fire exactly once each: the old owner fires those due before it lets go, the new owner the rest', async () => {
    const cluster = newCluster();
    const ids = ['p1', 'p2', 'p3'];
    // info: the nodes log when they adopt the new ring and when they have handed their shards off.
    await Promise.all(ids.map((id) => cluster.start(id, { LOG_LEVEL: 'info' })));
    const before = await cluster.settled('p1', ids);
    const oldOwner = 'p3'; // not the coordinator (the lowest live id)
    const [homeId] = homesOn(before, oldOwner, 1, 'moving');
    const shard = shardOfHome(homeId!, before.shardCount);
    const admin = cluster.api('p1');
    const plan = await admin('POST', '/v1/admin/ring/plan?detail=true', ADMIN, { drain: [oldOwner] });
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    const newOwner = (plan.body.moves as { shard: number; to: string }[]).find((m) => m.shard === shard)!.to;
    expect(['p1', 'p2']).toContain(newOwner);
    const { secret, appToken } = await provisionHome(admin, ADMIN, homeId!);
    // The hub lives on the third node: every command crosses nodes, before the move and after it.
    const hubNode = ids.find((id) => id !== oldOwner && id !== newOwner)!;
    const hub = new TimerHub(homeId!, secret);
    const stream = await hub.connect(cluster.grpc(hubNode));
    stream.reports([{ seq: 1, device: 'motion1', attributes: { motion: false } }]);
    await stream.ackAtLeast(1, 10_000);

    // The drain starts at `moveAt`, 0.5 s before the `time` rule is due (on a whole second, about 6 s
    // ahead). One report at `reportAt` sets a `for` hold per rule, due every 50 ms from 0.3 s before
    // the drain to 0.9 s after it, so several come due while the shard is between owners. (26
    // commands: within the home's budget of 30.)
    const dueAt = Math.ceil((Date.now() + 6_000) / 1_000) * 1_000;
    const moveAt = dueAt - 500;
    const reportAt = dueAt - 3_000;
    const holdFor = Array.from({ length: 25 }, (_, i) => moveAt - 300 + 50 * i - reportAt);
    const rules = [
      { id: 'at-time', name: 'Due 0.5 s into the drain', when: [{ type: 'time', at: localTime(dueAt, 'Europe/Berlin') }], then: [lightOn] },
      ...holdFor.map((ms, i) => ({
        id: `held-${i}`,
        name: `Motion held ${ms} ms`,
        when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true, for: `${ms}ms` }],
        then: [lightOn],
      })),
    ];
    for (const rule of rules) {
      const put = await admin('PUT', `/v1/homes/${homeId}/rules/${rule.id}`, appToken, rule);
      expect(put.status, JSON.stringify(put.body)).toBe(201);
    }
    expect(Date.now(), 'the setup overran the planned timeline').toBeLessThan(reportAt - 200);
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThanOrEqual(reportAt), { timeout: 10_000, interval: 5 });
    const sentAt = Date.now();
    stream.reports([{ seq: 2, device: 'motion1', attributes: { motion: true }, tsMs: sentAt }]);
    await stream.ackAtLeast(2, 10_000);
    // A hold is set when the home handles the report, at or after `sentAt`: never due before this.
    const dueOf = (ruleId: string): number => (ruleId === 'at-time' ? dueAt : sentAt + holdFor[Number(ruleId.slice('held-'.length))]!);

    // Every shard's lease holder and fence token in Redis every 20 ms: when the shard left the old owner and reached the new one.
    const sampler = new ShardSampler(file.redis.url, cluster.opts.cluster, SHARDS);
    sampler.start(20);
    file.cleanup(() => sampler.stop());
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThanOrEqual(moveAt), { timeout: 10_000, interval: 5 });
    const movedAt = Date.now();
    const applied = await admin('POST', '/v1/admin/ring', ADMIN, { drain: [oldOwner] });
    expect(applied, JSON.stringify(applied.body)).toMatchObject({ status: 202, body: { epoch: before.epoch + 1 } });

    await vi.waitFor(() => expect(hub.byId().size).toBeGreaterThanOrEqual(rules.length), { timeout: 20_000, interval: 10 });
    const after = await cluster.settled('p1', ['p1', 'p2'], 20_000);
    // Nothing more comes: wait past what a second firing (a reminder loaded by both owners) would take.
    await new Promise((r) => setTimeout(r, 2_000));
    await sampler.stop();

    // The move completed: by the admin view's ring the shard is the new owner's, every live node holds
    // what it is assigned and the drained one nothing; in Redis its lease is the new owner's, under a newer fence.
    expect(ownerOfHome(after, homeId!)).toBe(newOwner);
    expect(after.nodes.find((n) => n.id === oldOwner)).toMatchObject({ state: 'draining', alive: true, shardsAssigned: 0, shardsOwned: 0 });
    expect(sampler.violations).toEqual([]);
    const samples = sampler.samples;
    const atMove = samples.find((x) => x.at >= movedAt)!;
    expect(atMove.holders[shard]).toBe(oldOwner);
    expect(samples.at(-1)!.holders[shard]).toBe(newOwner);
    expect(samples.at(-1)!.fences[shard]!).toBeGreaterThan(atMove.fences[shard]!);
    // The last look at the lease in the old owner's hands, the first without it, the first in the new owner's.
    const lastOld = samples.filter((x) => x.holders[shard] === oldOwner).at(-1)!.at;
    const firstOff = samples.find((x) => x.at > lastOld)!.at;
    const firstNew = samples.find((x) => x.holders[shard] === newOwner)!.at;

    const viaNew = cluster.api(newOwner);
    const decisions = await viaNew('GET', `/v1/homes/${homeId}/decisions?limit=100`, appToken);
    expect(decisions.status).toBe(200);
    type Decision = {
      seq: number;
      ruleId: string;
      outcome: string;
      at: number;
      trigger: { dueAt?: number };
      actions: { commandId?: string }[];
    };
    const items = (decisions.body.items as Decision[]).toSorted((a, b) => a.seq - b.seq);
    const byId = hub.byId();
    const perNode = new Map<string, { fired: number; lateSum: number; lateCount: number }>();
    for (const id of ids) {
      const api = cluster.api(id);
      perNode.set(id, {
        fired: await metric(api, ADMIN, 'iot_reminders_fired_total', 'kind="home"'),
        lateSum: await metric(api, ADMIN, 'iot_reminder_lateness_seconds_sum', 'kind="home"'),
        lateCount: await metric(api, ADMIN, 'iot_reminder_lateness_seconds_count', 'kind="home"'),
      });
    }
    // The old owner fired its reminders before it let the shard go, the new owner after it took it:
    // in the home's decision order, the old owner's count of firings comes first.
    const firedByOld = perNode.get(oldOwner)!.fired;
    const firedBy = (d: Decision): string => (items.indexOf(d) < firedByOld ? oldOwner : newOwner);
    const inGap = rules.filter((r) => dueOf(r.id) > movedAt && dueOf(r.id) < firstNew).map((r) => r.id);
    /** When `node` logged `msg` after the drain began (pino's `time`), ms from the drain POST. */
    const logLine = (node: string, msg: string): string => {
      const at = cluster
        .node(node)
        .output()
        .split('\n')
        .filter((l) => l.includes(`"msg":"${msg}`))
        .map((l) => (JSON.parse(l) as { time: number }).time)
        .find((t) => t >= movedAt);
      return `${node} "${msg}" at +${(at ?? NaN) - movedAt}`;
    };
    console.log(
      `[timers] planned drain of ${oldOwner} (shard ${shard} → ${newOwner}, hub on ${hubNode}), ms from the drain POST: ` +
        `${logLine(oldOwner, 'ring changed')}, ${logLine(newOwner, 'ring changed')}, lease last seen on ${oldOwner} +${lastOld - movedAt}, ` +
        `first seen on ${newOwner} +${firstNew - movedAt}, ${logLine(oldOwner, 'shards handed off')}; due in that gap: ${inGap.join(', ')}; ` +
        `${items
          .map(
            (d) =>
              `${d.ruleId} due +${dueOf(d.ruleId) - movedAt} fired +${d.at - movedAt} by ${firedBy(d)} (${d.at - dueOf(d.ruleId)} ms late)`,
          )
          .join('; ')}; ` +
        `home reminders fired per node: ${[...perNode].map(([id, n]) => `${id} ${n.fired} (lateness ${(n.lateSum * 1000).toFixed(0)} ms over ${n.lateCount})`).join(', ')}`,
    );

    // Exactly once per rule: one decision, `fired`, not early, late by at most the handoff; its command reached the hub once.
    expect(items.map((d) => d.ruleId).toSorted()).toEqual(rules.map((r) => r.id).toSorted());
    for (const d of items) {
      expect(d.outcome, d.ruleId).toBe('fired');
      expect(d.at, d.ruleId).toBeGreaterThanOrEqual(dueOf(d.ruleId));
      expect(d.at - dueOf(d.ruleId), d.ruleId).toBeLessThan(5_000);
      const commandId = d.actions[0]?.commandId;
      expect(byId.get(commandId!)?.length, `${d.ruleId}: command ${commandId}`).toBe(1);
    }
    expect(items.find((d) => d.ruleId === 'at-time')!.trigger.dueAt).toBe(dueAt);
    expect(byId.size).toBe(rules.length);
    expect(hub.deliveries).toHaveLength(rules.length);
    // Each reminder was handed to the home once, by the node holding the lease: the old owner's before
    // the lease left it, the new owner's after; the hub's node never fired one.
    expect(firedByOld + perNode.get(newOwner)!.fired).toBe(rules.length);
    expect(perNode.get(hubNode)!.fired).toBe(0);
    for (const d of items.slice(0, firedByOld)) expect(d.at, d.ruleId).toBeLessThanOrEqual(firstOff);
    for (const d of items.slice(firedByOld)) expect(d.at, d.ruleId).toBeGreaterThanOrEqual(lastOld);
    // The overlap happened: some holds came due after the drain began and before the new owner held the lease.
    expect(inGap.length).toBeGreaterThan(0);
    expect(hub.errors()).toEqual([]);
  }, 40_000);
});
