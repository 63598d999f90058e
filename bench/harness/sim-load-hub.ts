/**
 * A realistic home's hub for the latency scenario (devices and readings from bench/sim): it paces
 * its reports, and every `motionEveryMs` it reports motion (dark hall) and times how long the
 * rule's light command takes to arrive at the hub. Then it runs the command (result + the light's
 * new state) and reports the motion ending, ready for the next time.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { applyCommand, nextReading, simDevices, type SimDevice } from '../sim/sim-home.ts';
import type { LatencyRecorder } from './hdr.ts';
import { FLUSH_MS, fromWire, openHubStream, wireAttributes, type CloudMessage, type PlainValue, type WireReport } from './hub-stream.ts';
import type { HubSpec } from './load-protocol.ts';

/** A trigger whose command has not come within this long is counted as missed. */
const MISSED_AFTER_MS = 2_000;

export interface SimRecorders {
  readonly command: LatencyRecorder;
  readonly ack: LatencyRecorder;
}

export class SimLoadHub {
  acked = 0;
  sent = 0;
  commands = 0;
  missed = 0;
  errors = 0;
  private readonly devices: SimDevice[] = simDevices();
  private readonly background: SimDevice[];
  private readonly light: SimDevice;
  private stream: ClientDuplexStream<unknown, CloudMessage> | undefined;
  private window = 0;
  private seq = 0;
  private ackedSeq = 0;
  /** performance.now() of each unacked report, index seq - ackedSeq - 1. */
  private sentAt: number[] = [];
  private queued: { device: string; attributes: Record<string, PlainValue> }[] = [];
  /** The motion report waiting for its command. */
  private trigger: { sentAt: number; recorder: LatencyRecorder | undefined } | undefined;
  private motionOn = false;
  private nextMotionAt = 0;
  private phaseStart = 0;
  private dueSent = 0;
  private perSec = 0;
  private motionEveryMs = 0;
  private nextFlush = 0;
  private recorders: SimRecorders | undefined;

  constructor(
    readonly spec: HubSpec,
    private readonly rand: () => number,
  ) {
    this.background = this.devices.filter((d) => d.type !== 'light');
    this.light = this.devices.find((d) => d.type === 'light')!;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const address = this.spec.addresses[this.spec.first % this.spec.addresses.length]!;
      this.stream = openHubStream(
        address,
        this.spec.secret,
        { hubId: this.spec.hubId, homeId: this.spec.homeId, firmware: 'bench-sim', devices: this.devices },
        {
          message: (m) => {
            if (m.welcome) {
              this.window = m.welcome.window;
              resolve();
            } else this.onMessage(m);
          },
          end: (s) => {
            this.stream = undefined;
            reject(new Error(`hub ${this.spec.homeId}: stream ended: ${s.code} ${s.details}`));
          },
        },
      );
    });
  }

  /** Starts a paced phase: `perSec` reports/s, a motion trigger every `motionEveryMs` (random phase). */
  begin(perSec: number, motionEveryMs: number, recorders: SimRecorders | undefined): void {
    this.perSec = perSec;
    this.motionEveryMs = motionEveryMs;
    this.recorders = recorders;
    this.phaseStart = performance.now() - this.rand() * (1000 / Math.max(perSec, 1));
    this.dueSent = 0;
    this.nextMotionAt = performance.now() + this.rand() * motionEveryMs;
    this.nextFlush = performance.now() + this.rand() * FLUSH_MS;
  }

  /** Called by the worker's ticker: every FLUSH_MS, sends the reports due by now in one message. */
  tick(now: number): void {
    if (!this.stream || this.perSec === 0) return;
    if (this.trigger && now - this.trigger.sentAt > MISSED_AFTER_MS) {
      if (this.trigger.recorder) this.missed++;
      this.trigger = undefined;
    }
    if (now < this.nextFlush) return;
    this.nextFlush = now + FLUSH_MS;
    const due = Math.floor(((now - this.phaseStart) / 1000) * this.perSec) - this.dueSent;
    let room = Math.min(due, this.window - (this.seq - this.ackedSeq));
    if (room <= 0) return;
    const items: WireReport[] = [];
    let triggered = false;
    const push = (device: string, attributes: Record<string, PlainValue>, event?: string): void => {
      const seq = ++this.seq;
      items.push({ seq: String(seq), device_id: device, ts_ms: String(Date.now()), attributes: wireAttributes(attributes), ...(event ? { event } : {}) });
      this.sentAt.push(now);
      room--;
    };
    while (room > 0 && this.queued.length > 0) {
      const q = this.queued.shift()!;
      push(q.device, q.attributes);
    }
    if (room > 0 && !this.motionOn && !this.trigger && now >= this.nextMotionAt) {
      this.motionOn = true;
      this.nextMotionAt = now + this.motionEveryMs;
      push('motion1', { motion: true, illuminance: 12 }, 'motion_detected');
      triggered = true;
    } else if (room > 0 && this.motionOn && !this.trigger) {
      this.motionOn = false;
      push('motion1', { motion: false, illuminance: 10 + Math.round(this.rand() * 20) });
    }
    while (room > 0) {
      const d = this.background[Math.floor(this.rand() * this.background.length)]!;
      // The motion sensor's routine reports are light level only: motion changes are the triggers above.
      const attributes = d.type === 'motion_sensor' ? { illuminance: 10 + Math.round(this.rand() * 20) } : nextReading(d, this.rand).attributes;
      push(d.deviceId, attributes);
    }
    this.stream.write({ reports: { items } });
    this.dueSent += items.length;
    this.sent += items.length;
    if (triggered) this.trigger = { sentAt: performance.now(), recorder: this.recorders?.command };
  }

  /** Stops pacing (acks and commands still arrive). */
  pause(): void {
    this.perSec = 0;
    this.recorders = undefined;
  }

  /** Waits until every report sent is acked (or `timeoutMs` passes). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.ackedSeq < this.seq && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  close(): void {
    this.stream?.end();
    this.stream = undefined;
  }

  private onMessage(m: CloudMessage): void {
    if (m.ack) {
      const upTo = Number(m.ack.up_to_seq);
      if (upTo <= this.ackedSeq) return;
      const now = performance.now();
      const n = upTo - this.ackedSeq;
      if (this.recorders) for (let i = 0; i < n; i++) this.recorders.ack.record(now - this.sentAt[i]!);
      this.sentAt.splice(0, n);
      this.acked += n;
      this.ackedSeq = upTo;
    } else if (m.command) {
      const now = performance.now();
      this.commands++;
      const c = m.command;
      this.stream?.write({ command_result: { command_id: c.command_id, ok: true, error: '' } });
      if (c.device_id === this.light.deviceId) {
        if (this.trigger) {
          this.trigger.recorder?.record(now - this.trigger.sentAt);
          this.trigger = undefined;
        }
        const params = Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, fromWire(v)]));
        this.queued.push({ device: this.light.deviceId, attributes: applyCommand(this.light, params) });
      }
    } else if (m.error) {
      this.errors++;
    }
  }
}
