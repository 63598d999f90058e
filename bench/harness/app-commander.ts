/**
 * Apps sending commands while hubs stream: `POST /v1/homes/:home/devices/d0/commands` with an app
 * token and an Idempotency-Key, round robin over the homes, at a steady rate; a POST that fails
 * (connection refused, 429, 503, timeout) is sent again with the same key — to the next node — until
 * it gets a 202. Remembers every accepted command id, to check at the hubs that each arrived once.
 */
import type { HubSpec } from './load-protocol.ts';

/** About 10 s of retries: long enough to ride out a failover. */
const MAX_ATTEMPTS = 100;
const RETRY_DELAY_MS = 100;
const REQUEST_TIMEOUT_MS = 5_000;

export interface AcceptedCommand {
  readonly homeId: string;
  readonly commandId: string;
  readonly attempts: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class AppCommander {
  readonly accepted: AcceptedCommand[] = [];
  refused = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private n = 0;

  constructor(
    private readonly homes: readonly HubSpec[],
    /** Base URLs of the nodes' HTTP edges (`retarget` replaces them). */
    private http: readonly string[],
    private readonly perSec: number,
    /** Makes idempotency keys unique across load processes. */
    private readonly keyPrefix: string,
  ) {}

  start(): void {
    const targets = this.homes.filter((h) => h.appToken !== undefined);
    if (this.perSec <= 0 || targets.length === 0 || this.http.length === 0) return;
    this.timer = setInterval(() => {
      const n = this.n++;
      const p = this.send(targets[n % targets.length]!, n).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }, 1000 / this.perSec);
  }

  /** Sends the next POSTs (and retries) to `http` (a node was killed or joined). */
  retarget(http: readonly string[]): void {
    if (http.length > 0) this.http = [...http];
  }

  /** Stops sending new commands and waits for the POSTs in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.inFlight]);
  }

  private async send(home: HubSpec, n: number): Promise<void> {
    const key = `${this.keyPrefix}-${n}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const base = this.http[(n + attempt) % this.http.length]!;
      try {
        const res = await fetch(`${base}/v1/homes/${encodeURIComponent(home.homeId)}/devices/d0/commands`, {
          method: 'POST',
          headers: { authorization: `Bearer ${home.appToken}`, 'content-type': 'application/json', 'Idempotency-Key': key },
          body: JSON.stringify({ name: 'set', params: { n }, ttlMs: 120_000 }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        if (res.status === 202) {
          const body = JSON.parse(text) as { commandId: string };
          this.accepted.push({ homeId: home.homeId, commandId: body.commandId, attempts: attempt + 1 });
          return;
        }
      } catch {
        // refused, reset or timed out: the same key again, to the next node
      }
      await sleep(RETRY_DELAY_MS);
    }
    this.refused++;
  }
}
