/**
 * Tracing end to end: two real node processes on one private redis-server, exporting OTLP/JSON to
 * a collector the test runs. A hub on one node reports to a home served by the other; the rule it
 * fires sends a command back to the hub: the whole chain is one trace across both nodes, each
 * span under the one that caused it. An app's command is one too, rooted at its HTTP request (the
 * caller's `traceparent` is only linked).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startOtlpSink, type OtlpSink, type ReceivedSpan } from '../../bench/harness/otlp-sink.ts';
import { HubClient, type HelloDevice } from '../../tools/hub-client/hub-client.ts';
import { startNodeProcess } from '../../tools/process/node-process.ts';
import { clusterTestFile, homesOn, ownerOfHome, provisionHome } from '../support/cluster-harness.ts';

const ADMIN = 'admin-token-for-tracing-tests';
const file = clusterTestFile({ adminToken: ADMIN, shards: 16, tag: 't' });

let collector: OtlpSink;
beforeAll(async () => {
  collector = await startOtlpSink({ keep: true });
});
afterAll(async () => {
  await collector.close();
});

const devices: HelloDevice[] = [
  { deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion', 'illuminance'] },
  { deviceId: 'light1', type: 'light', capabilities: ['on', 'brightness'] },
];
const rule = {
  id: 'hall-light',
  name: 'Hall light on motion when dark',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [{ device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } }],
};

/**
 * The chain from `span` up through its parents, `span` first, as far as the collector has them;
 * `above`: the parent id the chain stops at (a span not received, or the caller's own), or
 * undefined at the trace's root.
 */
function ancestry(span: ReceivedSpan, all: readonly ReceivedSpan[]): { chain: ReceivedSpan[]; above: string | undefined } {
  const byId = new Map(all.filter((s) => s.traceId === span.traceId).map((s) => [s.spanId, s]));
  const chain = [span];
  for (let s = span; s.parentSpanId !== undefined;) {
    const parent = byId.get(s.parentSpanId);
    if (!parent) return { chain, above: s.parentSpanId };
    chain.push((s = parent));
  }
  return { chain, above: undefined };
}

/** Waits until the collector has the hub send of `commandId` and its ancestry up to `above` (undefined: the root). */
function chainOf(commandId: string, above: string | undefined): Promise<ReceivedSpan[]> {
  return vi.waitFor(
    () => {
      const send = collector.spans.find((s) => s.name === 'hub send' && s.attributes['iot.command.id'] === commandId);
      if (!send) throw new Error(`no hub send span of ${commandId} yet`);
      const a = ancestry(send, collector.spans);
      if (a.above !== above) throw new Error(`the chain ${where(a.chain).join(' < ')} stops below ${a.above}`);
      return a.chain;
    },
    { timeout: 10_000, interval: 50 },
  );
}

/** `name@node` of each span: what the assertions compare. */
const where = (chain: readonly ReceivedSpan[]): string[] => chain.map((s) => `${s.name}@${String(s.resource['service.instance.id'])}`);

describe('tracing across nodes (real node processes, OTLP/JSON to a test collector)', () => {
  it('makes hub report → device step → home rule → command → hub send one trace over both nodes, and an app command one under its traceparent', async () => {
    const cluster = file.newCluster();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_SERVICE_NAME: 'iot-e2e',
    };
    await Promise.all([cluster.start('node-a', otel), cluster.start('node-b', otel)]);
    const status = await cluster.settled('node-a', ['node-a', 'node-b']);
    // The home (its devices, hub actor and rules) lives on node-b; the hub streams to node-a.
    const [homeId] = homesOn(status, 'node-b', 1, 'traced');
    expect(ownerOfHome(status, homeId!)).toBe('node-b');
    const viaA = cluster.api('node-a');
    const { secret, appToken } = await provisionHome(viaA, ADMIN, homeId!);
    expect((await viaA('PUT', `/v1/homes/${homeId}/rules/hall-light`, appToken, rule)).status).toBeLessThan(300);

    const hub = new HubClient(cluster.grpc('node-a'), secret);
    file.cleanup(() => hub.close());
    hub.hello('hub1', homeId!, devices);
    expect(await hub.welcome()).toMatchObject({ node_id: 'node-a' });
    hub.reports([{ seq: 1, device: 'motion1', attributes: { motion: true, illuminance: 12 }, event: 'motion_detected' }]);
    expect(await hub.ackAtLeast(1)).toBe(1);
    const command = await hub.waitFor((m) => m.command, 'rule command');

    // The hub send of the rule's command, and the chain of spans above it up to the trace's root.
    const ruleSend = await chainOf(command.command_id, undefined);
    expect(where(ruleSend)).toEqual([
      'hub send@node-a',
      'step device command.issue@node-b',
      `step home ${String(ruleSend[2]!.attributes['iot.message.kind'])}@node-b`,
      'step device report.batch@node-b',
      'hub report@node-a',
    ]);
    expect(ruleSend[2]!.attributes).toMatchObject({ 'iot.actor.id': `home:${homeId}`, 'iot.actor.kind': 'home' });
    expect(String(ruleSend[2]!.attributes['iot.message.kind'])).toMatch(/^device\./);
    expect(ruleSend[1]!.attributes).toMatchObject({ 'iot.actor.id': `device:${homeId}:light1`, 'iot.actor.kind': 'device' });
    expect(ruleSend[3]!.attributes).toMatchObject({ 'iot.actor.id': `device:${homeId}:motion1`, 'iot.message.kind': 'report.batch' });
    expect(ruleSend[4]!.attributes).toMatchObject({ 'iot.home.id': homeId, 'iot.hub.id': 'hub1', 'iot.reports': 1 });
    expect(ruleSend[0]!.attributes).toMatchObject({ 'iot.hub.message': 'command', 'iot.device.id': 'light1', 'iot.hub.written': true });
    expect(new Set(ruleSend.map((s) => s.traceId)).size).toBe(1);
    for (const s of ruleSend) expect(s.resource['service.name']).toBe('iot-e2e');

    // An app command through node-b reaches the hub on node-a in a trace of its own: the public edge
    // links the caller's traceparent, never parents to it (a client cannot force sampling or pick ids).
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const sent = await cluster.api('node-b')(
      'POST',
      `/v1/homes/${homeId}/devices/light1/commands`,
      appToken,
      { name: 'set', params: { on: false }, ttlMs: 30_000 },
      { traceparent: `00-${traceId}-${callerSpan}-01` },
    );
    expect(sent.status).toBe(202);
    await hub.waitFor((m) => (m.command?.command_id === sent.body.commandId ? m.command : undefined), 'app command');
    // The chain's root is the request's span.
    const appSend = await chainOf(sent.body.commandId as string, undefined);
    expect(where(appSend)).toEqual([
      'hub send@node-a',
      'step device command.issue@node-b',
      'POST /v1/homes/:homeId/devices/:deviceId/commands@node-b',
    ]);
    expect(appSend[0]!.traceId).not.toBe(traceId);
    expect(new Set(appSend.map((s) => s.traceId)).size).toBe(1);
    expect(appSend[2]!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 202 });
    hub.close();
  }, 60_000);

  it('refuses to start with an OTEL_* value it cannot honour: one configuration error line, exit 2', async () => {
    const started = startNodeProcess({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    await expect(started).rejects.toThrow(
      /exited with code 2[\s\S]*CONFIG_INVALID[\s\S]*OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/,
    );
  });
});
