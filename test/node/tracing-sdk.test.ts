import { context, diag, propagation, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startOtlpSink, type OtlpSink } from '../../bench/harness/otlp-sink.ts';
import { ConfigError } from '../../node/config.ts';
import { resourceAttributesOf, samplerOf, startTracing, tracingPlan, type TracingSdk } from '../../node/tracing-sdk.ts';
import { endSpan, SpanKind, startSpanFrom, tracingOn } from '../../runtime/tracing.ts';

let sdk: TracingSdk | undefined;
let sink: OtlpSink | undefined;

afterEach(async () => {
  await sdk?.shutdown();
  sdk = undefined;
  await sink?.close();
  sink = undefined;
  trace.disable();
  context.disable();
  propagation.disable();
  diag.disable();
  vi.unstubAllEnvs();
});

describe('tracingPlan', () => {
  it('is off unless an exporter or an OTLP endpoint asks for traces', () => {
    expect(tracingPlan({})).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_SERVICE_NAME: 'x' })).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({ on: true, protocol: 'http/protobuf' });
    expect(tracingPlan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toMatchObject({ on: true });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({ on: true, protocol: 'http/protobuf' });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' })).toMatchObject({ on: true });
  });

  it('picks the protocol from the traces variable first, then the general one', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(tracingPlan({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual({ on: true, protocol: 'http/json' });
    expect(tracingPlan({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' })).toEqual({
      on: true,
      protocol: 'http/protobuf',
    });
  });

  it('refuses what it cannot honour with a message naming the variable', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(() => tracingPlan({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: use http\/protobuf/,
    );
    expect(() => tracingPlan({ ...on, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=udp/);
    expect(() => tracingPlan({ OTEL_TRACES_EXPORTER: 'jaeger' })).toThrow(ConfigError);
    expect(() => tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp,zipkin' })).toThrow(/only "otlp" or "none"/);
  });
});

describe('samplerOf', () => {
  it('defaults to parent-based always-on and knows every standard sampler', () => {
    expect(samplerOf({}).toString()).toMatch(/ParentBased\{root=AlwaysOnSampler/);
    expect(samplerOf({ OTEL_TRACES_SAMPLER: 'always_off' }).toString()).toBe('AlwaysOffSampler');
    expect(samplerOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).toString()).toBe('TraceIdRatioBased{0.25}');
    expect(samplerOf({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }).toString()).toMatch(
      /root=TraceIdRatioBased\{0.1\}/,
    );
  });

  it('refuses an unknown sampler or a ratio outside 0..1', () => {
    expect(() => samplerOf({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER=sometimes/);
    expect(() => samplerOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG=2/);
  });
});

describe('resourceAttributesOf', () => {
  it('reads percent-encoded key=value pairs and refuses a malformed entry by name', () => {
    expect(resourceAttributesOf({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod, team=a%2Cb,,' })).toEqual({
      'deployment.environment': 'prod',
      team: 'a,b',
    });
    expect(() => resourceAttributesOf({ OTEL_RESOURCE_ATTRIBUTES: 'a=1,b' })).toThrow(/entry "b"/);
    expect(() => resourceAttributesOf({ OTEL_RESOURCE_ATTRIBUTES: 'a=%E0%A4%A' })).toThrow(/percent-encoding/);
  });
});

describe('startTracing', () => {
  it('does nothing when the variables do not ask for traces: the switch stays off', async () => {
    expect(await startTracing({}, { nodeId: 'n1' })).toBeUndefined();
    expect(tracingOn).toBe(false);
  });

  it('exports OTLP/JSON with service.name, the node id as service.instance.id and the resource attributes, and flushes on shutdown', async () => {
    sink = await startOtlpSink({ keep: true });
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test,service.instance.id=ignored',
    };
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    sdk = await startTracing(process.env, { nodeId: 'node-7', logger: pino({ level: 'silent' }) });
    expect(sdk).toBeDefined();
    expect(tracingOn).toBe(true);
    endSpan(startSpanFrom(undefined, 'probe', SpanKind.INTERNAL, { answer: 42 }));
    await sdk!.shutdown();
    expect(tracingOn).toBe(false);
    expect(sink.spans).toHaveLength(1);
    expect(sink.spans[0]).toMatchObject({ name: 'probe', attributes: { answer: 42 } });
    expect(sink.spans[0]!.resource).toMatchObject({
      'service.name': 'iot-actor-runtime',
      'service.instance.id': 'node-7',
      'deployment.environment': 'test',
    });
  });

  it('exports OTLP/protobuf by default', async () => {
    sink = await startOtlpSink();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', sink.endpoint);
    vi.stubEnv('OTEL_SERVICE_NAME', 'custom');
    sdk = await startTracing(process.env, { nodeId: 'n1', logger: pino({ level: 'silent' }) });
    endSpan(startSpanFrom(undefined, 'probe', SpanKind.INTERNAL, {}));
    await sdk!.shutdown();
    expect(sink.requests).toBe(1);
  });

  it('never fails the node when the collector is unreachable: the SDK warns through the logger', async () => {
    const closed = await startOtlpSink();
    const endpoint = closed.endpoint;
    await closed.close();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', endpoint);
    vi.stubEnv('OTEL_EXPORTER_OTLP_TIMEOUT', '500');
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) },
    );
    sdk = await startTracing(process.env, { nodeId: 'n1', logger });
    endSpan(startSpanFrom(undefined, 'lost', SpanKind.INTERNAL, {}));
    await expect(sdk!.shutdown()).resolves.toBeUndefined();
    await vi.waitFor(() => expect(lines.some((l) => l.level >= 40 && l.msg.startsWith('tracing:'))).toBe(true));
  });
});
