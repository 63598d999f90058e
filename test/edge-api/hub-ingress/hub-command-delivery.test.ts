/** HubCommandDelivery over fake sessions and a fake router, two nodes joined by in-process NodeDeliveries: here, forwarded, queued, lookup retried; commands and desired deltas. */
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { CommandDelivery, DesiredDelivery, HubSessionEndReason } from '../../../actors/types.ts';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import { NodeDelivery } from '../../../cluster/node-delivery.ts';
import { HubCommandDelivery, MAX_HUB_HOPS, MAX_WAITING_PER_HUB } from '../../../edge-api/hub-ingress/hub-command-delivery.ts';
import { pino } from 'pino';
import { silentLogger } from '../../../runtime/logger.ts';
import { runtimeError, type Result } from '../../../runtime/result.ts';

const command: CommandDelivery = {
  commandId: 'light1~c1',
  deviceId: 'light1',
  name: 'set',
  params: { on: true },
  expiresAtMs: 1_900_000_000_000,
};

/** Hub streams of one node: `open(hubId)` gives the hub one; what it was sent is recorded. */
class FakeSessions {
  readonly written: ({ hubId: string; command: CommandDelivery } | { hubId: string; desired: DesiredDelivery })[] = [];
  readonly ended: { hubId: string; sessionId: string | undefined; reason: HubSessionEndReason; at?: number }[] = [];
  private readonly open = new Set<string>();

  connect(hubId: string): void {
    this.open.add(hubId);
  }

  sessionOf(homeId: string, hubId: string) {
    if (homeId !== 'h1' || !this.open.has(hubId)) return undefined;
    return {
      sendCommand: (c: CommandDelivery) => this.written.push({ hubId, command: c }) > 0,
      sendDesired: (d: DesiredDelivery) => this.written.push({ hubId, desired: d }) > 0,
    };
  }

  endSession(homeId: string, hubId: string, sessionId: string | undefined, reason: HubSessionEndReason, at?: number): boolean {
    if (homeId !== 'h1' || !this.open.has(hubId)) return false;
    this.ended.push({ hubId, sessionId, reason, ...(at === undefined ? {} : { at }) });
    return true;
  }
}

/** Answers `hub.get` with the queued results, then with the last one. */
class FakeRouter implements ActorRouter {
  readonly asked: { actorId: string; msg: unknown }[] = [];
  constructor(private readonly answers: Result<unknown>[]) {}

  async ask<R>(actorId: string, msg: unknown): Promise<Result<R>> {
    this.asked.push({ actorId, msg });
    return (this.answers.length > 1 ? this.answers.shift()! : this.answers[0]!) as Result<R>;
  }

  tell(): Result<void> {
    throw new Error('not used');
  }

  deliver(): Result<void> {
    throw new Error('not used');
  }
}

const hubAt = (sessionNode: string | undefined): Result<unknown> => ({
  ok: true,
  value: {
    ok: true,
    value: {
      homeId: 'h1',
      hubId: 'hub1',
      devices: [],
      connected: sessionNode !== undefined,
      lastDurableSeq: 0,
      ...(sessionNode ? { sessionNode } : {}),
    },
  },
});

async function counted(registry: Registry, outcome: string, metric = 'iot_hub_commands_routed_total'): Promise<number> {
  const m = await registry.getSingleMetric(metric)?.get();
  return m?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

/** Nodes n1 and n2, each with its sessions and delivery; n1 asks `router`; `down` makes n1 → n2 sends fail. */
function twoNodes(router: FakeRouter) {
  const registries = { n1: new Registry(), n2: new Registry() };
  const sessions = { n1: new FakeSessions(), n2: new FakeSessions() };
  const link = { down: false };
  const nodes: Record<'n1' | 'n2', NodeDelivery> = {
    n1: new NodeDelivery(
      'n1',
      (node, channel, payload) => {
        if (link.down || node !== 'n2') return runtimeError('unavailable', `peer ${node} is unavailable`);
        // As over the wire: JSON in, JSON out.
        nodes.n2.receive(channel, JSON.parse(JSON.stringify(payload)), 'n1');
        return { ok: true, value: undefined };
      },
      silentLogger,
    ),
    n2: new NodeDelivery('n2', () => runtimeError('unavailable', 'not used'), silentLogger),
  };
  const make = (id: 'n1' | 'n2') =>
    new HubCommandDelivery({
      nodeId: id,
      router,
      sessions: sessions[id],
      nodes: nodes[id],
      logger: silentLogger,
      registry: registries[id],
      lookupRetryMs: 1,
      routeGiveUpMs: 50,
    });
  return { n1: make('n1'), n2: make('n2'), sessions, registries, link };
}

/** Asks answered by `answer()` at the time of the ask (a test moves the hub's stream by changing it). */
class LiveRouter implements ActorRouter {
  asks = 0;
  constructor(public answer: () => Result<unknown>) {}

  async ask<R>(): Promise<Result<R>> {
    this.asks++;
    return this.answer() as Result<R>;
  }

  tell(): Result<void> {
    throw new Error('not used');
  }

  deliver(): Result<void> {
    throw new Error('not used');
  }
}

type NodeId = 'n1' | 'n2' | 'n3';

/** Nodes n1..n3 joined both ways by in-process NodeDeliveries (JSON over the "wire"); `down` holds the nodes that cannot be reached. */
function threeNodes(router: ActorRouter, opts: { routeGiveUpMs?: number; lookupRetryMs?: number; maxWaitingPerHub?: number } = {}) {
  const ids: NodeId[] = ['n1', 'n2', 'n3'];
  const down = new Set<NodeId>();
  const sessions = { n1: new FakeSessions(), n2: new FakeSessions(), n3: new FakeSessions() };
  const registries = { n1: new Registry(), n2: new Registry(), n3: new Registry() };
  const nodes = {} as Record<NodeId, NodeDelivery>;
  for (const id of ids)
    nodes[id] = new NodeDelivery(
      id,
      (to, channel, payload) => {
        if (down.has(to as NodeId) || !(to in nodes)) return runtimeError('unavailable', `peer ${to} is unavailable`);
        // Another turn, as over the wire: JSON in, JSON out.
        const wire = JSON.parse(JSON.stringify(payload)) as unknown;
        setImmediate(() => nodes[to as NodeId].receive(channel, wire, id));
        return { ok: true, value: undefined };
      },
      silentLogger,
    );
  const delivery = {} as Record<NodeId, HubCommandDelivery>;
  for (const id of ids)
    delivery[id] = new HubCommandDelivery({
      nodeId: id,
      router,
      sessions: sessions[id],
      nodes: nodes[id],
      logger: silentLogger,
      registry: registries[id],
      lookupRetryMs: opts.lookupRetryMs ?? 5,
      routeGiveUpMs: opts.routeGiveUpMs ?? 5_000,
      ...(opts.maxWaitingPerHub === undefined ? {} : { maxWaitingPerHub: opts.maxWaitingPerHub }),
    });
  return { delivery, sessions, registries, down };
}

/** The command ids a node's sessions were written, in order. */
const idsWritten = (s: FakeSessions): string[] => s.written.flatMap((w) => ('command' in w ? [w.command.commandId] : []));

describe('HubCommandDelivery', () => {
  it('writes to the hub stream on this node without asking the hub actor', async () => {
    const router = new FakeRouter([hubAt('n1')]);
    const { n1, sessions, registries } = twoNodes(router);
    sessions.n1.connect('hub1');
    n1.send('h1', 'hub1', command);
    expect(sessions.n1.written).toEqual([{ hubId: 'hub1', command }]);
    expect(router.asked).toEqual([]);
    expect(await counted(registries.n1, 'local')).toBe(1);
  });

  it('on a node without a cluster, leaves a command for a hub with no stream here queued, asking nothing', async () => {
    const router = new FakeRouter([hubAt(undefined)]);
    const registry = new Registry();
    const alone = new HubCommandDelivery({ nodeId: 'n1', router, sessions: new FakeSessions(), logger: silentLogger, registry });
    alone.send('h1', 'hub1', command);
    expect(router.asked).toEqual([]);
    expect(await counted(registry, 'queued')).toBe(1);
  });

  it('sends a command to the node the hub actor names, which writes it to the stream there', async () => {
    const router = new FakeRouter([hubAt('n2')]);
    const { n1, sessions, registries } = twoNodes(router);
    sessions.n2.connect('hub1');
    n1.send('h1', 'hub1', command);
    await vi.waitFor(() => expect(sessions.n2.written).toEqual([{ hubId: 'hub1', command }]));
    expect(router.asked).toEqual([{ actorId: 'hub:h1:hub1', msg: { type: 'hub.get' } }]);
    expect(await counted(registries.n1, 'forwarded')).toBe(1);
    expect(await counted(registries.n2, 'local')).toBe(1);
    expect(sessions.n1.written).toEqual([]);
  });

  it('leaves the command queued when no node holds a stream, or the named node no longer does', async () => {
    const router = new FakeRouter([hubAt(undefined), hubAt('n2')]);
    const { n1, registries } = twoNodes(router);
    n1.send('h1', 'hub1', command);
    await vi.waitFor(async () => expect(await counted(registries.n1, 'queued')).toBe(1));
    n1.send('h1', 'hub1', command);
    await vi.waitFor(async () => expect(await counted(registries.n2, 'queued')).toBe(1));
    expect(await counted(registries.n1, 'forwarded')).toBe(1);
  });

  it('treats a domain error from the hub actor as no stream anywhere', async () => {
    const router = new FakeRouter([{ ok: true, value: { ok: false, error: { code: 'not_found', message: 'no such hub' } } }]);
    const { n1, registries } = twoNodes(router);
    n1.send('h1', 'hub1', command);
    await vi.waitFor(async () => expect(await counted(registries.n1, 'queued')).toBe(1));
    expect(router.asked).toHaveLength(1);
  });

  it('retries a failed hub lookup once (its shard may be moving) and then forwards', async () => {
    const router = new FakeRouter([runtimeError('unavailable', 'shard 3 has no reachable owner yet'), hubAt('n2')]);
    const { n1, sessions, registries } = twoNodes(router);
    sessions.n2.connect('hub1');
    n1.send('h1', 'hub1', command);
    await vi.waitFor(() => expect(sessions.n2.written).toHaveLength(1));
    expect(router.asked).toHaveLength(2);
    expect(await counted(registries.n1, 'lookup_failed')).toBe(0);
  });

  it('counts a command whose hub lookup kept failing until routeGiveUpMs, and sends nothing', async () => {
    const router = new FakeRouter([runtimeError('timeout', 'no reply')]);
    const { n1, sessions, registries } = twoNodes(router);
    sessions.n2.connect('hub1');
    n1.send('h1', 'hub1', command);
    await vi.waitFor(async () => expect(await counted(registries.n1, 'lookup_failed')).toBe(1));
    expect(router.asked.length).toBeGreaterThan(2);
    expect(sessions.n2.written).toEqual([]);
  });

  it('counts a command the peer transport refused', async () => {
    const router = new FakeRouter([hubAt('n2')]);
    const { n1, sessions, registries, link } = twoNodes(router);
    sessions.n2.connect('hub1');
    link.down = true;
    n1.send('h1', 'hub1', command);
    await vi.waitFor(async () => expect(await counted(registries.n1, 'forward_failed')).toBe(1));
    expect(sessions.n2.written).toEqual([]);
  });

  it('writes here when the hub actor names this node (the stream opened meanwhile)', async () => {
    const router = new FakeRouter([hubAt('n1')]);
    const { n1, sessions, registries } = twoNodes(router);
    const sent = vi.spyOn(sessions.n1, 'sessionOf');
    sent.mockReturnValueOnce(undefined).mockReturnValueOnce(undefined);
    sessions.n1.connect('hub1');
    n1.send('h1', 'hub1', command);
    await vi.waitFor(() => expect(sessions.n1.written).toHaveLength(1));
    expect(router.asked).toHaveLength(1);
    expect(await counted(registries.n1, 'local')).toBe(1);
  });

  it('keeps one hub’s commands in order when the lookup of an earlier one is retried', async () => {
    const router = new FakeRouter([runtimeError('unavailable', 'shard 3 is moving'), hubAt('n2')]);
    const { n1, sessions } = twoNodes(router);
    sessions.n2.connect('hub1');
    const on = { ...command, commandId: 'light1~on', params: { on: true } };
    const off = { ...command, commandId: 'light1~off', params: { on: false } };
    n1.send('h1', 'hub1', on);
    n1.send('h1', 'hub1', off);
    await vi.waitFor(() => expect(sessions.n2.written).toHaveLength(2));
    expect(sessions.n2.written.map((w) => ('command' in w ? w.command.commandId : undefined))).toEqual(['light1~on', 'light1~off']);
  });

  describe('desired deltas', () => {
    const desired: DesiredDelivery = { deviceId: 'light1', version: 7, delta: { on: true, level: 40, scene: 'evening' } };
    const desiredCount = (registry: Registry, outcome: string) => counted(registry, outcome, 'iot_hub_desired_routed_total');

    it('writes a delta to the stream here, counted apart from commands', async () => {
      const router = new FakeRouter([hubAt('n1')]);
      const { n1, sessions, registries } = twoNodes(router);
      sessions.n1.connect('hub1');
      n1.sendDesired('h1', 'hub1', desired);
      expect(sessions.n1.written).toEqual([{ hubId: 'hub1', desired }]);
      expect(router.asked).toEqual([]);
      expect(await desiredCount(registries.n1, 'local')).toBe(1);
      expect(await counted(registries.n1, 'local')).toBe(0);
    });

    it('sends a delta to the node holding the stream over the hub.desired channel', async () => {
      const router = new FakeRouter([hubAt('n2')]);
      const { n1, sessions, registries } = twoNodes(router);
      sessions.n2.connect('hub1');
      n1.sendDesired('h1', 'hub1', desired);
      await vi.waitFor(() => expect(sessions.n2.written).toEqual([{ hubId: 'hub1', desired }]));
      expect(await desiredCount(registries.n1, 'forwarded')).toBe(1);
      expect(await desiredCount(registries.n2, 'local')).toBe(1);
    });

    it('counts a delta whose hub has no stream anywhere as queued (the device sends it again on connect)', async () => {
      const router = new FakeRouter([hubAt(undefined)]);
      const { n1, sessions, registries } = twoNodes(router);
      n1.sendDesired('h1', 'hub1', desired);
      await vi.waitFor(async () => expect(await desiredCount(registries.n1, 'queued')).toBe(1));
      expect([...sessions.n1.written, ...sessions.n2.written]).toEqual([]);
    });

    it('keeps a hub’s commands and deltas in one order across a retried lookup', async () => {
      const router = new FakeRouter([runtimeError('unavailable', 'shard 3 is moving'), hubAt('n2')]);
      const { n1, sessions } = twoNodes(router);
      sessions.n2.connect('hub1');
      n1.send('h1', 'hub1', command);
      n1.sendDesired('h1', 'hub1', desired);
      n1.sendDesired('h1', 'hub1', { ...desired, version: 8, delta: { on: false } });
      await vi.waitFor(() => expect(sessions.n2.written).toHaveLength(3));
      expect(sessions.n2.written.map((w) => ('command' in w ? w.command.commandId : w.desired.version))).toEqual(['light1~c1', 7, 8]);
    });

    it('drops what a peer sends on the desired channel unless every field is well formed', () => {
      const registry = new Registry();
      const sessions = new FakeSessions();
      sessions.connect('hub1');
      const nodes = new NodeDelivery('n2', () => runtimeError('unavailable', 'not used'), silentLogger);
      new HubCommandDelivery({ nodeId: 'n2', router: new FakeRouter([hubAt('n2')]), sessions, nodes, logger: silentLogger, registry });
      const bad: unknown[] = [
        null,
        { homeId: 'h1', hubId: 'hub1' },
        { homeId: 'h1', hubId: 'hub1', desired: { ...desired, deviceId: 3 } },
        { homeId: 'h1', hubId: 'hub1', desired: { ...desired, version: -1 } },
        { homeId: 'h1', hubId: 'hub1', desired: { ...desired, version: 1.5 } },
        { homeId: 'h1', hubId: 'hub1', desired: { ...desired, delta: [] } },
        { homeId: 'h1', hubId: 'hub1', desired: { ...desired, delta: { on: null } } },
        { homeId: 'h1', hubId: 2, desired },
      ];
      for (const payload of bad) expect(nodes.receive('hub.desired', payload, 'n1')).toBe('refused');
      expect(sessions.written).toEqual([]);
      expect(nodes.receive('hub.desired', { homeId: 'h1', hubId: 'hub1', desired }, 'n1')).toBe('ok');
      expect(sessions.written).toEqual([{ hubId: 'hub1', desired }]);
    });
  });

  it('drops what a peer sends on the hub channel unless every field of the command is well formed', async () => {
    const registry = new Registry();
    const sessions = new FakeSessions();
    sessions.connect('hub1');
    const nodes = new NodeDelivery('n2', () => runtimeError('unavailable', 'not used'), silentLogger);
    new HubCommandDelivery({ nodeId: 'n2', router: new FakeRouter([hubAt('n2')]), sessions, nodes, logger: silentLogger, registry });
    const bad: unknown[] = [
      null,
      [],
      { homeId: 'h1', hubId: 'hub1' },
      { homeId: 'h1', hubId: 'hub1', command: { ...command, commandId: 7 } },
      { homeId: 'h1', hubId: 'hub1', command: { ...command, expiresAtMs: 'soon' } },
      { homeId: 'h1', hubId: 'hub1', command: { ...command, params: { on: { nested: true } } } },
      { homeId: 'h1', hubId: 'hub1', command: { ...command, params: null } },
    ];
    for (const payload of bad) expect(nodes.receive('hub.command', payload, 'n1')).toBe('refused');
    expect(sessions.written).toEqual([]);
    expect(nodes.receive('hub.command', { homeId: 'h1', hubId: 'hub1', command }, 'n1')).toBe('ok');
    expect(sessions.written).toEqual([{ hubId: 'hub1', command }]);
  });

  it('ends a hub session where the hub actor says it is held: here, or on its node over the hub.session channel', async () => {
    const { n1, sessions } = twoNodes(new FakeRouter([]));
    sessions.n1.connect('hub1');
    sessions.n2.connect('hub1');
    n1.endSession({ homeId: 'h1', hubId: 'hub1', nodeId: 'n1', sessionId: 's-here', reason: 'removed' });
    expect(sessions.n1.ended).toEqual([{ hubId: 'hub1', sessionId: 's-here', reason: 'removed' }]);
    n1.endSession({ homeId: 'h1', hubId: 'hub1', nodeId: 'n2', sessionId: 's-there', reason: 'superseded' });
    await vi.waitFor(() => expect(sessions.n2.ended).toEqual([{ hubId: 'hub1', sessionId: 's-there', reason: 'superseded' }]));
    expect(sessions.n1.ended).toHaveLength(1);
    // A retired secret's end carries its time to the session's node, which arms it.
    n1.endSession({ homeId: 'h1', hubId: 'hub1', nodeId: 'n2', sessionId: 's-there', reason: 'secret_retired', at: 42_000 });
    await vi.waitFor(() =>
      expect(sessions.n2.ended).toContainEqual({ hubId: 'hub1', sessionId: 's-there', reason: 'secret_retired', at: 42_000 }),
    );
  });

  it('drops a session end from a peer unless it is well formed and names this node', () => {
    const sessions = new FakeSessions();
    sessions.connect('hub1');
    const nodes = new NodeDelivery('n2', () => runtimeError('unavailable', 'not used'), silentLogger);
    new HubCommandDelivery({ nodeId: 'n2', router: new FakeRouter([]), sessions, nodes, logger: silentLogger, registry: new Registry() });
    const good = { homeId: 'h1', hubId: 'hub1', nodeId: 'n2', sessionId: 's1', reason: 'superseded' };
    for (const payload of [
      null,
      { ...good, reason: 'whim' },
      { ...good, nodeId: 'n3' },
      { ...good, sessionId: 5 },
      { ...good, hubId: undefined },
      { ...good, reason: 'secret_retired', at: 'soon' },
      { ...good, reason: 'secret_retired', at: Number.NaN },
    ])
      expect(nodes.receive('hub.session', payload, 'n1')).toBe('refused');
    expect(sessions.ended).toEqual([]);
    expect(nodes.receive('hub.session', good, 'n1')).toBe('ok');
    expect(sessions.ended).toEqual([{ hubId: 'hub1', sessionId: 's1', reason: 'superseded' }]);
  });

  describe('a stream that moved', () => {
    const c = (n: number): CommandDelivery => ({ ...command, commandId: `light1~c${n}` });

    it('a node that gets a command for a stream it no longer holds asks the hub actor again and sends it on to the current one', async () => {
      // The hub actor named n2 when n1 looked; by the time the command got there, the hub was on n3.
      let at: NodeId = 'n2';
      const router = new LiveRouter(() => hubAt(at));
      const { delivery, sessions, registries } = threeNodes(router);
      const looked = vi.fn();
      router.answer = () => {
        looked();
        const r = hubAt(at);
        at = 'n3';
        sessions.n3.connect('hub1');
        return r;
      };
      delivery.n1.send('h1', 'hub1', c(1));
      await vi.waitFor(() => expect(idsWritten(sessions.n3)).toEqual(['light1~c1']));
      expect(idsWritten(sessions.n2)).toEqual([]);
      expect(await counted(registries.n1, 'forwarded')).toBe(1);
      expect(await counted(registries.n2, 'rerouted')).toBe(1);
      expect(await counted(registries.n3, 'local')).toBe(1);
      expect(looked).toHaveBeenCalledTimes(2);
    });

    it('a re-routed command keeps its place: later commands for the hub wait behind it on the node re-routing it', async () => {
      let at: NodeId = 'n2';
      const router = new LiveRouter(() => hubAt(at));
      const { delivery, sessions } = threeNodes(router);
      delivery.n1.send('h1', 'hub1', c(1));
      delivery.n1.send('h1', 'hub1', c(2));
      // Both reach n2, which holds no stream of the hub: the hub actor now names n3.
      at = 'n3';
      sessions.n3.connect('hub1');
      delivery.n1.send('h1', 'hub1', c(3));
      await vi.waitFor(() => expect(idsWritten(sessions.n3)).toHaveLength(3));
      expect(idsWritten(sessions.n3)).toEqual(['light1~c1', 'light1~c2', 'light1~c3']);
    });

    it(`stops following a hub whose nodes disagree after ${MAX_HUB_HOPS} hops (no loop): left to the re-send on connect`, async () => {
      // Each node is told the other holds the stream; none does.
      let flip = 0;
      const router = new LiveRouter(() => hubAt(flip++ % 2 === 0 ? 'n2' : 'n1'));
      const { delivery, sessions, registries } = threeNodes(router);
      delivery.n1.send('h1', 'hub1', c(1));
      const queued = async (): Promise<number> => (await counted(registries.n1, 'queued')) + (await counted(registries.n2, 'queued'));
      await vi.waitFor(async () => expect(await queued()).toBe(1));
      expect(router.asks).toBe(MAX_HUB_HOPS);
      expect([...sessions.n1.written, ...sessions.n2.written, ...sessions.n3.written]).toEqual([]);
    });

    it('keeps asking while the hub actor’s shard is handed off (lookups fail) and delivers once it answers, without a reconnect', async () => {
      let moving = true;
      const router = new LiveRouter(() => (moving ? runtimeError('unavailable', 'shard 3 has no reachable owner yet') : hubAt('n2')));
      const { delivery, sessions, registries } = threeNodes(router, { lookupRetryMs: 5 });
      sessions.n2.connect('hub1');
      delivery.n1.send('h1', 'hub1', c(1));
      delivery.n1.sendDesired('h1', 'hub1', { deviceId: 'light1', version: 3, delta: { on: true } });
      delivery.n1.send('h1', 'hub1', c(2));
      await vi.waitFor(() => expect(router.asks).toBeGreaterThan(3));
      moving = false;
      await vi.waitFor(() => expect(sessions.n2.written).toHaveLength(3));
      expect(sessions.n2.written.map((w) => ('command' in w ? w.command.commandId : `desired@${w.desired.version}`))).toEqual([
        'light1~c1',
        'desired@3',
        'light1~c2',
      ]);
      expect(await counted(registries.n1, 'lookup_failed')).toBe(0);
    });

    it('retries a forward to a node that died with a fresh lookup: the command follows the hub to its new stream', async () => {
      let at: NodeId = 'n2';
      const router = new LiveRouter(() => hubAt(at));
      const { delivery, sessions, registries, down } = threeNodes(router);
      down.add('n2');
      delivery.n1.send('h1', 'hub1', c(1));
      delivery.n1.send('h1', 'hub1', c(2));
      await vi.waitFor(() => expect(router.asks).toBeGreaterThan(2));
      // The hub reconnects to n3; its hub actor learns it.
      sessions.n3.connect('hub1');
      at = 'n3';
      await vi.waitFor(() => expect(idsWritten(sessions.n3)).toEqual(['light1~c1', 'light1~c2']));
      expect(await counted(registries.n1, 'forward_failed')).toBe(0);
      expect(await counted(registries.n1, 'forwarded')).toBe(2);
    });

    it('gives up at the command’s expiry (then it is expired in its device), counted as forward_failed', async () => {
      const router = new LiveRouter(() => hubAt('n2'));
      const { delivery, registries, down } = threeNodes(router, { routeGiveUpMs: 60_000 });
      down.add('n2');
      const started = Date.now();
      delivery.n1.send('h1', 'hub1', { ...c(1), expiresAtMs: started + 100 });
      await vi.waitFor(async () => expect(await counted(registries.n1, 'forward_failed')).toBe(1), { timeout: 5_000 });
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('does not pile a hub’s messages up behind a node that stays gone: once routeGiveUpMs has run out, each gets one try', async () => {
      const router = new LiveRouter(() => hubAt('n2'));
      const { delivery, registries, down, sessions } = threeNodes(router, { routeGiveUpMs: 100 });
      down.add('n2');
      delivery.n1.send('h1', 'hub1', c(1));
      await vi.waitFor(async () => expect(await counted(registries.n1, 'forward_failed')).toBe(1));
      expect(router.asks).toBeGreaterThan(2);
      const asked = router.asks;
      delivery.n1.send('h1', 'hub1', c(2));
      delivery.n1.send('h1', 'hub1', c(3));
      await vi.waitFor(async () => expect(await counted(registries.n1, 'forward_failed')).toBe(3));
      expect(router.asks - asked).toBe(2);
      // Routed again: the next failure has the whole retry time anew.
      down.delete('n2');
      sessions.n2.connect('hub1');
      delivery.n1.send('h1', 'hub1', c(4));
      await vi.waitFor(() => expect(idsWritten(sessions.n2)).toEqual(['light1~c4']));
      down.add('n2');
      const before = router.asks;
      delivery.n1.send('h1', 'hub1', c(5));
      await vi.waitFor(async () => expect(await counted(registries.n1, 'forward_failed')).toBe(4));
      expect(router.asks - before).toBeGreaterThan(2);
    });

    it('gives up at once when this node is stopping (its router answers stopping): no retries keep it busy', async () => {
      const router = new LiveRouter(() => runtimeError('stopping', 'the node is shutting down'));
      const { delivery, registries } = threeNodes(router);
      delivery.n1.send('h1', 'hub1', c(1));
      await vi.waitFor(async () => expect(await counted(registries.n1, 'lookup_failed')).toBe(1));
      expect(router.asks).toBe(1);
    });

    it('takes a hop count from a peer only as a whole number of at least 1', () => {
      const sessions = new FakeSessions();
      sessions.connect('hub1');
      const nodes = new NodeDelivery('n2', () => runtimeError('unavailable', 'not used'), silentLogger);
      new HubCommandDelivery({
        nodeId: 'n2',
        router: new FakeRouter([hubAt('n2')]),
        sessions,
        nodes,
        logger: silentLogger,
        registry: new Registry(),
      });
      for (const hops of [0, -1, 1.5, '2', null])
        expect(nodes.receive('hub.command', { homeId: 'h1', hubId: 'hub1', command, hops }, 'n1')).toBe('refused');
      expect(nodes.receive('hub.command', { homeId: 'h1', hubId: 'hub1', command, hops: 2 }, 'n1')).toBe('ok');
      expect(sessions.written).toEqual([{ hubId: 'hub1', command }]);
    });
  });

  describe('bounds and spread', () => {
    const c = (n: number): CommandDelivery => ({ ...command, commandId: `light1~c${n}` });
    it('spreads its retry waits over ±50 % of the nominal 250 ms → 1 s back-off (injected random)', async () => {
      const logs: { msg: string; delayMs?: number }[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string }) });
      const draws = [0, 0.999, 0.5, 0.25, 0.75, 0.1];
      let k = 0;
      const registry = new Registry();
      const nodes = new NodeDelivery('n1', () => runtimeError('unavailable', 'not used'), silentLogger);
      const delivery = new HubCommandDelivery({
        nodeId: 'n1',
        router: new LiveRouter(() => runtimeError('unavailable', 'the hub actor’s shard is moving')),
        sessions: new FakeSessions(),
        nodes,
        logger,
        registry,
        lookupRetryMs: 10,
        routeGiveUpMs: 400,
        random: () => draws[k++ % draws.length]!,
      });
      delivery.send('h1', 'hub1', command);
      await vi.waitFor(async () => expect(await counted(registry, 'lookup_failed')).toBe(1), { timeout: 5_000 });
      const waits = logs.filter((l) => l.msg === 'command routing retried').map((l) => l.delayMs!);
      console.log(`retry waits (nominal 10, 20, 40, 80, 160 ms): ${waits.join(', ')}`);
      // round(nominal × (0.5 + r)): half the nominal at r = 0, about 1.5 × at r → 1.
      expect(waits.slice(0, 5)).toEqual([5, 30, 40, 60, 200]);
      const nominal = [10, 20, 40, 80, 160, 320, 640, 1_000];
      waits.forEach((w, i) => {
        expect(w).toBeGreaterThanOrEqual(nominal[i]! / 2);
        expect(w).toBeLessThanOrEqual(nominal[i]! * 1.5);
      });
    });

    it('lets at most MAX_WAITING_PER_HUB of a hub wait behind one being routed: the next is left queued (counted), not routed', async () => {
      const router = new LiveRouter(() => hubAt('n2'));
      const { delivery, registries, down, sessions } = threeNodes(router, { routeGiveUpMs: 60_000 });
      down.add('n2');
      expect(MAX_WAITING_PER_HUB).toBe(64);
      delivery.n1.send('h1', 'hub1', c(0)); // being routed: its forwards keep failing
      for (let i = 1; i <= MAX_WAITING_PER_HUB; i++) delivery.n1.send('h1', 'hub1', c(i));
      expect(await counted(registries.n1, 'queued')).toBe(0);
      delivery.n1.send('h1', 'hub1', c(MAX_WAITING_PER_HUB + 1)); // the 65th waiting: not
      expect(await counted(registries.n1, 'queued')).toBe(1);
      // Another hub has its own chain.
      delivery.n1.send('h1', 'hub2', { ...c(900), deviceId: 'light9' });
      expect(await counted(registries.n1, 'queued')).toBe(1);
      // The node comes back: the ones that waited go, in order; the one left queued does not.
      down.delete('n2');
      sessions.n2.connect('hub1');
      await vi.waitFor(() => expect(idsWritten(sessions.n2)).toHaveLength(MAX_WAITING_PER_HUB + 1), { timeout: 10_000 });
      expect(idsWritten(sessions.n2)).toEqual(Array.from({ length: MAX_WAITING_PER_HUB + 1 }, (_, i) => c(i).commandId));
      // The chain drained (hub2's one went too): the hub's next message is routed again.
      await vi.waitFor(async () => expect(await counted(registries.n1, 'forwarded')).toBe(MAX_WAITING_PER_HUB + 2));
      delivery.n1.send('h1', 'hub1', c(100));
      await vi.waitFor(() => expect(idsWritten(sessions.n2).at(-1)).toBe(c(100).commandId));
    });

    it('counts a command the stream here already carried as neither local nor any other outcome (the stream counts it skipped)', async () => {
      const registry = new Registry();
      const written = new Set<string>();
      const sessions = {
        sessionOf: () => ({
          sendCommand: (cmd: CommandDelivery) => (written.has(cmd.commandId) ? ('skipped' as const) : written.add(cmd.commandId) && true),
          sendDesired: () => true,
        }),
        endSession: () => false,
      };
      const nodes = new NodeDelivery('n1', () => runtimeError('unavailable', 'not used'), silentLogger);
      const delivery = new HubCommandDelivery({
        nodeId: 'n1',
        router: new FakeRouter([hubAt('n1')]),
        sessions,
        nodes,
        logger: silentLogger,
        registry,
      });
      delivery.send('h1', 'hub1', command);
      delivery.send('h1', 'hub1', command); // the device's re-send: the stream skips it
      // A peer's copy (hop 1) too.
      expect(nodes.receive('hub.command', { homeId: 'h1', hubId: 'hub1', command, hops: 1 }, 'n2')).toBe('ok');
      const m = await registry.getSingleMetric('iot_hub_commands_routed_total')?.get();
      expect(m?.values.filter((v) => v.value > 0).map((v) => [v.labels.outcome, v.value])).toEqual([['local', 1]]);
    });
  });
});
