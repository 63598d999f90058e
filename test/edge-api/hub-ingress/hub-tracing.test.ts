import { context, propagation, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tracingOn } from '../../../runtime/tracing.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';
import { parentOf, startInMemoryTracing, type InMemoryTracing } from '../../support/in-memory-tracing.ts';

let fx: HubFixture | undefined;
let tracing: InMemoryTracing | undefined;

afterEach(async () => {
  await fx?.close();
  fx = undefined;
  await tracing?.stop();
  tracing = undefined;
  vi.restoreAllMocks();
});

const rule = {
  id: 'hall-light',
  name: 'Hall light on motion',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true } }],
};

/** Home h1 with the rule; hub1 reports motion; resolves the command the rule sent down the stream. */
async function motionFiresRule(f: HubFixture): Promise<string> {
  await f.ask('home:h1', { type: 'rules.put', rule });
  const hub = await f.open(HUB1);
  hub.reports([{ seq: 1, device: 'motion1', attributes: { motion: true } }]);
  expect(await hub.ackAtLeast(1)).toBe(1);
  const command = await hub.waitFor((m) => m.command, 'rule command');
  return command.command_id;
}

describe('hub ingress tracing', () => {
  it('traces a report through the device step, the rule and the command to the hub send, each span under its cause', async () => {
    tracing = startInMemoryTracing();
    fx = await startHubFixture();
    const commandId = await motionFiresRule(fx);
    const t = tracing;
    const send = await vi.waitFor(() => {
      const s = t.spans().find((x) => x.name === 'hub send' && x.attributes['iot.command.id'] === commandId);
      if (!s) throw new Error('no hub send span');
      return s;
    });
    const byId = new Map(t.spans().map((s) => [s.spanContext().spanId, s]));
    const chain = [send];
    for (let s = send, p = parentOf(s); p !== undefined; p = parentOf(s)) {
      const parent = byId.get(p);
      if (!parent) throw new Error(`parent ${p} of ${s.name} not ended`);
      chain.push((s = parent));
    }
    expect(chain.map((s) => s.name)).toEqual([
      'hub send',
      'step device command.issue',
      `step home ${String(chain[2]?.attributes['iot.message.kind'])}`,
      'step device report.batch',
      'hub report',
    ]);
    expect(new Set(chain.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(chain[4]!.attributes).toEqual({ 'iot.home.id': 'h1', 'iot.hub.id': 'hub1', 'iot.reports': 1 });
    expect(chain[0]!.attributes).toMatchObject({ 'iot.hub.message': 'command', 'iot.device.id': 'light1', 'iot.hub.written': true });
    // The report span lasts until the ack: the device step (durable before the ack) ends within it.
    const [report, step] = [chain[4]!, chain[3]!];
    expect(report.endTime[0] * 1e9 + report.endTime[1]).toBeGreaterThanOrEqual(step.endTime[0] * 1e9 + step.endTime[1]);
  });

  it('with tracing off, a report that fires a rule and sends a command never calls into the OpenTelemetry API', async () => {
    expect(tracingOn).toBe(false);
    fx = await startHubFixture();
    const spies = [
      vi.spyOn(context, 'active'),
      vi.spyOn(context, 'with'),
      vi.spyOn(context, 'bind'),
      vi.spyOn(trace, 'getSpan'),
      vi.spyOn(trace, 'getTracer'),
      vi.spyOn(trace, 'setSpanContext'),
      vi.spyOn(propagation, 'inject'),
      vi.spyOn(propagation, 'extract'),
    ];
    expect(await motionFiresRule(fx)).toMatch(/light1/);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});
