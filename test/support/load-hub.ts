/**
 * A paced, resilient hub for cluster tests. Like `ResilientHub` it keeps at most `window` reports
 * unacked and, whenever its stream ends or stalls, reconnects (to whatever `address()` says then)
 * and re-sends every report after its highest ack. Unlike it, it streams numbered reports at a
 * steady rate until told to finish, measures each report's ack latency (first send → covering
 * ack), and plays the command side of the hub contract: every command it receives is recorded
 * (with the stream it came on), executed once per command id and answered with `command_result`.
 */
import type { StatusObject } from '@grpc/grpc-js';
import { HubClient, type Received, type TestDevice, type TestReport } from './hub-client.ts';

export interface LoadHubOptions {
  /** Where to connect; asked again before every stream (`attempt` counts streams from 0). */
  readonly address: (attempt: number) => string;
  readonly secret: string;
  readonly hubId: string;
  readonly homeId: string;
  readonly devices: readonly TestDevice[];
  /** The report with sequence number `seq` (the same every time it is sent). */
  readonly report: (seq: number) => TestReport;
  /** Reports per second while streaming. */
  readonly ratePerSec: number;
  /** Most reports per `reports` message; default 20. */
  readonly batch?: number;
  /** Milliseconds without a welcome, or without ack progress while reports are unacked, before a stream is dropped; default 10 000. */
  readonly stallMs?: number;
  /** Milliseconds between a stream's end and the next attempt; default 100. */
  readonly reconnectDelayMs?: number;
  /** Result the hub reports for a command it executes; default ok. */
  readonly commandResult?: (command: NonNullable<Received['command']>) => { ok: boolean; error?: string };
}

/** One stream of the hub, from connect to its end. */
export interface LoadHubStream {
  readonly address: string;
  /** Highest ack when the stream was opened: it resumed after this seq. */
  readonly resumedAfter: number;
  readonly openedAt: number;
  welcome?: NonNullable<Received['welcome']>;
  sentUpTo: number;
  status?: StatusObject;
  droppedBecause?: string;
}

/** One command message received. */
export interface CommandDelivery {
  readonly commandId: string;
  readonly deviceId: string;
  /** Index into `streams`. */
  readonly stream: number;
  readonly at: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const TICK_MS = 10;

export class LoadHub {
  /** Highest `ack.up_to_seq` received on any stream. */
  highestAck = 0;
  /** Highest seq produced (sent at least once); reports 1..produced exist. */
  produced = 0;
  /** Reports written, re-sends included. */
  reportsSent = 0;
  readonly streams: LoadHubStream[] = [];
  readonly errors: NonNullable<Received['error']>[] = [];
  /** Every command message received, in order. */
  readonly deliveries: CommandDelivery[] = [];
  /** Command ids executed (the first delivery of each id). */
  readonly executed = new Set<string>();
  /** performance.now() of each seq's first send (index = seq). */
  private readonly firstSent: number[] = [0];
  /** Ack latency samples: [first send of the seq, its ack] (performance.now() ms). */
  readonly latencies: { readonly sentAt: number; readonly ackedAt: number }[] = [];
  /** Epoch ms of every ack that raised the highest ack, with the new value. */
  readonly ackLog: { readonly at: number; readonly upTo: number }[] = [];

  private finishing = false;
  private stopped = false;
  private current: HubClient | undefined;
  private running: Promise<void> | undefined;
  private startedAt = 0;
  private readonly batch: number;
  private readonly stallMs: number;

  constructor(private readonly opts: LoadHubOptions) {
    this.batch = opts.batch ?? 20;
    this.stallMs = opts.stallMs ?? 10_000;
  }

  /** Starts streaming in the background. */
  start(): void {
    if (this.running) return;
    this.startedAt = performance.now();
    this.running = this.loop();
    this.running.catch(() => {}); // surfaced by finish()
  }

  /** Every report produced so far is acked. */
  get caughtUp(): boolean {
    return this.highestAck >= this.produced;
  }

  /**
   * Stops producing new reports and waits until every produced report is acked; rejects after
   * `timeoutMs` with what happened so far. The hub then closes its stream.
   */
  async finish(timeoutMs: number): Promise<void> {
    this.finishing = true;
    const deadline = Date.now() + timeoutMs;
    while (!this.caughtUp) {
      if (Date.now() > deadline) {
        this.stop();
        throw new Error(`hub ${this.opts.homeId}/${this.opts.hubId} not caught up after ${timeoutMs} ms: ack ${this.highestAck} of ${this.produced}; ${this.describe()}`);
      }
      await sleep(20);
    }
    this.stop();
    await this.running;
  }

  /** Drops the current stream and ends the loop. */
  stop(): void {
    this.stopped = true;
    this.current?.close();
  }

  /** Latencies (ms) of the reports first sent within [from, to] (performance.now() ms). */
  latenciesSentBetween(from: number, to: number): number[] {
    return this.latencies.filter((l) => l.sentAt >= from && l.sentAt <= to).map((l) => l.ackedAt - l.sentAt);
  }

  /** Deliveries per command id. */
  deliveriesById(): Map<string, CommandDelivery[]> {
    const by = new Map<string, CommandDelivery[]>();
    for (const d of this.deliveries) by.set(d.commandId, [...(by.get(d.commandId) ?? []), d]);
    return by;
  }

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
    )}; errors ${JSON.stringify(this.errors.slice(0, 5))}`;
  }

  private async loop(): Promise<void> {
    while (!this.stopped && !(this.finishing && this.caughtUp)) {
      await this.stream();
      if (!this.stopped) await sleep(this.opts.reconnectDelayMs ?? 100);
    }
  }

  /** Seqs the rate allows by now. */
  private allowed(): number {
    if (this.finishing) return this.produced;
    return Math.floor(((performance.now() - this.startedAt) / 1000) * this.opts.ratePerSec);
  }

  private stream(): Promise<void> {
    const address = this.opts.address(this.streams.length);
    const conn: LoadHubStream = { address, resumedAfter: this.highestAck, openedAt: Date.now(), sentUpTo: 0 };
    const index = this.streams.push(conn) - 1;
    const client = new HubClient(address, this.opts.secret);
    this.current = client;
    let window = 0;
    let nextSeq = this.highestAck + 1;
    let lastProgress = Date.now();

    const pump = (): void => {
      if (window === 0 || client.status !== undefined || this.stopped) return;
      const limit = Math.max(this.allowed(), this.produced);
      while (nextSeq <= limit) {
        const unacked = nextSeq - 1 - this.highestAck;
        const n = Math.min(this.batch, limit - nextSeq + 1, window - unacked);
        if (n <= 0) return; // the window is full: wait for acks
        const items: TestReport[] = [];
        const now = performance.now();
        for (let i = 0; i < n; i++) {
          const seq = nextSeq + i;
          items.push(this.opts.report(seq));
          if (seq > this.produced) {
            this.produced = seq;
            this.firstSent[seq] = now;
          }
        }
        client.reports(items);
        nextSeq += n;
        conn.sentUpTo = nextSeq - 1;
        this.reportsSent += n;
      }
    };

    return new Promise<void>((resolve) => {
      const ticker = setInterval(() => {
        if (client.status !== undefined) return;
        pump();
        const stalled = Date.now() - lastProgress > this.stallMs;
        if (conn.welcome === undefined && stalled) drop(`no welcome within ${this.stallMs} ms`);
        else if (nextSeq - 1 > this.highestAck && stalled) drop(`no ack progress for ${this.stallMs} ms`);
      }, TICK_MS);
      const drop = (why: string): void => {
        conn.droppedBecause = why;
        client.close(); // the status (CANCELLED) follows and ends the stream
      };
      const finish = (): void => {
        clearInterval(ticker);
        if (this.current === client) this.current = undefined;
        resolve();
      };

      client.onMessage((m) => {
        if (m.welcome) {
          conn.welcome = m.welcome;
          window = m.welcome.window;
          lastProgress = Date.now();
          pump();
        } else if (m.ack) {
          const ack = Number(m.ack.up_to_seq);
          if (ack > this.highestAck) {
            const now = performance.now();
            for (let seq = this.highestAck + 1; seq <= ack; seq++) {
              const sentAt = this.firstSent[seq];
              if (sentAt !== undefined) this.latencies.push({ sentAt, ackedAt: now });
            }
            this.highestAck = ack;
            this.ackLog.push({ at: Date.now(), upTo: ack });
            lastProgress = Date.now();
          }
          if (this.finishing && this.caughtUp) client.end(); // the node ends the stream with OK
          else pump();
        } else if (m.command) {
          const c = m.command;
          this.deliveries.push({ commandId: c.command_id, deviceId: c.device_id, stream: index, at: Date.now() });
          // The hub dedupes by id: a re-sent command is not executed again, only answered again.
          this.executed.add(c.command_id);
          const result = this.opts.commandResult?.(c) ?? { ok: true };
          client.send({ command_result: { command_id: c.command_id, ok: result.ok, error: result.error ?? '' } });
        } else if (m.error) {
          this.errors.push(m.error);
        }
      });
      client.onEnd((status) => {
        conn.status = status;
        client.close();
        finish();
      });
      client.hello(this.opts.hubId, this.opts.homeId, this.opts.devices);
    });
  }
}

/** The p-th percentile (0..100) of `values` (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
