/**
 * The resident device the activation scenario measures: a climate sensor as the catalog lists it
 * (temperature, humidity, pressure, battery) plus the link quality Zigbee hubs report with every
 * message — five attributes — in homes of 20 devices.
 */
import { deviceBehavior } from '../../../actors/device.ts';
import type { DeviceAttach, DeviceState, Report } from '../../../actors/device-state.ts';
import { deviceActorId } from '../../../actors/actor-id.ts';

export const DEVICES_PER_HOME = 20;
export const CLIMATE_ATTRIBUTES = ['temperature', 'humidity', 'pressure', 'battery', 'linkquality'] as const;

/** The id of the i-th device: `device:bh{i / 20}:d{i % 20}`. */
export const deviceIdOf = (i: number): string => deviceActorId(`bh${Math.floor(i / DEVICES_PER_HOME)}`, `d${i % DEVICES_PER_HOME}`);

/** What the hub actor tells a device when its hub says hello. */
export const attachOf = (): DeviceAttach => ({
  type: 'device.attach',
  hubId: 'hub1',
  deviceType: 'climate_sensor',
  capabilities: [...CLIMATE_ATTRIBUTES],
});

/** The `k`-th report (seq k, k >= 1) of device i: five attributes, values that differ per device and report. */
export function reportOf(i: number, k: number, tsMs: number): Report {
  return {
    type: 'report',
    seq: k,
    tsMs,
    attributes: {
      temperature: 18 + ((i * 7 + k) % 80) / 10,
      humidity: 35 + ((i * 13 + k) % 300) / 10,
      pressure: 990 + ((i * 3 + k) % 400) / 10,
      battery: 100 - ((i + k) % 60),
      linkquality: 60 + ((i * 11 + k) % 190),
    },
  };
}

/** The state the device reducer reaches after attach and reports 1..reports (the data a resident actor holds). */
export function deviceStateOf(i: number, reports: number, now: number): DeviceState {
  const id = deviceIdOf(i);
  const ctx = { id, now, replaying: false };
  let s = deviceBehavior.receive(deviceBehavior.initial(id), attachOf(), ctx).state;
  for (let k = 1; k <= reports; k++) s = deviceBehavior.receive(s, reportOf(i, k, now), ctx).state;
  return s;
}
