/** One hub's `Connect` stream: hello and welcome, the message loop, commands down, and the session lifecycle. */
import { constants as http2 } from 'node:http2';
import { randomUUID } from 'node:crypto';
import { deviceActorId, HOME_ID, hubActorId, type HubActorId } from '../../actors/actor-id.ts';
import { COMMAND_LIMITS, type CommandResult } from '../../actors/device-state.ts';
import { deviceOfCommand, type CommandDelivery, type DesiredDelivery } from '../../actors/types.ts';
import { checkResult } from '../../actors/device-commands.ts';
import { VALUE_LIMITS } from '../../actors/validation.ts';
import type { ActorRouter } from '../../cluster/actor-router.ts';
import type { Logger } from '../../runtime/logger.ts';
import { askActor, isRuntimeError } from '../ask-actor.ts';
import { hubCredentialIdOf } from '../../actors/hub.ts';
import type { CredentialStore, HubCredential } from '../auth/credential-store.ts';
import { grpcStatusName, grpcStatusNameOf, type ErrorCode } from '../error-codes.ts';
import type { RetryPolicy } from './device-lanes.ts';
import { DurableCursor } from './durable-cursor.ts';
import { bodyOf, type DecodedCommandResult, type DecodedHello, type DecodedHubMessage } from './hub-codec.ts';
import type { HubMetrics } from './hub-metrics.ts';
import { HubOutbound, type OverflowReason } from './hub-outbound.ts';
import { endCall, errorMessage, fromWireAttributes, helloDevices, resetCall, type CloudMessage, type HubCall } from './hub-wire.ts';
import { ReportIntake } from './report-intake.ts';

/** `awaiting-hello` → `open` → `closing` (status sent or being sent) → `closed` (the call is over). */
export type SessionState = 'awaiting-hello' | 'open' | 'closing' | 'closed';

/** What a session needs from the ingress that holds it. */
export interface SessionHost {
  readonly router: ActorRouter;
  /** Looked up again right before the hello reaches the hub actor: the secret may have been retired since the stream opened. */
  readonly credentials: Pick<CredentialStore, 'findHub'>;
  readonly nodeId: string;
  readonly window: number;
  readonly metrics: HubMetrics;
  readonly clock: () => number;
  readonly retry: RetryPolicy;
  /** Milliseconds between two writes of a hub's durable cursor (durable-cursor.ts). */
  readonly durableIntervalMs: number;
  /** Milliseconds a stream may stay open without its hello; then it ends with DEADLINE_EXCEEDED. */
  readonly helloTimeoutMs: number;
  /**
   * Acks and errors that may wait for a hub (hub-outbound.ts); past it the hub sends without
   * reading and its stream is reset with RESOURCE_EXHAUSTED. Commands and desired deltas may wait
   * up to this plus (COMMAND_LIMITS.history + 1) per device of the hello.
   */
  readonly outboundQueue: number;
  /** Milliseconds messages may wait without the stream draining any; then it is reset with RESOURCE_EXHAUSTED. */
  readonly outboundStallMs: number;
  /** Milliseconds a status waits behind queued messages before the stream is reset instead. */
  readonly statusGraceMs: number;
  /** Makes `session` its hub's current session here; the previous one is superseded. */
  claim(session: HubSession): void;
  /** Drops the registration if `session` is still its hub's current session here. */
  release(session: HubSession): void;
  /** The call is over. */
  forget(session: HubSession): void;
}

export class HubSession {
  /** `hub:{homeId}:{hubId}`: the hub actor, and the key of the session registry. */
  readonly hubActor: HubActorId;
  /** Unique per stream: the hub actor records it, and ends only this session by it. */
  readonly sessionId: string = randomUUID();
  private state: SessionState = 'awaiting-hello';
  private devices: ReadonlySet<string> = new Set();
  private intake: ReportIntake | undefined;
  private durable: DurableCursor | undefined;
  /**
   * Everything down the stream after the welcome, from the hello on (commands and desired deltas
   * that arrive before the welcome wait in it); undefined until the hello.
   */
  private outbound: HubOutbound | undefined;
  /** gRPC status name the stream ends with; CANCELLED unless this side ends it. */
  private endStatus = 'CANCELLED';
  private halfClosed = false;
  /**
   * The hello went to the hub actor, which may have made this its session: the stream's end then
   * tells it (`hub.disconnect` naming this session), whether or not this is still the current one here.
   */
  private helloAsked = false;
  /** Ends the stream when no hello came in time; then, once ending, resets a stream whose status cannot get through. */
  private timer: NodeJS.Timeout | undefined;
  /** Ends the stream when its secret stops (`expiresAt`, epoch ms): a secret rotated out with a grace period. */
  private expiry: { readonly at: number; readonly timer: NodeJS.Timeout } | undefined;
  private readonly log: Logger;

  /**
   * `digest`: of the secret the stream authenticated with. The session keeps it (never the
   * secret) to look the secret up again before its hello, and names it to the hub actor by its
   * credential id, so that a rotation can end the stream of a retired secret.
   */
  constructor(
    private readonly call: HubCall,
    readonly credential: HubCredential,
    private readonly digest: string,
    private readonly host: SessionHost,
    logger: Logger,
  ) {
    this.hubActor = hubActorId(credential.homeId, credential.hubId);
    this.log = logger.child({ home: credential.homeId, hub: credential.hubId });
    call.on('data', (m: DecodedHubMessage) => this.onMessage(m));
    call.on('end', () => this.onHalfClose());
    // grpc-js emits `cancelled` and `close` after any end, ours included; finish() is idempotent.
    call.on('cancelled', () => this.finish());
    call.on('close', () => this.finish());
    call.on('error', (err: { code?: unknown }) => this.onStreamError(err));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'awaiting-hello' && this.outbound === undefined)
        this.fail('timeout', `no hello within ${host.helloTimeoutMs} ms of opening the stream`);
    }, host.helloTimeoutMs);
    if (credential.expiresAt !== undefined) this.expireAt(credential.expiresAt);
  }

  /**
   * Ends the stream with UNAUTHENTICATED at `at` (epoch ms; at once when past): the secret it
   * authenticated with stops then. An earlier end already set stands.
   */
  expireAt(at: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.expiry !== undefined && this.expiry.at <= at) return;
    clearTimeout(this.expiry?.timer);
    const retired = (): void => this.fail('unauthenticated', 'the hub secret of this stream was rotated out');
    const delay = at - this.host.clock();
    if (delay <= 0) {
      this.expiry = undefined;
      retired();
      return;
    }
    // setTimeout holds at most 2^31-1 ms (24.8 days); a longer grace period re-arms on the way.
    const timer = setTimeout(
      () => {
        this.expiry = undefined;
        this.expireAt(at);
      },
      Math.min(delay, 2 ** 31 - 1),
    );
    timer.unref();
    this.expiry = { at, timer };
  }

  get lifecycle(): SessionState {
    return this.state;
  }

  /**
   * Writes a command to the hub, in order behind what waits for it (before the welcome: the
   * hello makes its devices send theirs while the welcome is yet to go out), at most once per
   * command id on this stream (hub-outbound.ts: `'skipped'` when it already carried it); false
   * when this stream cannot take it.
   */
  sendCommand(command: CommandDelivery): boolean | 'skipped' {
    if (this.state !== 'open' && this.state !== 'awaiting-hello') return false;
    return this.outbound?.command(command) ?? false;
  }

  /** Writes a device's desired delta to the hub, as `sendCommand`; false when this stream cannot take it. */
  sendDesired(desired: DesiredDelivery): boolean | 'skipped' {
    if (this.state !== 'open' && this.state !== 'awaiting-hello') return false;
    return this.outbound?.desired(desired) ?? false;
  }

  /** Ends the stream with the status of `code`; later messages from the hub are ignored. */
  fail(code: ErrorCode, details: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.endStatus = grpcStatusNameOf(code);
    // This node ends the stream on purpose (superseded, stopping, bad input): its acks stand. Told
    // before the disconnect, so the hub actor still takes it from this session.
    this.durable?.finish(true);
    this.beginClosing(`${this.endStatus}: ${details}`);
    endCall(this.call, code, details);
    // The status goes out after the messages queued before it; a hub that does not read would keep
    // the stream (and its queue) forever, so it is reset after a grace period.
    if (this.call.writableNeedDrain) {
      const rst = code === 'resource_exhausted' ? http2.NGHTTP2_ENHANCE_YOUR_CALM : http2.NGHTTP2_CANCEL;
      this.timer = setTimeout(() => resetCall(this.call, rst), this.host.statusGraceMs);
    }
  }

  /** The one place the lifecycle changes. */
  private setState(next: SessionState, reason: string): void {
    if (this.state === next) return;
    this.log.info({ from: this.state, to: next, reason }, 'hub session');
    this.state = next;
  }

  private onMessage(m: DecodedHubMessage): void {
    try {
      if (m.malformed !== undefined) {
        // Nothing in it can be trusted, not even which report it was: the hub must reconnect.
        if (this.state === 'awaiting-hello' || this.state === 'open') this.fail('invalid_argument', `not a HubMessage: ${m.malformed}`);
        return;
      }
      if (this.state === 'awaiting-hello') this.hello(m).catch((err: unknown) => this.crashed(err));
      else if (this.state === 'open') this.dispatch(m);
    } catch (err) {
      this.crashed(err);
    }
  }

  /** A bug, not the hub's fault: end this stream only (an exception must not reach grpc-js). */
  private crashed(err: unknown): void {
    this.log.error({ err }, 'hub session failed');
    this.fail('internal', 'internal error');
  }

  private dispatch(m: DecodedHubMessage): void {
    switch (bodyOf(m)) {
      case 'reports':
        return this.intake!.accept(m.reports!.items);
      case 'command_result':
        return this.commandResult(m.command_result!);
      case 'ping':
        return; // keep-alive
      case 'hello':
        return this.fail('invalid_argument', 'hello may be sent only once per stream');
      default:
        return this.fail('invalid_argument', 'a message must set one of hello, reports, command_result, ping');
    }
  }

  private async hello(m: DecodedHubMessage): Promise<void> {
    const body = bodyOf(m);
    if (body !== 'hello') {
      this.fail('invalid_argument', `the first message must be hello, not ${body ?? 'an empty message'}`);
      return;
    }
    const h: DecodedHello = m.hello!;
    const { homeId, hubId } = this.credential;
    if (!HOME_ID.test(h.home_id) || h.hub_id.length === 0 || h.hub_id.length > VALUE_LIMITS.idLength) {
      this.fail(
        'invalid_argument',
        `hello.home_id must be 1-64 of A-Z a-z 0-9 _ . - and hello.hub_id 1-${VALUE_LIMITS.idLength} characters`,
      );
      return;
    }
    if (h.hub_id !== hubId || h.home_id !== homeId) {
      this.fail(
        'permission_denied',
        `hello names hub ${h.hub_id} of home ${h.home_id}; the credential is for hub ${hubId} of home ${homeId}`,
      );
      return;
    }
    const devices = helloDevices(h);
    if (!devices.ok) {
      this.fail('invalid_argument', devices.message);
      return;
    }
    this.devices = new Set(devices.value.map((d) => d.deviceId));
    // Later messages wait in the stream's buffer until the welcome is out.
    this.call.pause();
    const { outboundQueue, outboundStallMs, metrics } = this.host;
    // A hub that reads is never reset: what its devices can have pending at once always fits.
    const cloud = outboundQueue + this.devices.size * (COMMAND_LIMITS.history + 1);
    this.outbound = new HubOutbound(
      this.call,
      { replies: outboundQueue, cloud, stallMs: outboundStallMs },
      metrics,
      (reason, waiting) => this.overflow(reason, waiting),
      this.host.clock,
    );
    // The secret was checked when the stream opened, up to the hello deadline ago: a rotation
    // without grace, or a removal, since then must not let it in (one lookup per stream).
    if (!(await this.stillAuthenticated())) return;
    this.helloAsked = true;
    const asked = askActor(this.host.router, this.hubActor, {
      type: 'hub.hello',
      devices: devices.value,
      nodeId: this.host.nodeId,
      sessionId: this.sessionId,
      credentialId: hubCredentialIdOf(this.digest),
    });
    // Claimed once the hello is on its way (and before its reply can come back): the stream this
    // supersedes here tells the hub actor its disconnect behind this hello, which it then ignores as
    // stale. Should this hello be refused, that disconnect takes the hub offline, not left on a dead stream.
    this.host.claim(this);
    const r = await asked;
    if (this.state !== 'awaiting-hello') return; // superseded or cancelled meanwhile
    if (r.ok) {
      if (r.value.validUntil !== undefined) this.expireAt(r.value.validUntil);
      if (this.state === 'awaiting-hello') this.open(r.value.lastDurableSeq);
      return;
    }
    const { code, message } = r.error;
    if (!isRuntimeError(r.error) && r.error.field === 'credentialId') {
      // A removed hub whose secret authenticated just now was registered again, and its hub actor
      // is yet to be told (removal deletes the secrets first): the hub retries. A secret rotated
      // out no longer speaks for the hub.
      if (code === 'not_found') return this.fail('unavailable', message);
      return this.fail('unauthenticated', message);
    }
    // No answer from the hub actor: the hub may retry (UNAVAILABLE), unless the actor crashed on its hello.
    if (isRuntimeError(r.error)) this.fail(code === 'actor_crashed' ? 'actor_crashed' : 'unavailable', `hub actor: ${message}`);
    else this.fail(code, message);
  }

  /** Looks the stream's secret up again; false (the stream ending) when it no longer authenticates or cannot be checked. */
  private async stillAuthenticated(): Promise<boolean> {
    let now: HubCredential | undefined;
    try {
      now = await this.host.credentials.findHub(this.digest);
    } catch (err) {
      this.log.error({ err }, 'credential lookup failed');
      this.fail('unavailable', 'credentials cannot be checked right now');
      return false;
    }
    if (this.state !== 'awaiting-hello') return false; // cancelled meanwhile
    if (now === undefined || now.homeId !== this.credential.homeId || now.hubId !== this.credential.hubId) {
      this.fail('unauthenticated', 'the hub secret of this stream is no longer valid');
      return false;
    }
    if (now.expiresAt !== undefined) this.expireAt(now.expiresAt);
    return this.state === 'awaiting-hello';
  }

  private open(lastDurableSeq: number): void {
    const { homeId } = this.credential;
    const { router, metrics, clock, retry, window } = this.host;
    // The cursor paces itself on the monotonic clock (a wall clock stepping back must not stall it).
    const durable = new DurableCursor(router, this.hubActor, this.host.nodeId, this.log, {
      intervalMs: this.host.durableIntervalMs,
      // The end of this session (superseded on another node, the hub removed) was lost on its way:
      // the hub must reconnect, and is then welcomed, or told why not.
      refused: (message) => this.fail('superseded', `this stream no longer holds the hub session: ${message}`),
    });
    this.durable = durable;
    this.intake = new ReportIntake({
      homeId,
      hubId: this.credential.hubId,
      devices: this.devices,
      lastDurableSeq,
      window,
      router,
      metrics,
      clock,
      retry,
      log: this.log,
      send: (msg) => this.write(msg),
      fail: (code, details) => this.fail(code, details),
      acked: (upToSeq, inFlight) => {
        durable.advance(upToSeq);
        if (this.halfClosed && inFlight === 0) this.endOk();
      },
    });
    // The welcome first, then what waited for it.
    this.outbound!.open({ welcome: { node_id: this.host.nodeId, window, last_durable_seq: String(lastDurableSeq) } });
    this.setState('open', `welcome, last_durable_seq ${lastDurableSeq}`);
    this.call.resume();
  }

  private commandResult(cr: DecodedCommandResult): void {
    const deviceId = deviceOfCommand(cr.command_id);
    if (deviceId === undefined || !this.devices.has(deviceId)) {
      this.write(errorMessage('permission_denied', `command ${JSON.stringify(cr.command_id)} is not for a device of this hub`));
      return;
    }
    // A bad result is refused on its own (with the field it is about); the stream keeps serving.
    const result = fromWireAttributes(cr.result, 'result');
    const bad = result.ok ? checkResult(result.value)?.message : result.message;
    if (!result.ok || bad !== undefined) {
      this.write(errorMessage('invalid_argument', `command_result for ${JSON.stringify(cr.command_id)} refused: ${bad}`));
      return;
    }
    const msg: CommandResult = {
      type: 'command.result',
      commandId: cr.command_id,
      ok: cr.ok,
      ...(cr.error === '' ? {} : { error: cr.error }),
      ...(Object.keys(result.value).length === 0 ? {} : { result: result.value }),
    };
    // Answered: a copy of it that reaches this stream later is still skipped, for a while (hub-outbound.ts).
    this.outbound?.answered(cr.command_id);
    const sent = this.host.router.tell(deviceActorId(this.credential.homeId, deviceId), msg);
    if (!sent.ok)
      this.write(errorMessage(sent.error.code, `command_result for ${cr.command_id} not taken (${sent.error.message}); send it again`));
  }

  /** An ack or an in-stream error, behind what waits; false when the stream takes nothing more. */
  private write(msg: CloudMessage): boolean {
    if (this.state !== 'open' || this.outbound === undefined) return false;
    return this.outbound.reply(msg);
  }

  /**
   * The hub does not read (hub-outbound.ts judged it: `waiting` messages): a status would wait
   * behind what grpc-js holds, so the stream is reset at once (RESOURCE_EXHAUSTED).
   */
  private overflow(reason: OverflowReason, waiting: number): void {
    if (this.state === 'closed') return;
    const details =
      reason === 'stalled'
        ? `the hub read nothing for ${this.host.outboundStallMs} ms with ${waiting} messages waiting`
        : reason === 'replies'
          ? `${waiting} messages waiting: the hub sends without reading its stream`
          : `${waiting} messages waiting: more commands and desired deltas than its devices can have pending`;
    this.host.metrics.outboundOverflows.inc();
    this.log.warn({ reason, waiting, limit: this.host.outboundQueue }, 'hub does not read its stream: reset');
    this.endStatus = 'RESOURCE_EXHAUSTED';
    // Ending already (flushing before an orderly end): the closing work is done.
    if (this.state !== 'closing') {
      this.durable?.finish(true);
      this.beginClosing(`RESOURCE_EXHAUSTED: ${details}`);
    }
    if (!resetCall(this.call, http2.NGHTTP2_ENHANCE_YOUR_CALM)) endCall(this.call, 'resource_exhausted', details);
  }

  /** The hub half-closed: finish what it sent (acks included), then end with OK. */
  private onHalfClose(): void {
    if (this.state === 'awaiting-hello') this.fail('invalid_argument', 'the stream ended before hello');
    if (this.state !== 'open') return;
    this.halfClosed = true;
    if (this.intake!.inFlight === 0) this.endOk();
  }

  private endOk(): void {
    if (this.state !== 'open') return;
    this.endStatus = 'OK';
    // An orderly end writes the durable cursor's latest value (before the disconnect: the hub actor
    // takes it only from its current session). grpc-js reports a hub's cancel as a half-close
    // first, so that is written too; only a stream that fails leaves it behind.
    this.durable?.finish(true);
    this.beginClosing('the hub closed its stream', 'flush');
  }

  private onStreamError(err: { code?: unknown }): void {
    if (this.state === 'closing' || this.state === 'closed') return; // our own end, or after it
    this.endStatus = typeof err.code === 'number' ? grpcStatusName(err.code) : 'UNKNOWN';
    this.log.warn({ err }, 'hub stream failed');
    this.beginClosing('stream error');
    this.durable?.finish(false);
  }

  /**
   * Stops all work of the stream and, once the hub actor was asked to take it, tells the hub actor
   * it ended. `flush`: an orderly end, after what waits for the hub (its last ack); otherwise
   * that is dropped (commands and deltas are sent again on the hub's next connect).
   */
  private beginClosing(reason: string, outbound: 'drop' | 'flush' = 'drop'): void {
    this.setState('closing', reason);
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.expiry?.timer);
    this.expiry = undefined;
    this.intake?.stop();
    if (outbound === 'flush' && this.outbound !== undefined) this.outbound.end(() => this.call.end());
    else if (outbound === 'flush') this.call.end();
    else this.outbound?.stop();
    this.host.release(this);
    // Also when a newer stream here superseded this one: the hub actor may not have taken that one's
    // hello (refused, timed out), and only this session's disconnect clears the session it holds.
    // It ignores a disconnect for a session it no longer holds.
    if (!this.helloAsked) return;
    const msg = { type: 'hub.disconnect', nodeId: this.host.nodeId, sessionId: this.sessionId };
    let sent = this.host.router.tell(this.hubActor, msg);
    // A lost disconnect would leave the hub online with commands sent to a dead stream.
    if (!sent.ok && sent.error.code === 'overloaded') sent = this.host.router.deliver(this.hubActor, msg);
    if (!sent.ok) this.log.warn({ code: sent.error.code }, 'hub.disconnect not delivered');
  }

  private finish(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') this.beginClosing('stream cancelled');
    clearTimeout(this.timer);
    this.outbound?.stop();
    // A broken stream leaves the durable cursor where it is, as a crash would: the hub re-sends
    // the reports acked since, and their devices ack them without applying them again.
    this.durable?.finish(false);
    this.setState('closed', this.endStatus);
    this.host.metrics.streamEnded(this.endStatus);
    this.host.forget(this);
  }
}
