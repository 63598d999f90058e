/**
 * A bystander hub for fuzz tests: a well-behaved hub of its own home that keeps reporting while
 * others fuzz the node. Whatever the fuzzer sends, this hub's stream must stay open and every one
 * of its reports must be acked.
 */
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';

const DEVICES: HelloDevice[] = [{ deviceId: 'thermo1', type: 'thermometer', capabilities: ['temperature'] }];

/** Most reports the bystander leaves unacked before it waits (well inside any credit window). */
const MAX_UNACKED = 4;

export class Bystander {
  private sent: number;
  private acked: number;
  private timer: NodeJS.Timeout | undefined;
  /** `error` messages received: the bystander sends nothing wrong, so any is a failure. */
  private readonly errors: unknown[] = [];

  private constructor(
    private readonly hub: HubClient,
    lastDurableSeq: number,
  ) {
    this.sent = lastDurableSeq;
    this.acked = lastDurableSeq;
    hub.onMessage((m) => {
      if (m.ack) this.acked = Math.max(this.acked, Number(m.ack.up_to_seq));
      if (m.error) this.errors.push(m.error);
    });
  }

  /** Connects hub `hubId` of `homeId` with `secret`, says hello and waits for the welcome. */
  static async connect(address: string, secret: string, homeId: string, hubId = 'hub1'): Promise<Bystander> {
    const hub = new HubClient(address, secret, { keepMessages: false });
    hub.hello(hubId, homeId, DEVICES);
    const welcome = await hub.welcome(15_000);
    return new Bystander(hub, Number(welcome.last_durable_seq));
  }

  /** Reports every `everyMs` in the background, keeping at most a few unacked. */
  start(everyMs = 50): void {
    this.timer ??= setInterval(() => {
      if (this.sent - this.acked < MAX_UNACKED && !this.hub.status) this.send();
    }, everyMs);
  }

  /** Reports sent so far on this stream. */
  get reportsSent(): number {
    return this.sent;
  }

  /**
   * Sends one more report and waits until everything sent is acked. Rejects, saying why, when the
   * stream ended, an `error` came down (the bystander sends nothing wrong), or no ack came in time.
   */
  async pulse(timeoutMs = 15_000): Promise<void> {
    this.assertHealthy();
    this.send();
    const want = this.sent;
    await this.hub.ackAtLeast(want, timeoutMs).catch((err: unknown) => {
      throw new Error(`bystander hub: no ack for seq ${want} (acked ${this.acked}): ${err instanceof Error ? err.message : String(err)}`);
    });
    this.assertHealthy();
  }

  /** Stops reporting and closes the stream. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.hub.close();
  }

  private send(): void {
    this.sent++;
    this.hub.reports([{ seq: this.sent, device: 'thermo1', attributes: { temperature: 15 + (this.sent % 10) }, tsMs: Date.now() }]);
  }

  private assertHealthy(): void {
    if (this.hub.status) throw new Error(`bystander hub: its stream ended: ${JSON.stringify(this.hub.status)}`);
    if (this.errors.length > 0) throw new Error(`bystander hub: received errors ${JSON.stringify(this.errors)}`);
  }
}
