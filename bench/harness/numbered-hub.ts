/**
 * The resize and failover load: a `ResilientHub` streaming numbered reports at a steady rate
 * (report `seq` goes to device d(seq % 10) and sets n = seq, so every applied report bumps that
 * device's shadow version by exactly one) to the next address of its list after every failed
 * stream (the list can change while it runs: `retarget`). It records each report's ack latency in a
 * timeline, when each home is served again after a mark, and every command delivery by id (a real
 * hub executes an id once).
 */
import { status } from '@grpc/grpc-js';
import type { HelloDevice, HubReport } from '../../tools/hub-client/hub-client.ts';
import { ResilientHub } from '../../tools/hub-client/resilient-hub.ts';
import type { LatencyRecorder } from './hdr.ts';
import type { HubSpec, NumberedHubResult } from './load-protocol.ts';
import type { Timeline } from './timeline.ts';

export const NUMBERED_DEVICES = 10;
export const numberedDevices: readonly HelloDevice[] = Array.from({ length: NUMBERED_DEVICES }, (_, i) => ({
  deviceId: `d${i}`,
  type: 'plug',
  capabilities: ['n'],
}));
export const numberedReport = (seq: number): HubReport => ({
  seq,
  device: `d${seq % NUMBERED_DEVICES}`,
  attributes: { n: seq },
  tsMs: 1_700_000_000_000 + seq,
});

/** The address of a hub's `attempt`-th stream: its first choice, then the others in turn. */
export const addressOf =
  (spec: HubSpec) =>
  (attempt: number): string =>
    spec.addresses[(spec.first + attempt) % spec.addresses.length]!;

export class NumberedHub {
  readonly hub: ResilientHub;
  /** Per command id, the stream (1, 2, … in connection order) of each of its deliveries. */
  readonly deliveries = new Map<string, number[]>();
  private readonly marks: { produced: number; at: number; servedAt: number | null }[] = [];
  /** Where the next streams go (the spec's list until `retarget`). */
  private addresses: readonly string[];

  constructor(
    readonly spec: HubSpec,
    perSec: number,
    batch: number,
    timeline: Timeline,
    latency: LatencyRecorder,
  ) {
    this.addresses = spec.addresses;
    this.hub = new ResilientHub({
      address: (attempt) => this.addresses[(spec.first + attempt) % this.addresses.length]!,
      secret: spec.secret,
      hubId: spec.hubId,
      homeId: spec.homeId,
      devices: numberedDevices,
      firmware: 'bench-numbered',
      report: numberedReport,
      ratePerSec: perSec,
      batch,
      sharedChannel: true,
      onReportAcked: (_seq, sentAt, ackedAt) => {
        timeline.record(Date.now(), ackedAt - sentAt);
        latency.record(ackedAt - sentAt);
      },
      onAck: (upTo) => {
        for (const mk of this.marks) if (mk.servedAt === null && upTo > mk.produced) mk.servedAt = Date.now();
      },
      onCommand: (c, stream) => {
        const seen = this.deliveries.get(c.command_id);
        if (seen) seen.push(stream + 1);
        else this.deliveries.set(c.command_id, [stream + 1]);
      },
    });
  }

  /** Remembers what was produced at `at` (epoch ms). */
  mark(at: number): void {
    this.marks.push({ produced: this.hub.produced, at, servedAt: null });
  }

  /** From the next stream on, connects to `addresses` (a node was killed or joined); the current stream stays. */
  retarget(addresses: readonly string[]): void {
    if (addresses.length > 0) this.addresses = [...addresses];
  }

  /** Ms from mark `i` until the first ack covering a report produced after it (null: not yet, or no such mark). */
  servedAfter(i: number): number | null {
    const m = this.marks[i];
    return m?.servedAt == null ? null : m.servedAt - m.at;
  }

  result(): NumberedHubResult {
    const h = this.hub;
    const errors = [
      ...h.streams.flatMap((s) =>
        s.droppedBecause !== undefined && s.droppedBecause !== 'stopped'
          ? [`stream to ${s.address} dropped: ${s.droppedBecause}`]
          : s.status && s.status.code !== status.OK && s.droppedBecause === undefined
            ? [`stream to ${s.address} ended: ${s.status.code} ${s.status.details}`]
            : [],
      ),
      ...h.errors.map((e) => `${e.code} ${e.message}${e.seq !== '0' ? ` (seq ${e.seq})` : ''}`),
    ];
    return {
      homeId: this.spec.homeId,
      produced: h.produced,
      highestAck: h.highestAck,
      reportsSent: h.reportsSent,
      streams: h.streams.length,
      errors: errors.slice(0, 5).concat(errors.length > 5 ? [`… ${errors.length - 5} more`] : []),
      servedAfterMs: this.marks.map((m) => (m.servedAt === null ? null : m.servedAt - m.at)),
    };
  }
}
