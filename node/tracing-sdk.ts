/**
 * The OpenTelemetry SDK, started from the standard OTEL_* variables: a NodeTracerProvider with a
 * batch span processor and an OTLP/HTTP exporter (protobuf or JSON), the W3C trace-context
 * propagator and the async-local-storage context manager. The only module that imports the SDK;
 * everything else uses `@opentelemetry/api` through runtime/tracing.ts.
 */
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { LogThrottle } from '../runtime/log-throttle.ts';
import { createRootLogger, type Logger } from '../runtime/logger.ts';
import { setTracing } from '../runtime/tracing.ts';
import { ConfigError } from './config.ts';

/** A started tracing SDK: flushes and stops its exporter on shutdown. */
export interface TracingSdk {
  shutdown(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** `service.name` when OTEL_SERVICE_NAME (and OTEL_RESOURCE_ATTRIBUTES) name none. */
export const DEFAULT_SERVICE_NAME = 'iot-actor-runtime';
/** The resource attribute naming this node (the cluster's node id). */
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';

/** What the OTEL_* variables ask for: nothing, or traces over OTLP/HTTP with this encoding. */
export type TracingPlan =
  { readonly on: false; readonly why: string } | { readonly on: true; readonly protocol: 'http/protobuf' | 'http/json' };

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
};

/**
 * Decides from the variables alone, throwing ConfigError on a value this node cannot honour (it
 * stops at start with a clear line rather than run without the traces ops asked for):
 * OTEL_SDK_DISABLED=true → off; OTEL_TRACES_EXPORTER `otlp` → on, `none` → off, unset → on only
 * when an OTLP endpoint is set; protocol `http/protobuf` (default) or `http/json`, `grpc` refused.
 */
export function tracingPlan(env: Env): TracingPlan {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { on: false, why: 'OTEL_SDK_DISABLED=true' };
  const exporters = value(env, 'OTEL_TRACES_EXPORTER')
    ?.split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  if (exporters === undefined || exporters.length === 0) {
    if (value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') === undefined && value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') === undefined)
      return { on: false, why: 'no OTEL_TRACES_EXPORTER and no OTLP endpoint' };
  } else {
    const unsupported = exporters.filter((e) => e !== 'otlp' && e !== 'none');
    if (unsupported.length > 0)
      throw new ConfigError(`OTEL_TRACES_EXPORTER=${env['OTEL_TRACES_EXPORTER']}: only "otlp" or "none" are supported`);
    if (!exporters.includes('otlp')) return { on: false, why: 'OTEL_TRACES_EXPORTER=none' };
  }
  const protocolVar =
    value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL';
  const protocol = value(env, protocolVar) ?? 'http/protobuf';
  if (protocol === 'http/protobuf' || protocol === 'http/json') return { on: true, protocol };
  if (protocol === 'grpc')
    throw new ConfigError(
      `${protocolVar}=grpc is not supported: use http/protobuf (default) or http/json, and the collector's OTLP/HTTP port (4318)`,
    );
  throw new ConfigError(`${protocolVar}=${protocol}: use http/protobuf (default) or http/json`);
}

/** The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (default parentbased_always_on); ConfigError on anything else. */
export function samplerOf(env: Env): Sampler {
  const name = value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  const ratio = (): number => {
    const raw = value(env, 'OTEL_TRACES_SAMPLER_ARG');
    if (raw === undefined) return 1;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG=${raw} is not a ratio in 0..1`);
    return n;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    default:
      throw new ConfigError(
        `OTEL_TRACES_SAMPLER=${name}: use always_on, always_off, traceidratio, parentbased_always_on (default), parentbased_always_off or parentbased_traceidratio`,
      );
  }
}

/**
 * OTEL_RESOURCE_ATTRIBUTES (`key=value,…`, percent-encoded) as attributes; ConfigError naming
 * the bad entry (the SDK's own detector would drop the whole variable silently).
 */
export function resourceAttributesOf(env: Env): Record<string, string> {
  const raw = value(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const parts = entry.split('=');
    const bad = (why: string): ConfigError => new ConfigError(`OTEL_RESOURCE_ATTRIBUTES entry "${entry}": ${why}`);
    if (parts.length !== 2) throw bad('expected key=value (percent-encode "," and "=")');
    let key: string;
    let val: string;
    try {
      key = decodeURIComponent(parts[0]!.trim());
      val = decodeURIComponent(parts[1]!.trim());
    } catch {
      throw bad('bad percent-encoding');
    }
    if (key === '') throw bad('empty key');
    out[key] = val;
  }
  return out;
}

/**
 * The SDK's own diagnostics (an unreachable collector, a refused export) as pino lines at warn
 * and above, at most 10 per minute: exporting never stops the node, and a collector that is down
 * says so without flooding the log.
 */
function diagLoggerOf(log: Logger): DiagLogger {
  const throttle = new LogThrottle(10, 60_000);
  const line =
    (level: 'warn' | 'error') =>
    (message: string, ...args: unknown[]): void => {
      const suppressed = throttle.admit();
      if (suppressed === undefined) return;
      const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      log[level]({ detail: detail === '' ? undefined : detail.slice(0, 500), suppressed }, `tracing: ${message}`);
    };
  const ignore = (): void => {};
  return { error: line('error'), warn: line('warn'), info: ignore, debug: ignore, verbose: ignore };
}

/**
 * Starts the SDK when the OTEL_* variables ask for traces; undefined otherwise (nothing of
 * OpenTelemetry runs then: the runtime's switch stays off). `env` decides whether and how; the
 * exporter and the batch processor read their own tuning (endpoint, headers, timeouts, OTEL_BSP_*)
 * from the process environment, as the SDK documents. Throws ConfigError on a value it cannot honour.
 * @param resource nodeId becomes `service.instance.id`; logger receives the SDK's warnings (default: a root pino logger).
 */
export async function startTracing(
  env: Env,
  resource: { readonly nodeId: string; readonly logger?: Logger },
): Promise<TracingSdk | undefined> {
  const plan = tracingPlan(env);
  if (!plan.on) return undefined;
  const sampler = samplerOf(env);
  const attributes = resourceAttributesOf(env);
  const serviceName = value(env, 'OTEL_SERVICE_NAME') ?? attributes[ATTR_SERVICE_NAME] ?? DEFAULT_SERVICE_NAME;
  const log = (resource.logger ?? createRootLogger({ level: value(env, 'LOG_LEVEL') ?? 'info', base: { node: resource.nodeId } })).child({
    component: 'tracing',
  });
  diag.setLogger(diagLoggerOf(log), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  const exporter: SpanExporter = plan.protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtoExporter();
  const provider = new NodeTracerProvider({
    // The node id names the instance: OTEL_RESOURCE_ATTRIBUTES cannot make two nodes look like one.
    resource: defaultResource().merge(
      resourceFromAttributes({ ...attributes, [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_INSTANCE_ID]: resource.nodeId }),
    ),
    sampler,
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  setTracing(true);
  log.info({ protocol: plan.protocol, serviceName }, 'tracing on: spans go to the OTLP endpoint');
  let stopped: Promise<void> | undefined;
  return {
    shutdown: () =>
      (stopped ??= (async () => {
        setTracing(false);
        try {
          // Flushes what the batch processor holds; a collector that is gone only costs its timeout.
          await provider.shutdown();
        } catch (err) {
          log.warn({ err }, 'tracing: flushing the last spans failed');
        }
      })()),
  };
}
