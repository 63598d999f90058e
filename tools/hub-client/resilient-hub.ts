/**
 * The one resilient load hub: it keeps at most `window` reports unacked (the credit window the
 * welcome grants), paces new reports to a rate or keeps the window full, and whenever its stream
 * ends or stalls it reconnects (to wherever `address()` says then), says hello again and re-sends
 * every report after its highest ack. Each report's latency runs from its first send to the first
 * ack covering it. What to send is a policy (`report`), and so is what to record and how to answer
 * commands (the `on…` hooks); tests, benchmarks and the hub simulator each plug in their own.
 */
import type { ChannelCredentials, StatusObject } from '@grpc/grpc-js';
import type { WireReport } from '../../edge-api/hub-ingress/hub-wire.ts';
import {
  HubClient,
  wireReport,
  type CloudError,
  type Command,
  type Desired,
  type HelloDevice,
  type HubReport,
  type Received,
  type Welcome,
} from './hub-client.ts';
import { startTicking, stopTicking, type Tickable } from './shared-ticker.ts';
import { UnackedReports } from './unacked-reports.ts';

/** What a hub records and how it answers commands: every hook is optional. */
export interface HubObserver {
  /** The first ack covering report `seq`: `sentAt` its first send, `ackedAt` the ack (performance.now() ms). */
  readonly onReportAcked?: (seq: number, sentAt: number, ackedAt: number) => void;
  /** After every ack that raised the highest ack, once the window it freed is refilled. */
  readonly onAck?: (highestAck: number) => void;
  /** A command received on `streams[stream]`; its result is what the hub answers (default ok). */
  readonly onCommand?: (command: Command, stream: number) => { readonly ok: boolean; readonly error?: string } | void;
  /** A device's desired delta received on `streams[stream]` (the same version may come again: at least once). */
  readonly onDesired?: (desired: Desired, stream: number) => void;
  /** An `error` message: a report the cloud refused. */
  readonly onError?: (error: CloudError) => void;
}

export interface ResilientHubOptions extends HubObserver {
  /** Where to connect; asked again before every stream (`attempt` counts streams from 0). */
  readonly address: (attempt: number) => string;
  readonly secret: string;
  readonly hubId: string;
  readonly homeId: string;
  readonly devices: readonly HelloDevice[];
  readonly firmware?: string;
  /**
   * The report with sequence number `seq`: asked once, when it is first sent; the hub keeps it for
   * re-sends until it is acked. With JS values, or already in wire form (a load generator's hot path).
   */
  readonly report: (seq: number) => HubReport | WireReport;
  /** New reports per second; Infinity (default) keeps the window full, 0 sends none. `pace()` changes it. */
  readonly ratePerSec?: number;
  /** The last seq: reports 1..total and no more (default: no end). */
  readonly total?: number;
  /** Most reports per `reports` message; default 20. */
  readonly batch?: number;
  /** Milliseconds between two sends of paced reports (a hub batching what its radios heard meanwhile); default 20. */
  readonly flushMs?: number;
  /** Milliseconds without a welcome, or without ack progress while reports are unacked, before a stream is dropped; default 10 000. */
  readonly stallMs?: number;
  /** Milliseconds between a stream's end and the next attempt; default 100. */
  readonly reconnectDelayMs?: number;
  /** Share one gRPC channel per address with the other hubs of this process (load generators); default false. */
  readonly sharedChannel?: boolean;
  /** Channel credentials for a node serving TLS (HUB_TLS_*); default plaintext. Not with `sharedChannel`. */
  readonly credentials?: ChannelCredentials;
}

/** One stream of the hub, from connect to its end. */
export interface HubStream {
  readonly address: string;
  /** Highest ack when the stream was opened: it resumed after this seq. */
  readonly resumedAfter: number;
  /** Epoch ms. */
  readonly openedAt: number;
  welcome?: Welcome;
  /** Highest seq sent on this stream (0 = none). */
  sentUpTo: number;
  /** The stream's final status. */
  status?: StatusObject;
  /** Why the hub ended it itself (a stall, or `stop()`). */
  droppedBecause?: string;
}

interface Live {
  readonly client: HubClient;
  readonly stream: HubStream;
  readonly index: number;
  window: number;
  nextSeq: number;
  lastProgress: number;
  /** The last pump stopped at the window: the next ack pumps at once. */
  blocked: boolean;
  /** The hub half-closed the stream (done sending); the node ends it with OK. */
  halfClosed: boolean;
}

/** Errors kept for `describe()` and checks; `errorCount` counts them all. */
const KEPT_ERRORS = 100;
/** Milliseconds `finish()` waits for the node to end a half-closed stream before it cancels it. */
const END_GRACE_MS = 2_000;

export class ResilientHub implements Tickable {
  /** Highest `ack.up_to_seq` received on any stream (or `last_durable_seq` of a welcome). */
  highestAck = 0;
  /** Highest seq produced (sent at least once). */
  produced = 0;
  /** Reports written, re-sends included. */
  reportsSent = 0;
  readonly streams: HubStream[] = [];
  /** The first `error` messages received (all of them are counted in `errorCount`). */
  readonly errors: CloudError[] = [];
  errorCount = 0;

  private readonly batch: number;
  private flushMs: number;
  private readonly stallMs: number;
  /** Reports highestAck + 1 .. produced, for re-sends after a reconnect. */
  private readonly unacked = new UnackedReports();
  private live: Live | undefined;
  private rate: number;
  private paceFrom = 0;
  private paceBase = 0;
  private nextFlush = 0;
  private started = false;
  private finishing = false;
  private stopped = false;
  /** The stream ended for good (done or finished): nothing more to tick once no one waits. */
  private over = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<(now: number) => void>();

  constructor(private readonly opts: ResilientHubOptions) {
    this.batch = opts.batch ?? 20;
    this.flushMs = opts.flushMs ?? 20;
    this.stallMs = opts.stallMs ?? 10_000;
    this.rate = opts.ratePerSec ?? Infinity;
  }

  /** Every report of `total` is acked. */
  get done(): boolean {
    return this.opts.total !== undefined && this.highestAck >= this.opts.total;
  }

  /** Every report produced so far is acked. */
  get caughtUp(): boolean {
    return this.highestAck >= this.produced;
  }

  /** Connects and streams in the background. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.pace(this.rate);
    startTicking(this);
    this.connect();
  }

  /** New reports per second from now on (Infinity: keep the window full; 0: none), sent every `flushMs`. */
  pace(perSec: number, flushMs = this.flushMs): void {
    const now = performance.now();
    this.flushMs = flushMs;
    this.paceBase = this.produced; // a backlog the old pace had not sent yet is dropped
    this.paceFrom = now;
    this.rate = perSec;
    // A random phase: hubs that all sent at the same instant would measure their own bursts.
    this.nextFlush = now + Math.random() * this.flushMs;
  }

  /** Resolves once a stream is welcomed; rejects after `timeoutMs` with what happened so far. */
  welcomed(timeoutMs = 30_000): Promise<Welcome> {
    this.start();
    return this.until(() => this.live?.stream.welcome, timeoutMs, 'no welcome');
  }

  /** Streams until every report of `total` is acked; rejects after `deadlineMs` with what happened so far. */
  async run(deadlineMs: number): Promise<void> {
    if (this.opts.total === undefined) throw new Error('run() needs a total');
    this.start();
    try {
      await this.until(() => this.done || undefined, deadlineMs, `not every report of ${this.opts.total} acked`);
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /** Waits until every report produced so far is acked (or `timeoutMs` passes: then it resolves false). */
  drain(timeoutMs = 10_000): Promise<boolean> {
    return this.until(() => this.caughtUp || undefined, timeoutMs, 'not caught up').then(
      () => true,
      () => false,
    );
  }

  /**
   * Stops producing new reports and waits until every produced report is acked; rejects after
   * `timeoutMs` with what happened so far. Either way the hub then stops, and this resolves or
   * rejects once its stream has ended.
   */
  async finish(timeoutMs: number): Promise<void> {
    this.finishing = true;
    this.start();
    let caughtUp = false;
    try {
      await this.until(() => this.caughtUp || undefined, timeoutMs, 'not caught up');
      caughtUp = true;
    } finally {
      const live = this.live;
      if (live && caughtUp) {
        // Caught up: end the stream as firmware does (half-close; the node answers OK), not by cancelling it.
        this.endIfDone(live);
        await live.client.ended(END_GRACE_MS).catch(() => undefined);
      }
      this.stop();
      if (live) await live.client.ended(END_GRACE_MS).catch(() => undefined);
    }
  }

  /** Drops the current stream and reconnects no more. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    stopTicking(this);
    for (const w of this.waiters) w(Infinity);
    const live = this.live;
    if (live && !live.stream.status) {
      live.stream.droppedBecause ??= 'stopped';
      live.client.close();
    }
  }

  /** The streams so far, for failure messages. */
  describe(): string {
    return `${this.streams.length} streams: ${JSON.stringify(
      this.streams.map((c) => ({
        address: c.address,
        resumedAfter: c.resumedAfter,
        welcome: c.welcome,
        sentUpTo: c.sentUpTo,
        status: c.status && { code: c.status.code, details: c.status.details },
        droppedBecause: c.droppedBecause,
      })),
    )}; produced ${this.produced}, highest ack ${this.highestAck}; ${this.errorCount} errors ${JSON.stringify(this.errors.slice(0, 5))}`;
  }

  /** Called by the shared ticker: sends what the pace allows, drops a stalled stream, checks waits. */
  tick(now: number): void {
    for (const w of this.waiters) w(now);
    if (this.over && this.waiters.size === 0) stopTicking(this);
    const live = this.live;
    if (!live || live.stream.status) return;
    const stalled = Date.now() - live.lastProgress > this.stallMs;
    if (stalled && live.stream.welcome === undefined) return this.drop(live, `no welcome within ${this.stallMs} ms`);
    if (stalled && live.nextSeq - 1 > this.highestAck) return this.drop(live, `no ack progress for ${this.stallMs} ms`);
    if (now < this.nextFlush) return;
    // Paced by the flush schedule, not by when the tick came: every flush sends the same number of
    // reports (one whole batch when flushMs is a batch's worth of time), not one more now and then.
    const at = this.nextFlush;
    this.nextFlush = now - at > this.flushMs ? now + this.flushMs : at + this.flushMs;
    this.pump(at);
  }

  /** The highest seq the pace allows by `now` (before `total` and `finish`). */
  private due(now: number): number {
    if (this.rate === Infinity) return Infinity;
    return this.paceBase + Math.floor(((now - this.paceFrom) / 1000) * this.rate);
  }

  private limit(now: number): number {
    if (this.finishing || this.stopped) return this.produced;
    return Math.max(this.produced, Math.min(this.due(now), this.opts.total ?? Infinity));
  }

  /** Resolves with `check()`'s first defined value, checked on every tick; rejects after `timeoutMs` (or on `stop()`). */
  private until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    const deadline = performance.now() + timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const waiter = (now: number): void => {
        const v = check();
        if (v !== undefined) {
          this.waiters.delete(waiter);
          resolve(v);
        } else if (now > deadline || this.stopped) {
          this.waiters.delete(waiter);
          reject(
            new Error(
              `hub ${this.opts.homeId}/${this.opts.hubId}: ${what} ${this.stopped ? '(stopped)' : `after ${timeoutMs} ms`}; ${this.describe()}`,
            ),
          );
        }
      };
      this.waiters.add(waiter);
      if (this.stopped) waiter(performance.now());
      // A hub whose stream is over ticks no more: waiting ticks it again, so the wait resolves or times out.
      else startTicking(this);
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const address = this.opts.address(this.streams.length);
    const stream: HubStream = { address, resumedAfter: this.highestAck, openedAt: Date.now(), sentUpTo: 0 };
    const index = this.streams.push(stream) - 1;
    const client = new HubClient(address, this.opts.secret, {
      shared: this.opts.sharedChannel ?? false,
      keepMessages: false,
      ...(this.opts.credentials ? { credentials: this.opts.credentials } : {}),
    });
    const live: Live = {
      client,
      stream,
      index,
      window: 0,
      nextSeq: this.highestAck + 1,
      lastProgress: Date.now(),
      blocked: false,
      halfClosed: false,
    };
    this.live = live;
    client.onMessage((m) => this.onMessage(live, m));
    client.onEnd((status) => {
      stream.status = status;
      client.close();
      if (this.live === live) this.live = undefined;
      if (this.stopped || this.done || (this.finishing && this.caughtUp)) {
        this.over = true;
        return;
      }
      // A pause before reconnecting is what real firmware does too; it keeps a dead address from spinning.
      this.reconnectTimer = setTimeout(() => this.connect(), this.opts.reconnectDelayMs ?? 100);
    });
    client.hello(this.opts.hubId, this.opts.homeId, this.opts.devices, this.opts.firmware);
  }

  private drop(live: Live, why: string): void {
    live.stream.droppedBecause = why;
    live.client.close(); // the status (CANCELLED) follows and reconnects
  }

  /** Sends what the window and the pace allow: re-sends first, then new reports. */
  private pump(now: number): void {
    const live = this.live;
    if (!live || live.window === 0 || live.stream.status || this.stopped) return;
    if (live.nextSeq <= this.highestAck) live.nextSeq = this.highestAck + 1;
    // Nothing in flight: the stall clock starts at the next send, not at the last ack before a quiet spell.
    if (live.nextSeq - 1 <= this.highestAck) live.lastProgress = Date.now();
    const limit = this.limit(now);
    const batch = Math.max(1, Math.min(this.batch, live.window));
    live.blocked = false;
    while (live.nextSeq <= limit) {
      const n = Math.min(batch, limit - live.nextSeq + 1);
      if (live.nextSeq - 1 - this.highestAck + n > live.window) {
        live.blocked = true; // wait for acks: a report past the window ends the stream
        return;
      }
      const items: WireReport[] = [];
      // The clock now, not the tick's: the ticker's other hubs may have taken a while to send theirs.
      const sentAt = performance.now();
      for (let seq = live.nextSeq; seq < live.nextSeq + n; seq++) {
        if (seq > this.produced) {
          const r = this.opts.report(seq);
          this.unacked.add('device_id' in r ? r : wireReport(r), sentAt);
          this.produced = seq;
        }
        items.push(this.unacked.get(seq));
      }
      live.client.send({ reports: { items } });
      live.nextSeq += n;
      live.stream.sentUpTo = live.nextSeq - 1;
      this.reportsSent += n;
    }
  }

  /** Half-closes the stream once there is nothing left to send (done, or finishing and caught up); the node ends it with OK. */
  private endIfDone(live: Live): boolean {
    if (!this.caughtUp || !(this.done || this.finishing)) return false;
    if (!live.halfClosed && !live.stream.status) {
      live.halfClosed = true;
      live.client.end();
    }
    return true;
  }

  /** Every report up to `upTo` is acked (an ack, or a welcome's last durable seq); true when that is news. */
  private acked(live: Live, upTo: number): boolean {
    if (upTo <= this.highestAck) return false;
    const now = performance.now();
    const onReportAcked = this.opts.onReportAcked;
    this.unacked.ack(upTo, onReportAcked && ((seq, sentAt) => onReportAcked(seq, sentAt, now)));
    if (upTo > this.produced) {
      // Beyond what this process produced: the cloud has them from an earlier life of the hub; go on after them.
      this.paceBase += upTo - this.produced;
      this.produced = upTo;
    }
    this.highestAck = upTo;
    live.lastProgress = Date.now();
    return true;
  }

  private onMessage(live: Live, m: Received): void {
    if (m.welcome) {
      live.stream.welcome = m.welcome;
      live.window = m.welcome.window;
      live.lastProgress = Date.now();
      const durable = Number(m.welcome.last_durable_seq);
      const raised = this.acked(live, durable);
      if (!this.endIfDone(live)) this.pump(performance.now());
      if (raised) this.opts.onAck?.(durable);
    } else if (m.ack) {
      const ack = Number(m.ack.up_to_seq);
      const raised = this.acked(live, ack);
      if (!this.endIfDone(live) && live.blocked) this.pump(performance.now());
      // After the pump: the hook sees the window refilled, with reports in flight.
      if (raised) this.opts.onAck?.(ack);
    } else if (m.command) {
      const c = m.command;
      const result = this.opts.onCommand?.(c, live.index) ?? { ok: true };
      live.client.commandResult(c.command_id, result.ok, result.error ?? '');
    } else if (m.desired) {
      this.opts.onDesired?.(m.desired, live.index);
    } else if (m.error) {
      this.errorCount++;
      if (this.errors.length < KEPT_ERRORS) this.errors.push(m.error);
      this.opts.onError?.(m.error);
    }
  }
}
