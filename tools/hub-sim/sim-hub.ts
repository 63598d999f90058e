/**
 * A simulated home's hub over `ResilientHub`: it streams the home's sensor readings at a rate,
 * runs the commands the cloud sends (answers each, then reports the device's new state) and, when
 * told to, reports motion in the dark hall every so often and times until the rule's light
 * command arrives. The hub simulator and the latency benchmark run it.
 */
import { fromWireValue } from '../../edge-api/hub-ingress/hub-wire.ts';
import type { Command, Desired, HubReport } from '../hub-client/hub-client.ts';
import { ResilientHub } from '../hub-client/resilient-hub.ts';
import { applyCommand, nextReading, simDevices, type SimDevice, type SimValue } from './sim-home.ts';

/** A trigger whose command has not come within this long is counted as missed. */
const MISSED_AFTER_MS = 2_000;

/** Where a phase's latencies go (milliseconds). */
export interface LatencySink {
  record(ms: number): void;
}

export interface SimHubOptions {
  readonly address: (attempt: number) => string;
  readonly homeId: string;
  readonly hubId: string;
  readonly secret: string;
  /** Reports per second from the start (default 0: `begin` sets it). */
  readonly ratePerSec?: number;
  /** Most reports per message; default 20. */
  readonly batch?: number;
  /** Milliseconds between two messages of paced reports; default 20. */
  readonly flushMs?: number;
  readonly rand: () => number;
  /** Share one gRPC channel per address with the other hubs of this process. */
  readonly sharedChannel?: boolean;
  readonly onError?: (message: string) => void;
}

export class SimHub {
  readonly hub: ResilientHub;
  /** Reports acked (each counted once). */
  acked = 0;
  /** Sum of their ack latencies (first send → ack), milliseconds. */
  ackLatencySumMs = 0;
  commands = 0;
  /** Motion triggers whose light command did not come within 2 s (while a phase recorded). */
  missed = 0;
  private readonly devices: SimDevice[] = simDevices();
  private readonly sensors: SimDevice[];
  private readonly light: SimDevice;
  /** New device states to report after a command, before the next reading. */
  private readonly queued: { device: string; attributes: Record<string, SimValue> }[] = [];
  private motionEveryMs: number | undefined;
  private motionOn = false;
  private nextMotionAt = 0;
  /** The motion report waiting for its command. */
  private trigger: { sentAt: number; sink: LatencySink | undefined } | undefined;
  private sinks: { command: LatencySink; ack: LatencySink } | undefined;

  constructor(private readonly opts: SimHubOptions) {
    this.sensors = this.devices.filter((d) => d.type !== 'light');
    this.light = this.devices.find((d) => d.type === 'light')!;
    this.hub = new ResilientHub({
      address: opts.address,
      secret: opts.secret,
      hubId: opts.hubId,
      homeId: opts.homeId,
      devices: this.devices,
      firmware: 'sim-1.0',
      report: (seq) => ({ seq, ...this.nextReport() }),
      ratePerSec: opts.ratePerSec ?? 0,
      batch: opts.batch ?? 20,
      flushMs: opts.flushMs ?? 20,
      sharedChannel: opts.sharedChannel ?? false,
      onReportAcked: (_seq, sentAt, ackedAt) => {
        this.acked++;
        this.ackLatencySumMs += ackedAt - sentAt;
        this.sinks?.ack.record(ackedAt - sentAt);
      },
      onCommand: (c) => this.onCommand(c),
      onDesired: (d) => this.onDesired(d),
      onError: (e) => opts.onError?.(`${opts.homeId}/${opts.hubId}: ${e.code} ${e.message}`),
    });
  }

  /** Reports sent (each counted once). */
  get sent(): number {
    return this.hub.produced;
  }

  get errors(): number {
    return this.hub.errorCount;
  }

  /**
   * A paced phase: `perSec` reports/s; with `motionEveryMs`, a motion trigger that often (random
   * phase) whose command latency goes to `sinks.command`, and ack latencies to `sinks.ack`.
   */
  begin(perSec: number, motionEveryMs?: number, sinks?: { command: LatencySink; ack: LatencySink }): void {
    this.motionEveryMs = motionEveryMs;
    this.sinks = sinks;
    if (motionEveryMs !== undefined) this.nextMotionAt = performance.now() + this.opts.rand() * motionEveryMs;
    this.hub.pace(perSec);
  }

  /** Stops pacing and recording (acks and commands still arrive). */
  pause(): void {
    this.expireTrigger(performance.now());
    this.sinks = undefined;
    this.hub.pace(0);
  }

  /** The next report: a device's new state after a command, a motion trigger when due, else a reading. */
  private nextReport(): Omit<HubReport, 'seq'> {
    const now = performance.now();
    this.expireTrigger(now);
    const q = this.queued.shift();
    if (q) return { device: q.device, attributes: q.attributes, tsMs: Date.now() };
    if (this.motionEveryMs !== undefined) {
      if (!this.motionOn && !this.trigger && now >= this.nextMotionAt) {
        this.motionOn = true;
        this.nextMotionAt = now + this.motionEveryMs;
        this.trigger = { sentAt: now, sink: this.sinks?.command };
        return { device: 'motion1', attributes: { motion: true, illuminance: 12 }, event: 'motion_detected', tsMs: Date.now() };
      }
      if (this.motionOn && !this.trigger) {
        this.motionOn = false;
        return { device: 'motion1', attributes: { motion: false, illuminance: this.illuminance() }, tsMs: Date.now() };
      }
    }
    const d = this.sensors[Math.floor(this.opts.rand() * this.sensors.length)]!;
    // With timed triggers, the motion sensor's routine reports are light level only: motion changes are the triggers.
    if (this.motionEveryMs !== undefined && d.type === 'motion_sensor')
      return { device: d.deviceId, attributes: { illuminance: this.illuminance() }, tsMs: Date.now() };
    return { device: d.deviceId, ...nextReading(d, this.opts.rand), tsMs: Date.now() };
  }

  private illuminance(): number {
    return 10 + Math.round(this.opts.rand() * 20);
  }

  private expireTrigger(now: number): void {
    if (!this.trigger || now - this.trigger.sentAt <= MISSED_AFTER_MS) return;
    if (this.trigger.sink) this.missed++;
    this.trigger = undefined;
  }

  private onCommand(c: Command): { ok: boolean; error?: string } {
    const now = performance.now();
    this.commands++;
    const device = this.devices.find((d) => d.deviceId === c.device_id);
    if (!device) return { ok: false, error: 'unknown device' };
    if (device === this.light && this.trigger) {
      this.trigger.sink?.record(now - this.trigger.sentAt);
      this.trigger = undefined;
    }
    const params: Record<string, SimValue> = {};
    for (const [k, v] of Object.entries(c.params)) {
      const value = fromWireValue(v);
      if (value !== undefined) params[k] = value;
    }
    this.queued.push({ device: device.deviceId, attributes: applyCommand(device, params) });
    return { ok: true };
  }

  /** A desired delta: the device takes the values and reports them (the cloud's delta then clears). */
  private onDesired(d: Desired): void {
    if (!this.devices.some((x) => x.deviceId === d.device_id)) return;
    const attributes: Record<string, SimValue> = {};
    for (const [k, v] of Object.entries(d.delta)) {
      const value = fromWireValue(v);
      if (value !== undefined) attributes[k] = value;
    }
    if (Object.keys(attributes).length > 0) this.queued.push({ device: d.device_id, attributes });
  }
}
