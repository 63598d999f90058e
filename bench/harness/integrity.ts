/**
 * Lost and duplicated work after a resize or failover run, counted the way
 * test/e2e/durability.e2e.test.ts checks it: every report `seq` of a numbered hub went to device
 * d(seq % 10) and set n = seq, so each device's shadow version must equal the number of reports
 * sent to it (fewer: lost; more: applied twice) and its n the highest of them. Commands: every
 * accepted id must have reached its hub, and never twice on one stream.
 */
import type { CommandTally, HubSpec, NumberedHubResult } from './load-protocol.ts';
import { call, mapLimit } from './node-api.ts';
import { NUMBERED_DEVICES } from './numbered-hub.ts';

export interface Integrity {
  readonly reportsLost: number;
  readonly reportsDuplicated: number;
  /** Devices whose last value is not their highest seq (an out-of-order apply). */
  readonly shadowsOutOfOrder: number;
  /** Reports produced that were never acked by the end of the run. */
  readonly reportsUnacked: number;
  readonly commandsLost: number;
  /**
   * Commands delivered twice on one stream (or for one app request twice). A command delivered
   * again on a LATER stream after a reconnect is not counted: the hub contract is at-least-once
   * across streams (the first delivery's result may have died with its stream) and a hub executes
   * an id once; the notes give that count.
   */
  readonly commandsDuplicated: number;
}

/** Expected shadow of each device after reports 1..produced: [version, n]. */
export function expectedShadows(produced: number): [number, number][] {
  const out: [number, number][] = Array.from({ length: NUMBERED_DEVICES }, () => [0, 0]);
  for (let seq = 1; seq <= produced; seq++) {
    const e = out[seq % NUMBERED_DEVICES]!;
    e[0]++;
    e[1] = seq;
  }
  return out;
}

interface Shadow {
  readonly version: number;
  readonly reported?: { readonly n?: { readonly value?: number } };
}

/** Reads every numbered device's shadow (spread over `http`) and compares it with what its hub produced. */
export async function checkIntegrity(
  http: readonly string[],
  specs: readonly HubSpec[],
  hubs: readonly NumberedHubResult[],
  commands: readonly CommandTally[],
): Promise<{ integrity: Integrity; notes: string[] }> {
  const notes: string[] = [];
  const byHome = new Map(specs.map((s) => [s.homeId, s]));
  const reads = hubs.flatMap((h) => Array.from({ length: NUMBERED_DEVICES }, (_, d) => ({ hub: h, d })));
  let lost = 0;
  let dup = 0;
  let outOfOrder = 0;
  const expected = new Map(hubs.map((h) => [h.homeId, expectedShadows(h.produced)]));
  await mapLimit(reads, 8, async ({ hub, d }, i) => {
    const spec = byHome.get(hub.homeId);
    const shadow = await call<Shadow>(http[i % http.length]!, 'GET', `/v1/homes/${hub.homeId}/devices/d${d}`, undefined, spec?.appToken);
    const [version, n] = expected.get(hub.homeId)![d]!;
    if (shadow.version < version) lost += version - shadow.version;
    if (shadow.version > version) dup += shadow.version - version;
    if ((shadow.reported?.n?.value ?? 0) !== n) outOfOrder++;
  });
  const unacked = hubs.reduce((a, h) => a + Math.max(0, h.produced - h.highestAck), 0);
  if (unacked > 0) notes.push(`${unacked} reports were still unacked when the run ended (hubs gave up waiting)`);
  const commandsLost = commands.reduce((a, c) => a + c.lost.length, 0);
  const commandsDuplicated = commands.reduce((a, c) => a + c.duplicated.length, 0);
  const lostIds = commands.flatMap((c) => c.lost).slice(0, 5);
  if (lostIds.length > 0) {
    // What the runtime says about them: its command record, wherever the home lives now.
    const seen = await mapLimit(lostIds, 4, async (c, i) => {
      const spec = byHome.get(c.homeId);
      const path = `/v1/homes/${c.homeId}/commands/${encodeURIComponent(c.commandId)}`;
      const r = await call<{ status?: string }>(http[i % http.length]!, 'GET', path, undefined, spec?.appToken, 5_000).catch(
        (err: unknown) => ({ status: `unreadable: ${String(err)}` }),
      );
      return `${c.homeId}/${c.commandId} (status ${r.status ?? '?'})`;
    });
    notes.push(`commands accepted but never delivered to the hub: ${seen.join(', ')}`);
  }
  const dupIds = commands.flatMap((c) => c.duplicated).slice(0, 5);
  const afterReconnect = commands.reduce((a, c) => a + c.redeliveredAfterReconnect, 0);
  const afterRetry = commands.reduce((a, c) => a + c.duplicatedAfterAppRetry, 0);
  if (dupIds.length > 0) {
    notes.push(
      `commands delivered more than once: ${commandsDuplicated}; ${afterReconnect} of them only again on a later stream after a reconnect ` +
        `(at-least-once: the result of the first delivery may have died with its stream), ${commandsDuplicated - afterReconnect} twice on one stream; ` +
        `${afterRetry} had been POSTed more than once by the app (same Idempotency-Key); a hub executes an id once; e.g. ${dupIds.join(', ')}`,
    );
  }
  const hubErrors = hubs.flatMap((h) => h.errors.map((e) => `${h.homeId}: ${e}`));
  if (hubErrors.length > 0)
    notes.push(`hub stream events: ${hubErrors.slice(0, 6).join('; ')}${hubErrors.length > 6 ? ` (+${hubErrors.length - 6})` : ''}`);
  return {
    integrity: {
      reportsLost: lost,
      reportsDuplicated: dup,
      shadowsOutOfOrder: outOfOrder,
      reportsUnacked: unacked,
      commandsLost,
      commandsDuplicated: commandsDuplicated - afterReconnect,
    },
    notes,
  };
}
