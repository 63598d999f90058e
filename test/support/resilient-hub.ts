/**
 * A hub that survives node and Redis failures the way the hub contract asks firmware to: it keeps
 * at most `window` reports unacked, and whenever its stream ends (or its acks stall) it reconnects,
 * says hello again and re-sends every report after the highest ack it has seen.
 */
import type { StatusObject } from '@grpc/grpc-js';
import { HubClient, type Received, type TestDevice, type TestReport } from './hub-client.ts';

export interface ResilientHubOptions {
  /** Where to connect; read again on every reconnect (a restarted node may listen elsewhere). */
  readonly address: () => string;
  readonly secret: string;
  readonly hubId: string;
  readonly homeId: string;
  readonly devices: readonly TestDevice[];
  /** Reports 1..total are sent; the hub is done once `total` is acked. */
  readonly total: number;
  /** The report with sequence number `seq` (the same every time it is sent). */
  readonly report: (seq: number) => TestReport;
  /** Reports per `reports` message; default 50. */
  readonly batch?: number;
  /** Milliseconds without a welcome, or without ack progress while reports are unacked, before the hub gives up on a stream; default 10 000. */
  readonly stallMs?: number;
  /** Milliseconds between a stream's end and the next attempt; default 100. */
  readonly reconnectDelayMs?: number;
  /** Called after every ack that raised the highest ack, with it, once the reports it made room for are sent. */
  readonly onAck?: (highestAck: number) => void;
}

/** One stream of the hub, from connect to its end. */
export interface HubConnection {
  /** Highest ack when the stream was opened: it resumed after this seq. */
  readonly resumedAfter: number;
  welcome?: NonNullable<Received['welcome']>;
  /** Highest seq sent on this stream (0 = none). */
  sentUpTo: number;
  /** The stream's final status (or a note why the hub dropped it). */
  status?: StatusObject;
  droppedBecause?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ResilientHub {
  /** Highest `ack.up_to_seq` received on any stream. */
  highestAck = 0;
  /** Reports written, re-sends included. */
  reportsSent = 0;
  readonly connections: HubConnection[] = [];
  /** Every `error` message received (a report the cloud refused). */
  readonly errors: NonNullable<Received['error']>[] = [];
  private stopped = false;
  private current: HubClient | undefined;
  private readonly batch: number;
  private readonly stallMs: number;

  constructor(private readonly opts: ResilientHubOptions) {
    this.batch = opts.batch ?? 50;
    this.stallMs = opts.stallMs ?? 10_000;
  }

  get done(): boolean {
    return this.highestAck >= this.opts.total;
  }

  /** Streams until every report is acked; rejects after `deadlineMs` with what happened so far. */
  async run(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (!this.done) {
      if (this.stopped) throw new Error('hub stopped');
      if (Date.now() > deadline) {
        throw new Error(`hub not done after ${deadlineMs} ms: highest ack ${this.highestAck} of ${this.opts.total}; ${this.describe()}`);
      }
      await this.stream(deadline);
      // A pause before reconnecting is what real firmware does too; it keeps a dead address from spinning.
      if (!this.done) await sleep(this.opts.reconnectDelayMs ?? 100);
    }
  }

  /** Drops the current stream and makes `run` stop. */
  stop(): void {
    this.stopped = true;
    this.current?.close();
  }

  /** The streams so far, for failure messages. */
  describe(): string {
    return `${this.connections.length} streams: ${JSON.stringify(
      this.connections.map((c) => ({
        resumedAfter: c.resumedAfter,
        welcome: c.welcome,
        sentUpTo: c.sentUpTo,
        status: c.status && { code: c.status.code, details: c.status.details },
        droppedBecause: c.droppedBecause,
      })),
    )}; errors ${JSON.stringify(this.errors.slice(0, 5))}`;
  }

  /** One stream: hello, then reports within the window until all are acked or the stream ends or stalls. */
  private stream(deadline: number): Promise<void> {
    const conn: HubConnection = { resumedAfter: this.highestAck, sentUpTo: 0 };
    this.connections.push(conn);
    const client = new HubClient(this.opts.address(), this.opts.secret);
    this.current = client;
    let window = 0;
    let nextSeq = this.highestAck + 1;
    let lastProgress = Date.now();

    const pump = (): void => {
      while (window > 0 && client.status === undefined && nextSeq <= this.opts.total) {
        const unacked = nextSeq - 1 - this.highestAck;
        const n = Math.min(this.batch, this.opts.total - nextSeq + 1);
        if (unacked + n > window) return; // wait for acks: a batch past the window ends the stream
        const items: TestReport[] = [];
        for (let i = 0; i < n; i++) items.push(this.opts.report(nextSeq + i));
        client.reports(items);
        nextSeq += n;
        conn.sentUpTo = nextSeq - 1;
        this.reportsSent += n;
      }
    };

    return new Promise<void>((resolve) => {
      const finish = (): void => {
        clearInterval(watchdog);
        if (this.current === client) this.current = undefined;
        resolve();
      };
      const drop = (why: string): void => {
        conn.droppedBecause = why;
        client.close(); // the status (CANCELLED) follows and finishes the stream
      };
      const watchdog = setInterval(() => {
        if (client.status !== undefined) return;
        const stalled = Date.now() - lastProgress > this.stallMs;
        if (conn.welcome === undefined && stalled) drop(`no welcome within ${this.stallMs} ms`);
        else if (nextSeq - 1 > this.highestAck && stalled) drop(`no ack progress for ${this.stallMs} ms`);
        else if (Date.now() > deadline) drop('deadline');
      }, 100);

      client.onMessage((m) => {
        if (m.welcome) {
          conn.welcome = m.welcome;
          window = m.welcome.window;
          lastProgress = Date.now();
          pump();
        } else if (m.ack) {
          const ack = Number(m.ack.up_to_seq);
          const raised = ack > this.highestAck;
          if (raised) {
            this.highestAck = ack;
            lastProgress = Date.now();
          }
          if (this.done) client.end(); // the node ends the stream with OK once nothing is unacked
          else pump();
          // After the pump: the hook sees the window refilled, with reports in flight.
          if (raised) this.opts.onAck?.(ack);
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
