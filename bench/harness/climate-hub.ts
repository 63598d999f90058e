/** The ingest load: a `ResilientHub` of `devices` climate sensors, each report a temperature, the window kept full or paced. */
import type { WireReport } from '../../edge-api/hub-ingress/hub-wire.ts';
import type { HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { ResilientHub, type ResilientHubOptions } from '../../tools/hub-client/resilient-hub.ts';
import type { HubSpec } from './load-protocol.ts';
import { addressOf } from './numbered-hub.ts';

export const climateDevices = (n: number): HelloDevice[] =>
  Array.from({ length: n }, (_, i) => ({ deviceId: `d${i}`, type: 'climate_sensor', capabilities: ['temperature'] }));

/** Report `seq` goes to device d(seq % devices): with a batch of `devices`, every device gets one report. Built in wire form: the load's hot path. */
export const climateReport =
  (devices: number) =>
  (seq: number): WireReport => ({
    seq: String(seq),
    device_id: `d${seq % devices}`,
    ts_ms: String(Date.now()),
    attributes: { temperature: { number: 20 + (seq % 100) / 10 } },
  });

/** A hub of `spec` with `devices` climate sensors; paused (rate 0) unless `options` say otherwise. */
export function climateHub(spec: HubSpec, devices: number, options: Partial<ResilientHubOptions> = {}): ResilientHub {
  return new ResilientHub({
    address: addressOf(spec),
    secret: spec.secret,
    hubId: spec.hubId,
    homeId: spec.homeId,
    devices: climateDevices(devices),
    firmware: 'bench',
    report: climateReport(devices),
    ratePerSec: 0,
    ...options,
  });
}
