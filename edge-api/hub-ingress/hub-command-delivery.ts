/**
 * Delivers a device's command or desired delta to its hub's stream: on this node, or on the node
 * the hub actor names; and ends a hub's stream session where it is held when its hub actor says so.
 */
import type { Registry } from 'prom-client';
import { hubActorId } from '../../actors/actor-id.ts';
import type { CommandDelivery, DesiredDelivery, DomainEffect, HubSessionEndReason } from '../../actors/types.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { NodeDelivery } from '../../cluster/node-delivery.ts';
import type { Logger } from '../../runtime/logger.ts';
import { counterOf } from '../../runtime/metrics.ts';
import { endSpan, SpanKind, startChildOfActive, tracingOn } from '../../runtime/tracing.ts';
import { askActor, isRuntimeError } from '../ask-actor.ts';
import type { HubSession } from './hub-session.ts';

/** The node-delivery channel hub commands travel on between nodes. */
export const HUB_COMMAND_CHANNEL = 'hub.command';
/** The node-delivery channel desired deltas travel on between nodes. */
export const HUB_DESIRED_CHANNEL = 'hub.desired';
/** The node-delivery channel on which a hub actor's `hub.session.end` reaches the node holding the stream. */
export const HUB_SESSION_CHANNEL = 'hub.session';

/**
 * Node-to-node hops a command or desired delta may take following its hub's stream: the sending
 * node's forward is hop 1; a node that finds no stream of the hub asks the hub actor again and
 * sends it on (hop 2, 3); past this it is left to the re-send on the hub's next connect. Bounds a
 * loop between nodes whose views of the hub disagree.
 */
export const MAX_HUB_HOPS = 3;
/** Longest wait between two tries of a hub lookup or forward, milliseconds (before its jitter). */
const MAX_RETRY_DELAY_MS = 1_000;
/**
 * Messages of one hub that may wait at most behind one still being routed elsewhere (default of
 * `maxWaitingPerHub`); past it a message is left to the device (`queued`: re-sent on the hub's
 * next connect) rather than doing its own lookups and failed forwards after the ones before it.
 */
export const MAX_WAITING_PER_HUB = 64;
/** Hubs whose routing failure time is kept at most (the oldest is forgotten: its next message retries afresh). */
const MAX_FAILING_HUBS = 10_000;

/** What writing to a hub's stream did: written, skipped (the stream already carried it), or not taken (false). */
export type HubWrite = boolean | 'skipped';

/** A hub stream session's writes, as the delivery needs them. */
export type HubSessionWrites = Pick<HubSession, 'sendCommand' | 'sendDesired'>;

/** A hub actor's order to end one stream session. */
export type HubSessionEnd = Omit<Extract<DomainEffect, { type: 'hub.session.end' }>, 'type'>;

/** The stream sessions held on a node, as the delivery needs them. */
export interface HubSessions {
  sessionOf(homeId: string, hubId: string): HubSessionWrites | undefined;
  /** Ends session `sessionId` of the hub (the current one when undefined) now, or at `at` (epoch ms) for a retired secret; false when none here matches. */
  endSession(homeId: string, hubId: string, sessionId: string | undefined, reason: HubSessionEndReason, at?: number): boolean;
}

/**
 * What became of a command or desired delta: written to a stream here, sent to the stream's node
 * (`rerouted`: by a node that got it for a stream it no longer holds), left to the device (no
 * stream: re-sent on the hub's next connect), or given up after retries (lookup or forward failed).
 */
export type HubCommandOutcome = 'local' | 'forwarded' | 'rerouted' | 'queued' | 'lookup_failed' | 'forward_failed';

export interface HubCommandDeliveryDeps {
  /** This node's id (hub actors record it as `sessionNode`). */
  readonly nodeId: string;
  /** Asks hub actors where their stream is. */
  readonly router: ActorRouter;
  /** The hub streams on this node (the hub ingress); absent when this node runs no ingress. */
  readonly sessions?: HubSessions;
  /** Delivery to other nodes (the cluster); absent on a node without one: a stream elsewhere cannot exist. */
  readonly nodes?: NodeDelivery;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Milliseconds before the first retry of a hub lookup or forward that failed (doubling up to 1 s); default 250. */
  readonly lookupRetryMs?: number;
  /**
   * Milliseconds a command or delta keeps being retried while its hub lookup fails (the hub
   * actor's shard moving or failing over) or the stream's node cannot be reached; then it is left
   * to the re-send on the hub's next connect (a command also stops at its expiry); default 10000.
   */
  readonly routeGiveUpMs?: number;
  /** Messages of one hub waiting behind one being routed, at most; beyond, `queued` (default `MAX_WAITING_PER_HUB`). */
  readonly maxWaitingPerHub?: number;
  /**
   * A number in [0, 1) (default Math.random): spreads each retry wait over ±50 % of its nominal
   * delay, so the nodes that lost a peer holding many hubs' streams do not retry in lock-step.
   */
  readonly random?: () => number;
}

/** `hops`: node-to-node sends so far, this one included (absent from senders that predate it: 1). */
interface HubCommandPayload {
  readonly homeId: string;
  readonly hubId: string;
  readonly command: CommandDelivery;
  readonly hops?: number;
}

interface HubDesiredPayload {
  readonly homeId: string;
  readonly hubId: string;
  readonly desired: DesiredDelivery;
  readonly hops?: number;
}

/** One message down a hub's stream: a command or a desired delta (they share one order per hub). */
type Down = { readonly command: CommandDelivery } | { readonly desired: DesiredDelivery };

/**
 * The hub side of the `hub.command` and `hub.desired` effects. A command whose hub has no stream
 * anywhere stays queued in its device actor, which sends it again when the hub reconnects (hello),
 * as it sends its desired delta again then; so every path here may give up without losing
 * either, and every give-up is counted and logged. Commands and deltas of one hub keep their order
 * on each node.
 *
 * A stream that moves does not strand what is on its way to it: a lookup that fails (the hub
 * actor's shard is being handed off or failed over) or a forward the stream's node cannot take
 * (it died; the hub reconnects elsewhere) is retried with a fresh lookup until the hub actor names
 * a stream that takes it, for up to `routeGiveUpMs`; a node that receives a command for a hub
 * whose stream it no longer holds asks the hub actor again and sends it on (`MAX_HUB_HOPS`). What
 * reaches a stream twice that way, or by the device's re-send on the hub's hello, is written
 * once: each stream remembers the command ids it wrote (hub-outbound.ts).
 */
export class HubCommandDelivery {
  private readonly log: Logger;
  private readonly counted: Record<HubCommandOutcome, { inc(): void }>;
  private readonly countedDesired: Record<HubCommandOutcome, { inc(): void }>;
  private readonly lookupRetryMs: number;
  private readonly routeGiveUpMs: number;
  /** Per hub (actor id): the command still being routed elsewhere; later ones wait behind it, so one hub's commands keep their order. */
  private readonly routing = new Map<string, Promise<void>>();
  /** Per hub (actor id): messages in its routing chain (being routed or waiting), while there are any. */
  private readonly chained = new Map<string, number>();
  private readonly maxWaitingPerHub: number;
  private readonly random: () => number;
  /**
   * Per hub (actor id): since when (epoch ms) its messages fail to be routed (lookup or forward).
   * The retries of one hub share `routeGiveUpMs` from then: a hub whose node stays gone does not
   * hold each later message that long (they would pile up behind one another); each gets one try.
   */
  private readonly failing = new Map<string, number>();

  constructor(private readonly deps: HubCommandDeliveryDeps) {
    this.log = deps.logger.child({ component: 'hub-commands' });
    this.lookupRetryMs = deps.lookupRetryMs ?? 250;
    this.routeGiveUpMs = deps.routeGiveUpMs ?? 10_000;
    this.maxWaitingPerHub = deps.maxWaitingPerHub ?? MAX_WAITING_PER_HUB;
    this.random = deps.random ?? Math.random;
    const counter = counterOf(
      deps.registry,
      'iot_hub_commands_routed_total',
      'Hub commands by what became of them: local, forwarded (to the node holding the stream), rerouted (sent on by a node that no longer held the stream), queued (no stream, or too many of its hub waiting: re-sent on reconnect), lookup_failed and forward_failed (after retries: re-sent on reconnect); a command the stream already carried is not counted (iot_hub_down_skipped_total)',
      ['outcome'],
    );
    const desired = counterOf(
      deps.registry,
      'iot_hub_desired_routed_total',
      'Desired deltas by what became of them: local, forwarded (to the node holding the stream), rerouted (sent on by a node that no longer held the stream), queued (no stream, or too many of its hub waiting: re-sent on reconnect), lookup_failed and forward_failed (after retries: re-sent on reconnect); a delta older than one the stream carried is not counted (iot_hub_down_skipped_total)',
      ['outcome'],
    );
    const outcomes = (c: typeof counter): Record<HubCommandOutcome, { inc(): void }> => ({
      local: c.labels('local'),
      forwarded: c.labels('forwarded'),
      rerouted: c.labels('rerouted'),
      queued: c.labels('queued'),
      lookup_failed: c.labels('lookup_failed'),
      forward_failed: c.labels('forward_failed'),
    });
    this.counted = outcomes(counter);
    this.countedDesired = outcomes(desired);
    deps.nodes?.onDelivery(HUB_COMMAND_CHANNEL, (payload, from) => this.received(payload, from));
    deps.nodes?.onDelivery(HUB_DESIRED_CHANNEL, (payload, from) => this.receivedDesired(payload, from));
    deps.nodes?.onDelivery(HUB_SESSION_CHANNEL, (payload, from) => this.endReceived(payload, from));
  }

  /**
   * Ends the stream session the hub actor names, here or on its node (at most once, no reply: a
   * session that already ended, or a node that is gone, has nothing left to end).
   */
  endSession(end: HubSessionEnd): void {
    const { homeId, hubId, nodeId, sessionId, reason, at } = end;
    if (nodeId === this.deps.nodeId) {
      this.deps.sessions?.endSession(homeId, hubId, sessionId, reason, at);
      return;
    }
    const nodes = this.deps.nodes;
    if (!nodes) return; // no cluster: no other node can hold a stream
    const payload: HubSessionEnd = { homeId, hubId, nodeId, sessionId, reason, ...(at === undefined ? {} : { at }) };
    nodes
      .deliverTo(nodeId, HUB_SESSION_CHANNEL, payload)
      .then((sent) => {
        if (!sent.ok) this.log.warn({ homeId, hubId, node: nodeId, reason, code: sent.error.code }, 'hub session end not delivered');
      })
      .catch((err: unknown) => this.log.error({ err, homeId, hubId }, 'hub session end failed'));
  }

  /** A session end another node sent here. */
  private endReceived(payload: unknown, from: string): boolean {
    if (!isHubSessionEnd(payload) || payload.nodeId !== this.deps.nodeId) {
      this.log.warn({ from }, 'malformed hub session end from a peer: dropped');
      return false;
    }
    return this.deps.sessions?.endSession(payload.homeId, payload.hubId, payload.sessionId, payload.reason, payload.at) ?? false;
  }

  /** Sends `command` down the hub's stream wherever it is held; never throws, never waits for the hub. */
  send(homeId: string, hubId: string, command: CommandDelivery): void {
    this.route(homeId, hubId, { command });
  }

  /** Sends a device's desired delta down the hub's stream wherever it is held; never throws, never waits for the hub. */
  sendDesired(homeId: string, hubId: string, desired: DesiredDelivery): void {
    this.route(homeId, hubId, { desired });
  }

  /**
   * Writes `down` to the hub's stream here when nothing of the hub is being routed, else routes it
   * behind what is. `hops`: node-to-node sends it took to get here (0: from this node's own
   * actors). False when it was left to the device at once (no stream here and no cluster).
   */
  private route(homeId: string, hubId: string, down: Down, hops = 0): boolean {
    const counted = this.countedOf(down);
    const key = hubActorId(homeId, hubId);
    const earlier = this.routing.get(key);
    if (!earlier) {
      const written = this.writeHere(homeId, hubId, down);
      if (written) {
        if (written === true) counted.local.inc();
        return true;
      }
    }
    const nodes = this.deps.nodes;
    // Without a cluster there is no other node: the hub has no stream anywhere.
    if (!nodes) {
      counted.queued.inc();
      return false;
    }
    // The one being routed and the ones waiting behind it: a hub whose node stays gone (and that
    // does not reconnect) holds at most this many; the rest are left to its next connect.
    const inChain = this.chained.get(key) ?? 0;
    if (inChain > this.maxWaitingPerHub) {
      counted.queued.inc();
      if (this.log.isLevelEnabled('debug'))
        this.log.debug({ homeId, hubId, waiting: inChain - 1 }, 'hub message not routed: too many of its hub waiting');
      return true;
    }
    this.chained.set(key, inChain + 1);
    const routed = (earlier ?? Promise.resolve())
      .then(() => this.sendElsewhere(nodes, homeId, hubId, down, hops))
      .catch((err: unknown) => this.log.error({ err, homeId, hubId }, 'hub message routing failed'))
      .finally(() => {
        const n = (this.chained.get(key) ?? 1) - 1;
        if (n > 0) this.chained.set(key, n);
        else this.chained.delete(key);
      });
    this.routing.set(key, routed);
    void routed.then(() => {
      if (this.routing.get(key) === routed) this.routing.delete(key);
    });
    return true;
  }

  private countedOf(down: Down): Record<HubCommandOutcome, { inc(): void }> {
    return 'command' in down ? this.counted : this.countedDesired;
  }

  /**
   * Follows the hub's stream: asks the hub actor where it is and sends `down` there, asking again
   * after a failed lookup or forward (the hub actor learns the new stream as the hub reconnects)
   * until `routeGiveUpMs` or the command's expiry.
   */
  private async sendElsewhere(nodes: NodeDelivery, homeId: string, hubId: string, down: Down, hops: number): Promise<void> {
    const counted = this.countedOf(down);
    const fields =
      'command' in down
        ? { homeId, hubId, commandId: down.command.commandId }
        : { homeId, hubId, deviceId: down.desired.deviceId, version: down.desired.version };
    const what = 'command' in down ? 'command' : 'desired delta';
    const key = hubActorId(homeId, hubId);
    const since = this.failing.get(key) ?? Date.now();
    const deadline = Math.min(since + this.routeGiveUpMs, 'command' in down ? down.command.expiresAtMs : Number.POSITIVE_INFINITY);
    /** `undefined`: the stream here already carried it (counted as skipped by the stream, not here). */
    const done = (outcome: HubCommandOutcome | undefined): void => {
      this.failing.delete(key);
      if (outcome !== undefined) counted[outcome].inc();
    };
    const wroteHere = (): HubCommandOutcome | undefined | false => {
      const written = this.writeHere(homeId, hubId, down);
      return written === true ? 'local' : written === 'skipped' ? undefined : false;
    };
    let delay = this.lookupRetryMs;
    for (;;) {
      // Behind an earlier message of this hub (or a retry) the stream may have come here meanwhile.
      const here = wroteHere();
      if (here !== false) return done(here);
      if (hops >= MAX_HUB_HOPS) {
        this.log.warn({ ...fields, hops }, `${what} for a hub stream not found after ${hops} hops: sent again when the hub reconnects`);
        return done('queued');
      }
      const where = await this.locate(homeId, hubId);
      let failed: { outcome: 'lookup_failed' | 'forward_failed'; code: string; node?: string };
      if (where.ok) {
        const node = where.node;
        // No stream anywhere: the device re-sends it when the hub reconnects.
        if (node === undefined) return done('queued');
        // The hub actor names this node: the stream opened here since the first look, or it ended
        // here and the hub actor is yet to hear (the hub's next hello has the device send it again).
        if (node === this.deps.nodeId) {
          const mine = wroteHere();
          return done(mine === false ? 'queued' : mine);
        }
        const sent =
          'command' in down
            ? await nodes.deliverTo(node, HUB_COMMAND_CHANNEL, {
                homeId,
                hubId,
                command: down.command,
                hops: hops + 1,
              } satisfies HubCommandPayload)
            : await nodes.deliverTo(node, HUB_DESIRED_CHANNEL, {
                homeId,
                hubId,
                desired: down.desired,
                hops: hops + 1,
              } satisfies HubDesiredPayload);
        if (sent.ok) return done(hops === 0 ? 'forwarded' : 'rerouted');
        failed = { outcome: 'forward_failed', code: sent.error.code, node };
      } else failed = { outcome: 'lookup_failed', code: where.code };
      if (!this.failing.has(key)) {
        this.failing.set(key, since);
        // One number per hub that failed and was not routed since; bounded all the same.
        if (this.failing.size > MAX_FAILING_HUBS) this.failing.delete(this.failing.keys().next().value!);
      }
      // A node shutting down routes nothing more: what it held is re-sent on the hub's next connect.
      if (Date.now() + delay > deadline || failed.code === 'stopping') {
        counted[failed.outcome].inc();
        const why = failed.outcome === 'lookup_failed' ? 'hub lookup failed' : 'not forwarded to the node holding the hub stream';
        this.log.warn(
          { ...fields, node: failed.node, code: failed.code },
          `${what}: ${why} until giving up: sent again when the hub reconnects`,
        );
        return;
      }
      // ±50 %: the owners that lost the node holding many hubs' streams spread their retries.
      const wait = Math.round(delay * (0.5 + this.random()));
      if (this.log.isLevelEnabled('debug')) this.log.debug({ ...fields, ...failed, delayMs: wait }, `${what} routing retried`);
      // Unref'd: a retry never keeps a stopping process alive.
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
      delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    }
  }

  /** The node holding the hub's stream (undefined: none), by one ask of the hub actor. */
  private async locate(homeId: string, hubId: string): Promise<{ ok: true; node: string | undefined } | { ok: false; code: string }> {
    const hub = await askActor(this.deps.router, hubActorId(homeId, hubId), { type: 'hub.get' });
    if (hub.ok) return { ok: true, node: hub.value.sessionNode };
    // The hub actor answered with a domain error (a hub it does not know): no stream anywhere.
    if (!isRuntimeError(hub.error)) return { ok: true, node: undefined };
    return { ok: false, code: hub.error.code };
  }

  /**
   * A command another node sent here: the hub actor named this node as the stream's. Written to
   * the stream here, or, when the stream left (the hub reconnected elsewhere), sent on to where
   * the hub actor now says it is. False: malformed.
   */
  private received(payload: unknown, from: string): boolean {
    if (!isHubCommandPayload(payload)) {
      this.log.warn({ from }, 'malformed hub command from a peer: dropped');
      return false;
    }
    return this.route(payload.homeId, payload.hubId, { command: payload.command }, payload.hops ?? 1);
  }

  /** A desired delta another node sent here, as `received`. */
  private receivedDesired(payload: unknown, from: string): boolean {
    if (!isHubDesiredPayload(payload)) {
      this.log.warn({ from }, 'malformed desired delta from a peer: dropped');
      return false;
    }
    return this.route(payload.homeId, payload.hubId, { desired: payload.desired }, payload.hops ?? 1);
  }

  /** True: written to the hub's stream here; `'skipped'`: the stream here already carried it; false: no stream here takes it. */
  private writeHere(homeId: string, hubId: string, down: Down): HubWrite {
    const session = this.deps.sessions?.sessionOf(homeId, hubId);
    if (!session) return false;
    if (tracingOn) return this.writeTraced(session, homeId, hubId, down);
    return 'command' in down ? session.sendCommand(down.command) : session.sendDesired(down.desired);
  }

  /** `writeHere` with a `hub send` span when it continues a trace (the step that sent the command, here or on the node that forwarded it). */
  private writeTraced(session: HubSessionWrites, homeId: string, hubId: string, down: Down): HubWrite {
    const command = 'command' in down;
    const span = startChildOfActive('hub send', SpanKind.PRODUCER, {
      'iot.home.id': homeId,
      'iot.hub.id': hubId,
      'iot.hub.message': command ? 'command' : 'desired',
      'iot.device.id': command ? down.command.deviceId : down.desired.deviceId,
      ...(command ? { 'iot.command.id': down.command.commandId } : {}),
    });
    const written = command ? session.sendCommand(down.command) : session.sendDesired(down.desired);
    if (span) {
      span.setAttribute('iot.hub.written', written === true);
      if (written === 'skipped') span.setAttribute('iot.hub.skipped', true);
      endSpan(span, written ? undefined : 'the stream could not take it');
    }
    return written;
  }
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function isHubSessionEnd(x: unknown): x is HubSessionEnd {
  return (
    isRecord(x) &&
    typeof x.homeId === 'string' &&
    typeof x.hubId === 'string' &&
    typeof x.nodeId === 'string' &&
    (x.sessionId === undefined || typeof x.sessionId === 'string') &&
    (x.reason === 'superseded' || x.reason === 'removed' || x.reason === 'secret_retired') &&
    (x.at === undefined || (typeof x.at === 'number' && Number.isFinite(x.at)))
  );
}

const isValueMap = (x: unknown): x is Record<string, number | boolean | string> =>
  isRecord(x) &&
  Object.values(x).every((v) => (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean' || typeof v === 'string');

/** A hop count a peer sent: absent, or a whole number of at least 1. */
const isHops = (x: unknown): boolean => x === undefined || (Number.isSafeInteger(x) && (x as number) >= 1);

/** A peer's desired delta, checked field by field before it reaches a hub's stream. */
function isHubDesiredPayload(x: unknown): x is HubDesiredPayload {
  if (!isRecord(x) || typeof x.homeId !== 'string' || typeof x.hubId !== 'string' || !isRecord(x.desired) || !isHops(x.hops)) return false;
  const d = x.desired;
  return typeof d.deviceId === 'string' && Number.isSafeInteger(d.version) && (d.version as number) >= 0 && isValueMap(d.delta);
}

/** What a peer sent is checked field by field before it reaches a hub's stream. */
function isHubCommandPayload(x: unknown): x is HubCommandPayload {
  if (!isRecord(x) || typeof x.homeId !== 'string' || typeof x.hubId !== 'string' || !isRecord(x.command) || !isHops(x.hops)) return false;
  const c = x.command;
  return (
    typeof c.commandId === 'string' &&
    typeof c.deviceId === 'string' &&
    typeof c.name === 'string' &&
    typeof c.expiresAtMs === 'number' &&
    Number.isFinite(c.expiresAtMs) &&
    isValueMap(c.params)
  );
}
