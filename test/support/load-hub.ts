/**
 * The cluster tests' load hub: a `ResilientHub` streaming numbered reports at a steady rate that
 * records what the tests check — each report's ack latency, every ack that raised the highest
 * ack, and every command delivery (with the stream it came on; the hub executes an id once and
 * answers every delivery with `command_result`).
 */
import type { Command } from '../../tools/hub-client/hub-client.ts';
import { ResilientHub, type ResilientHubOptions } from '../../tools/hub-client/resilient-hub.ts';

export interface LoadHubOptions extends Omit<ResilientHubOptions, 'onReportAcked' | 'onAck' | 'onCommand' | 'ratePerSec'> {
  /** Reports per second while streaming. */
  readonly ratePerSec: number;
  /** Result the hub reports for a command it executes; default ok. */
  readonly commandResult?: (command: Command) => { ok: boolean; error?: string };
}

/** One command message received. */
export interface CommandDelivery {
  readonly commandId: string;
  readonly deviceId: string;
  /** Index into `streams`. */
  readonly stream: number;
  /** Epoch ms. */
  readonly at: number;
}

export class LoadHub extends ResilientHub {
  /** Every command message received, in order. */
  readonly deliveries: CommandDelivery[] = [];
  /** Command ids executed (the first delivery of each id). */
  readonly executed = new Set<string>();
  /** Ack latency samples: [first send of the seq, its ack] (performance.now() ms). */
  readonly latencies: { readonly sentAt: number; readonly ackedAt: number }[] = [];
  /** Epoch ms of every ack that raised the highest ack, with the new value. */
  readonly ackLog: { readonly at: number; readonly upTo: number }[] = [];

  constructor(opts: LoadHubOptions) {
    super({
      ...opts,
      onReportAcked: (_seq, sentAt, ackedAt) => this.latencies.push({ sentAt, ackedAt }),
      onAck: (upTo) => this.ackLog.push({ at: Date.now(), upTo }),
      onCommand: (c, stream) => {
        this.deliveries.push({ commandId: c.command_id, deviceId: c.device_id, stream, at: Date.now() });
        // The hub dedupes by id: a re-sent command is not executed again, only answered again.
        this.executed.add(c.command_id);
        return opts.commandResult?.(c);
      },
    });
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
}

/** The p-th percentile (0..100) of `values` (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
