import { context, trace } from '@opentelemetry/api';
import { ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import type { DecodedReport } from '../../../edge-api/hub-ingress/hub-codec.ts';
import { HubMetrics } from '../../../edge-api/hub-ingress/hub-metrics.ts';
import type { CloudMessage } from '../../../edge-api/hub-ingress/hub-wire.ts';
import { ReportIntake } from '../../../edge-api/hub-ingress/report-intake.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import type { Result } from '../../../runtime/result.ts';
import { tracingOn } from '../../../runtime/tracing.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';
import { parentOf, startInMemoryTracing, type InMemoryTracing, spyOnTracingApi } from '../../support/in-memory-tracing.ts';

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
    const spies = spyOnTracingApi();
    expect(await motionFiresRule(fx)).toMatch(/light1/);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

/** A report intake over a router whose device asks apply every report; `sent`: what went to the hub. */
function intake(): { intake: ReportIntake; sent: CloudMessage[] } {
  const sent: CloudMessage[] = [];
  const router: ActorRouter = {
    ask: <R>(_id: string, msg: unknown) =>
      Promise.resolve({
        ok: true,
        value: { ok: true, value: { results: (msg as { items: unknown[] }).items.map(() => ({ ok: true, value: { applied: true } })) } },
      } as Result<R>),
    tell: () => ({ ok: true, value: undefined }),
    deliver: () => ({ ok: true, value: undefined }),
  };
  const ri = new ReportIntake({
    homeId: 'h1',
    devices: new Set(['lamp']),
    lastDurableSeq: 0,
    window: 10,
    router,
    metrics: new HubMetrics(new Registry()),
    clock: Date.now,
    retry: { baseMs: 1, maxMs: 1, giveUpAfterMs: 10_000 },
    log: silentLogger,
    send: (m) => sent.push(m),
    fail: () => {},
    acked: () => {},
  });
  return { intake: ri, sent };
}

const reports = (...seqs: number[]): DecodedReport[] =>
  seqs.map((seq) => ({ seq, device_id: 'lamp', ts_ms: Date.now(), attributes: { on: { flag: true } }, event: null }));

/** Spies on the OpenTelemetry calls a traced report makes beyond starting its span. */
const contextSpies = () => [vi.spyOn(context, 'with'), vi.spyOn(context, 'active'), vi.spyOn(trace, 'setSpanContext')];

describe('ReportIntake tracing', () => {
  it('takes the untraced path for a report message its span does not sample (no context per ask)', async () => {
    tracing = startInMemoryTracing({ sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }) });
    const fx = intake();
    const spies = contextSpies();
    // The SDK's unsampled spans are the API's non-recording ones.
    const unsampled = Object.getPrototypeOf(
      trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0 }),
    ) as { end(): void };
    const ended = vi.spyOn(unsampled, 'end');
    fx.intake.accept(reports(1, 2));
    // Ended at once, not kept (with its bookkeeping) until the ack.
    expect(ended).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(fx.sent).toEqual([{ ack: { up_to_seq: '2' } }]));
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    expect(tracing.spans()).toEqual([]);
  });

  it('runs the asks of a sampled report message in its span, and ends it at the ack', async () => {
    tracing = startInMemoryTracing();
    const fx = intake();
    const spies = contextSpies();
    fx.intake.accept(reports(1));
    await vi.waitFor(() => expect(fx.sent).toEqual([{ ack: { up_to_seq: '1' } }]));
    expect(spies[0]).toHaveBeenCalled();
    expect(tracing.span('hub report').attributes).toEqual({ 'iot.home.id': 'h1', 'iot.reports': 1 });
  });

  it('with tracing off, never calls the OpenTelemetry API', async () => {
    expect(tracingOn).toBe(false);
    const fx = intake();
    const spies = [...contextSpies(), vi.spyOn(context, 'bind'), vi.spyOn(trace, 'getSpan'), vi.spyOn(trace, 'getTracer')];
    fx.intake.accept(reports(1, 2));
    await vi.waitFor(() => expect(fx.sent).toEqual([{ ack: { up_to_seq: '2' } }]));
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});
