import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { context, diag, propagation, trace } from '@opentelemetry/api';
import * as sdkBase from '@opentelemetry/sdk-trace-base';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startOtlpSink, type OtlpSink } from '../../bench/harness/otlp-sink.ts';
import { ConfigError } from '../../node/config.ts';
import { resourceAttributesOf, samplerOf, tracingPlan } from '../../node/tracing-plan.ts';
import { diagLoggerOf, samplerFrom, startTracing, type TracingSdk } from '../../node/tracing-sdk.ts';
import { endSpan, SpanKind, startSpanFrom, tracingOn } from '../../runtime/tracing.ts';

let sdk: TracingSdk | undefined;
let sink: OtlpSink | undefined;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  await sdk?.shutdown();
  sdk = undefined;
  await sink?.close();
  sink = undefined;
  for (const close of closers.splice(0)) await close();
  trace.disable();
  context.disable();
  propagation.disable();
  diag.disable();
  vi.unstubAllEnvs();
});

/** A pino logger whose lines land in `lines`. */
function capture(): { logger: Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

describe('tracingPlan', () => {
  const DEFAULTS = {
    sampler: { name: 'parentbased_always_on', ratio: 1 },
    attributes: {},
    serviceName: 'iot-actor-runtime',
    warnings: [],
  };

  it('is off unless an exporter or an OTLP endpoint asks for traces', () => {
    expect(tracingPlan({})).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_SERVICE_NAME: 'x' })).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({ on: true, protocol: 'http/protobuf', ...DEFAULTS });
    expect(tracingPlan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toMatchObject({ on: true });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({ on: true, protocol: 'http/protobuf', ...DEFAULTS });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({
      on: false,
      why: 'OTEL_TRACES_EXPORTER=none',
      warnings: [],
    });
    expect(tracingPlan({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toMatchObject({ on: false });
    expect(tracingPlan({ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' })).toMatchObject({ on: true });
  });

  it('takes any exporter list that names otlp, warning about the rest (console: not pino JSON)', () => {
    const plan = tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp, console,zipkin,otlp' });
    expect(plan).toMatchObject({ on: true, protocol: 'http/protobuf' });
    expect(plan.warnings).toHaveLength(2);
    expect(plan.warnings[0]).toMatch(/"console" ignored \(its output is not pino JSON/);
    expect(plan.warnings[1]).toMatch(/"zipkin" is not supported here and is ignored/);
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'console,otlp' })).toMatchObject({ on: true });
  });

  it('is off, with a warning, for a list of only unsupported exporters (the specification ignores them)', () => {
    const plan = tracingPlan({ OTEL_TRACES_EXPORTER: 'jaeger', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' });
    expect(plan).toMatchObject({ on: false, why: 'OTEL_TRACES_EXPORTER names no otlp' });
    expect(plan.warnings).toEqual([expect.stringMatching(/"jaeger" is not supported/)]);
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'console' })).toMatchObject({ on: false, warnings: [expect.stringMatching(/console/)] });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'none,none' })).toEqual({ on: false, why: 'OTEL_TRACES_EXPORTER=none', warnings: [] });
  });

  it('picks the protocol from the traces variable first, then the general one', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(tracingPlan({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toMatchObject({ on: true, protocol: 'http/json' });
    expect(tracingPlan({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' })).toMatchObject({
      on: true,
      protocol: 'http/protobuf',
    });
  });

  it('names the service from OTEL_SERVICE_NAME, then the resource attributes, then the default', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(tracingPlan({ ...on, OTEL_SERVICE_NAME: 's1', OTEL_RESOURCE_ATTRIBUTES: 'service.name=s2' })).toMatchObject({
      serviceName: 's1',
    });
    expect(tracingPlan({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=s2' })).toMatchObject({ serviceName: 's2' });
  });

  it('refuses what it cannot honour with a message naming the variable', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(() => tracingPlan({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: use http\/protobuf/,
    );
    expect(() => tracingPlan({ ...on, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=udp/);
    expect(() => tracingPlan({ ...on, OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(ConfigError);
    expect(() => tracingPlan({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'a' })).toThrow(ConfigError);
  });
});

describe('samplerOf', () => {
  it('defaults to parent-based always-on and knows every standard sampler', () => {
    expect(samplerOf({})).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(samplerOf({ OTEL_TRACES_SAMPLER: 'always_off', OTEL_TRACES_SAMPLER_ARG: 'ignored' })).toEqual({ name: 'always_off', ratio: 1 });
    expect(samplerOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })).toEqual({
      name: 'traceidratio',
      ratio: 0.25,
    });
    expect(samplerOf({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })).toEqual({
      name: 'parentbased_traceidratio',
      ratio: 0.1,
    });
  });

  it('refuses an unknown sampler or a ratio outside 0..1', () => {
    expect(() => samplerOf({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER=sometimes/);
    expect(() => samplerOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG=2/);
  });

  it('builds the SDK sampler each plan names', () => {
    const built = (env: Record<string, string>): string => samplerFrom(samplerOf(env), sdkBase).toString();
    expect(built({})).toMatch(/ParentBased\{root=AlwaysOnSampler/);
    expect(built({ OTEL_TRACES_SAMPLER: 'always_on' })).toBe('AlwaysOnSampler');
    expect(built({ OTEL_TRACES_SAMPLER: 'always_off' })).toBe('AlwaysOffSampler');
    expect(built({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })).toBe('TraceIdRatioBased{0.25}');
    expect(built({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' })).toMatch(/ParentBased\{root=AlwaysOffSampler/);
    expect(built({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })).toMatch(
      /root=TraceIdRatioBased\{0.1\}/,
    );
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

describe('diagLoggerOf', () => {
  it('never throws on an argument without a JSON form (circular, BigInt), and still logs the line', () => {
    const { logger, lines } = capture();
    const diagLog = diagLoggerOf(logger);
    const circular: Record<string, unknown> = { a: 1 };
    circular['self'] = circular;
    expect(() => diagLog.warn('export failed', circular, 10n, new Error('refused'), undefined)).not.toThrow();
    expect(() => diagLog.error('odd', Object.create(null) as object)).not.toThrow();
    expect(lines[0]).toMatchObject({ level: 40, msg: 'tracing: export failed' });
    expect(String(lines[0]!['detail'])).toContain('refused');
    expect(lines[1]).toMatchObject({ level: 50, msg: 'tracing: odd' });
  });

  it('never throws when the logger itself throws', () => {
    const broken = {
      warn: () => {
        throw new Error('sink gone');
      },
      error: () => {
        throw new Error('sink gone');
      },
    } as unknown as Logger;
    expect(() => diagLoggerOf(broken).warn('x')).not.toThrow();
  });
});

/** Runs `startTracing(env)` in a fresh node process and reports which OpenTelemetry SDK modules it loaded. */
async function sdkModulesLoadedBy(env: Record<string, string>): Promise<{ on: boolean; loaded: string[] }> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const code = `
    import { createRequire } from 'node:module';
    const { startTracing } = await import(${JSON.stringify(new URL('../../node/tracing-sdk.ts', import.meta.url).href)});
    const { pino } = await import('pino');
    const sdk = await startTracing(JSON.parse(process.env.PROBE_ENV), { nodeId: 'probe', logger: pino({ level: 'silent' }), shutdownBudgetMs: 200 });
    const require = createRequire(import.meta.url);
    const loaded = Object.keys(require.cache).filter((k) => /@opentelemetry[\\/](sdk-|exporter-|otlp-|resources|core)/.test(k));
    await sdk?.shutdown();
    process.stdout.write(JSON.stringify({ on: sdk !== undefined, loaded }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', PROBE_ENV: JSON.stringify(env) },
    timeout: 30_000,
  });
  return JSON.parse(stdout) as { on: boolean; loaded: string[] };
}

describe('loading the SDK', () => {
  it('loads no SDK module when tracing is off, and loads them when it is on (the probe sees them)', async () => {
    const [off, on] = await Promise.all([
      sdkModulesLoadedBy({}),
      sdkModulesLoadedBy({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }),
    ]);
    expect(off).toEqual({ on: false, loaded: [] });
    expect(on.on).toBe(true);
    expect(on.loaded.some((m) => m.includes('sdk-trace-node'))).toBe(true);
    expect(on.loaded.some((m) => m.includes('exporter-trace-otlp-proto'))).toBe(true);
  }, 60_000);
});

describe('startTracing', () => {
  it('does nothing when the variables do not ask for traces: the switch stays off', async () => {
    expect(await startTracing({}, { nodeId: 'n1' })).toBeUndefined();
    expect(tracingOn).toBe(false);
  });

  it('stays off with a warning when OTEL_TRACES_EXPORTER names only exporters it does not have', async () => {
    const { logger, lines } = capture();
    expect(
      await startTracing({ OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, { nodeId: 'n1', logger }),
    ).toBe(undefined);
    expect(tracingOn).toBe(false);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, expect.stringMatching(/"zipkin" is not supported here and is ignored/)],
      [40, 'tracing off: no supported exporter named'],
    ]);
  });

  it('starts with otlp,console and warns that console is ignored', async () => {
    sink = await startOtlpSink();
    const { logger, lines } = capture();
    sdk = await startTracing({ OTEL_TRACES_EXPORTER: 'otlp,console' }, { nodeId: 'n1', logger });
    expect(sdk).toBeDefined();
    expect(tracingOn).toBe(true);
    expect(lines.find((l) => l.level === 40)?.msg).toMatch(/"console" ignored/);
  });

  it('shuts down within its budget when the collector accepts and never answers', async () => {
    // A blackhole collector: it takes the connection and the request, and says nothing.
    const sockets = new Set<Socket>();
    const blackhole: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', () => {});
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          blackhole.close(() => resolve());
        }),
    );
    const { port } = blackhole.address() as { port: number };
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', `http://127.0.0.1:${port}`);
    const { logger, lines } = capture();
    sdk = await startTracing(process.env, { nodeId: 'n1', logger, shutdownBudgetMs: 400 });
    for (let i = 0; i < 10; i++) endSpan(startSpanFrom(undefined, `held ${i}`, SpanKind.INTERNAL, {}));
    const started = performance.now();
    await expect(sdk!.shutdown()).resolves.toBeUndefined();
    const tookMs = performance.now() - started;
    expect(tookMs).toBeGreaterThanOrEqual(350);
    expect(tookMs).toBeLessThan(2_000); // the exporter's own timeout is 10 s
    expect(sockets.size).toBeGreaterThan(0); // the export did reach the blackhole
    expect(lines.some((l) => l.level === 40 && /did not take the last spans in time/.test(l.msg))).toBe(true);
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
    endSpan(startSpanFrom(undefined, 'probe', SpanKind.INTERNAL, { answer: 42, long: 'x'.repeat(5_000) }));
    await sdk!.shutdown();
    expect(tracingOn).toBe(false);
    expect(sink.spans).toHaveLength(1);
    expect(sink.spans[0]).toMatchObject({ name: 'probe', attributes: { answer: 42 } });
    // Attribute values are bounded (a URL path, a message kind from outside).
    expect(sink.spans[0]!.attributes['long']).toBe('x'.repeat(256));
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
    const { logger, lines } = capture();
    sdk = await startTracing(process.env, { nodeId: 'n1', logger });
    endSpan(startSpanFrom(undefined, 'lost', SpanKind.INTERNAL, {}));
    await expect(sdk!.shutdown()).resolves.toBeUndefined();
    await vi.waitFor(() => expect(lines.some((l) => l.level >= 40 && l.msg.startsWith('tracing:'))).toBe(true));
  });
});
