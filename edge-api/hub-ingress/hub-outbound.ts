/**
 * What goes down one hub's stream: a bounded backlog written as fast as the stream drains, and the
 * judgement that a hub does not read (its backlog passes a bound, or the stream makes no progress).
 */
import type { CommandDelivery, DesiredDelivery } from '../../actors/types.ts';
import type { HubMetrics } from './hub-metrics.ts';
import { commandMessage, desiredMessage, type CloudMessage, type HubCall } from './hub-wire.ts';

/** How much may wait for one hub, and for how long without progress. */
export interface OutboundLimits {
  /**
   * Acks and errors (answers to what the hub sent) that may wait: past it the hub sends without
   * reading. Consecutive acks wait as one (they are cumulative).
   */
  readonly replies: number;
  /**
   * Commands and desired deltas that may wait. Deltas wait at most one per device (a newer one
   * replaces the older) and a command once per id, so a bound of devices × (pending commands per
   * device + 1) is never passed by a hub that reads, however much its devices have pending.
   */
  readonly cloud: number;
  /** Milliseconds messages may wait without the stream draining any; then the hub does not read. */
  readonly stallMs: number;
  /**
   * Command ids written to the stream that it remembers (newest kept), so that it never writes one
   * twice; default `cloud`, the most commands its devices can have live at once. An id is also
   * forgotten `EXPIRED_IDS_KEPT_MS` after its command expired (no device sends it again then), or
   * `ANSWERED_IDS_KEPT_MS` after the hub answered it on this stream.
   */
  readonly writtenIds?: number;
}

/**
 * Milliseconds a written command id is remembered past its expiry: an expired command is never
 * sent again by its device, but one already on its way (another node's clock, a peer hop) may
 * still arrive a little later.
 */
export const EXPIRED_IDS_KEPT_MS = 60_000;
/**
 * Milliseconds a written command id is remembered after the hub's result for it came on the
 * stream: its device completes it and sends it no more, but a copy already on its way (a re-send
 * or re-route racing the result, retried for up to 10 s) may still arrive.
 */
export const ANSWERED_IDS_KEPT_MS = 30_000;

/** Least milliseconds between two passes over all written ids forgetting those due (`rememberWritten`). */
const SWEEP_EVERY_MS = 1_000;

/** Why a hub's stream is judged not to be read: a bound passed (`replies`, `cloud`) or no progress (`stalled`). */
export type OverflowReason = 'replies' | 'cloud' | 'stalled';

type Entry =
  { readonly reply: CloudMessage; readonly ack: boolean } | { readonly command: CommandDelivery } | { readonly desired: DesiredDelivery };

/**
 * A hub stream's outbound side. Messages are handed to grpc-js only while its buffer takes them
 * (`write()` returns true); the rest wait here in order and go as the stream emits `drain`, so a
 * hub that reads gets any burst (a thousand devices' deltas and commands after its welcome) at
 * the speed it reads. Held (nothing written) until `open`, so that the welcome goes first.
 * Memory stays bounded: replies by `limits.replies`, commands and deltas by `limits.cloud`, and a
 * stream that drains nothing for `limits.stallMs` while messages wait is judged not read.
 * Any of the three calls `overflow` once and stops the queue; the session resets the stream.
 * A command id goes down one stream at most once, and a device's desired version never goes
 * back: what arrives again (a re-send racing the first send) is skipped and counted.
 */
export class HubOutbound {
  /** Insertion order is send order; a key is never reused. */
  private readonly queue = new Map<number, Entry>();
  private nextKey = 0;
  private replies = 0;
  private cloud = 0;
  /** Key of the newest entry when it is an ack (the next ack replaces it in place). */
  private tailAck: number | undefined;
  /** Waiting deltas by device id, and waiting command ids. */
  private readonly desiredKeys = new Map<string, number>();
  private readonly commandIds = new Set<string>();
  /**
   * Command ids written to the stream, oldest first, with when to forget them (epoch ms): a command is
   * written at most once per stream, however often it is sent to it (the re-send of `sent`
   * commands on a hello racing the first send, a command re-routed after its hub's stream moved).
   */
  private readonly written = new Map<string, number>();
  /** When (epoch ms) `rememberWritten` last forgot every written id due (-Infinity: never). */
  private sweptAt = Number.NEGATIVE_INFINITY;
  /** Written ids the hub answered on this stream, oldest answer first, with when to forget them (epoch ms). */
  private readonly answeredIds = new Map<string, number>();
  /** Per device, the newest desired version written to the stream: an older one arriving late is not written. */
  private readonly desiredWritten = new Map<string, number>();
  private state: 'held' | 'open' | 'ending' | 'stopped' = 'held';
  private stall: NodeJS.Timeout | undefined;
  private onEmpty: (() => void) | undefined;

  constructor(
    private readonly call: HubCall,
    private readonly limits: OutboundLimits,
    private readonly metrics: Pick<HubMetrics, 'commandsSent' | 'desiredSent' | 'commandsSkipped' | 'desiredSkipped'>,
    private readonly overflow: (reason: OverflowReason, waiting: number) => void,
    /** Epoch ms (forgetting the ids of expired commands). */
    private readonly clock: () => number = Date.now,
  ) {
    call.on('drain', () => {
      // Progress: the hub read what grpc-js held.
      clearTimeout(this.stall);
      this.stall = undefined;
      this.pump();
    });
  }

  /** Messages waiting here (not yet handed to grpc-js). */
  get waiting(): number {
    return this.queue.size;
  }

  /** Writes `first` (the welcome) and then whatever waited; later messages go in order behind them. */
  open(first: CloudMessage): void {
    if (this.state !== 'held') return;
    this.state = 'open';
    if (this.call.writable) this.call.write(first);
    this.pump();
  }

  /** An ack or an error; false when the stream takes nothing more. */
  reply(msg: CloudMessage): boolean {
    if (this.state !== 'open') return false;
    const ack = 'ack' in msg;
    if (ack && this.tailAck !== undefined && this.queue.has(this.tailAck)) {
      // Cumulative: the newer covers the older. In its place only while nothing was queued after
      // it, else it moves to the end: an ack never overtakes a command queued before it (the
      // hub's command goes before the ack of the report that caused it).
      if (this.tailAck === this.nextKey - 1) {
        this.queue.set(this.tailAck, { reply: msg, ack });
      } else {
        this.queue.delete(this.tailAck);
        this.tailAck = this.append({ reply: msg, ack });
      }
      return true;
    }
    if (this.replies >= this.limits.replies) return this.overflowed('replies');
    this.replies++;
    const key = this.append({ reply: msg, ack });
    this.tailAck = ack ? key : undefined;
    this.pump();
    return true;
  }

  /**
   * A command, at most once per id on this stream: one waiting or already written is not added
   * again (counted as skipped: `'skipped'`). False when the stream takes nothing more.
   */
  command(command: CommandDelivery): boolean | 'skipped' {
    if (this.state !== 'open' && this.state !== 'held') return false;
    const id = command.commandId;
    if (this.commandIds.has(id) || this.written.has(id) || this.answeredIds.has(id)) {
      this.metrics.commandsSkipped.inc();
      return 'skipped';
    }
    if (this.cloud >= this.limits.cloud) return this.overflowed('cloud');
    this.cloud++;
    this.commandIds.add(command.commandId);
    this.append({ command });
    this.pump();
    return true;
  }

  /**
   * A device's desired delta. One waiting for the same device is replaced (the newer goes to the
   * end of the queue, behind what was queued before it); an older version than the one waiting is
   * dropped. False when the stream takes nothing more.
   */
  desired(desired: DesiredDelivery): boolean | 'skipped' {
    if (this.state !== 'open' && this.state !== 'held') return false;
    // A newer target already went down: this one would take the hub back (it came a longer way).
    if (desired.version < (this.desiredWritten.get(desired.deviceId) ?? -1)) {
      this.metrics.desiredSkipped.inc();
      return 'skipped';
    }
    const waitingKey = this.desiredKeys.get(desired.deviceId);
    if (waitingKey !== undefined) {
      const waiting = this.queue.get(waitingKey) as { readonly desired: DesiredDelivery };
      if (desired.version < waiting.desired.version) return true;
      this.queue.delete(waitingKey);
      this.cloud--;
    }
    if (this.cloud >= this.limits.cloud) return this.overflowed('cloud');
    this.cloud++;
    this.desiredKeys.set(desired.deviceId, this.append({ desired }));
    this.pump();
    return true;
  }

  /** Writes what waits, then calls `done` (the stream's orderly end); nothing more is taken. */
  end(done: () => void): void {
    if (this.state === 'stopped' || this.state === 'ending') return;
    this.state = 'ending';
    this.onEmpty = done;
    this.pump();
  }

  /** Drops what waits: the stream is over (what it held is sent again on the hub's next connect). */
  stop(): void {
    this.state = 'stopped';
    clearTimeout(this.stall);
    this.stall = undefined;
    this.queue.clear();
    this.desiredKeys.clear();
    this.commandIds.clear();
    this.written.clear();
    this.answeredIds.clear();
    this.desiredWritten.clear();
    this.replies = this.cloud = 0;
    this.onEmpty = undefined;
  }

  private append(entry: Entry): number {
    const key = this.nextKey++;
    this.queue.set(key, entry);
    return key;
  }

  private overflowed(reason: OverflowReason): false {
    const waiting = this.queue.size;
    this.stop();
    this.overflow(reason, waiting);
    return false;
  }

  /** Hands waiting messages to grpc-js while it takes them. */
  private pump(): void {
    if (this.state !== 'open' && this.state !== 'ending') return;
    // Deleting the entry being visited is safe in a Map's for-of.
    for (const [key, entry] of this.queue) {
      if (this.call.writableNeedDrain || !this.call.writable) break;
      this.queue.delete(key);
      if ('reply' in entry) this.replies--;
      else {
        this.cloud--;
        if ('command' in entry) this.commandIds.delete(entry.command.commandId);
        else this.desiredKeys.delete(entry.desired.deviceId);
      }
      this.writeOne(entry);
    }
    if (this.queue.size === 0) {
      clearTimeout(this.stall);
      this.stall = undefined;
      if (this.state === 'ending') {
        const done = this.onEmpty;
        this.onEmpty = undefined;
        done?.();
      }
    } else if (this.stall === undefined && this.call.writable) {
      // Waiting on the hub: it must read some within stallMs (each drain restarts the clock).
      this.stall = setTimeout(() => {
        this.stall = undefined;
        if (this.queue.size > 0) this.overflowed('stalled');
      }, this.limits.stallMs);
    }
  }

  private writeOne(entry: Entry): void {
    if ('reply' in entry) this.call.write(entry.reply);
    else if ('command' in entry) {
      this.call.write(commandMessage(entry.command));
      this.metrics.commandsSent.inc();
      this.rememberWritten(entry.command);
    } else {
      this.call.write(desiredMessage(entry.desired));
      this.metrics.desiredSent.inc();
      this.rememberDesired(entry.desired);
    }
  }

  /**
   * The hub answered command `commandId` (its `command_result` on this stream): its id need be
   * remembered only `ANSWERED_IDS_KEPT_MS` more.
   */
  answered(commandId: string): void {
    const forgetAt = this.written.get(commandId);
    if (forgetAt === undefined) return;
    this.written.delete(commandId);
    // In the order of the answers, which is the order of forgetting.
    this.answeredIds.set(commandId, Math.min(forgetAt, this.clock() + ANSWERED_IDS_KEPT_MS));
  }

  /**
   * Keeps the id of a command written; forgets those due to be forgotten, and the oldest past the
   * bound. Answered ids are in the order of forgetting (`answered`), so their loop stops at the
   * first not due. Written ids are in the order written, not of their expiry (a command's TTL is
   * its own): the cheap loop from the oldest stops at the first not due, which may leave due ones
   * behind it; that costs memory only (an id remembered longer still names a command this stream
   * wrote), bounded by `keep`. Before the bound drops a written id still due to be kept (a
   * long-lived command written early: its re-send would be written again), every written id due
   * is forgotten (one pass over at most `keep`, only when over the bound, at most once per
   * `SWEEP_EVERY_MS`).
   */
  private rememberWritten(command: CommandDelivery): void {
    this.written.set(command.commandId, command.expiresAtMs + EXPIRED_IDS_KEPT_MS);
    const keep = this.limits.writtenIds ?? this.limits.cloud;
    const now = this.clock();
    const over = (): boolean => this.answeredIds.size + this.written.size > keep;
    // Answered ids go first (they are the ones no device sends again).
    for (const [id, forgetAt] of this.answeredIds) {
      if (!over() && forgetAt > now) break;
      this.answeredIds.delete(id);
    }
    for (const [id, forgetAt] of this.written) {
      if (forgetAt > now) break;
      this.written.delete(id);
    }
    if (over() && now >= this.sweptAt + SWEEP_EVERY_MS) {
      this.sweptAt = now;
      for (const [id, forgetAt] of this.written) if (forgetAt <= now) this.written.delete(id);
    }
    for (const id of this.written.keys()) {
      if (!over()) break;
      this.written.delete(id);
    }
  }

  private rememberDesired(desired: DesiredDelivery): void {
    this.desiredWritten.delete(desired.deviceId);
    this.desiredWritten.set(desired.deviceId, desired.version);
    const keep = this.limits.writtenIds ?? this.limits.cloud;
    for (const deviceId of this.desiredWritten.keys()) {
      if (this.desiredWritten.size <= keep) break;
      this.desiredWritten.delete(deviceId);
    }
  }
}
