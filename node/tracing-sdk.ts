/**
 * The OpenTelemetry SDK, started from the standard OTEL_* variables (node/tracing-plan.ts decides):
 * a NodeTracerProvider with a batch span processor and an OTLP/HTTP exporter (protobuf or JSON),
 * the W3C trace-context propagator and the async-local-storage context manager. The only module
 * that loads the SDK, and only when the plan is on (a dynamic import: a node with tracing off
 * neither loads nor pays for it); everything else uses `@opentelemetry/api` through
 * runtime/tracing.ts.
 */
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import { LogThrottle } from '../runtime/log-throttle.ts';
import { createRootLogger, type Logger } from '../runtime/logger.ts';
import { setTracing } from '../runtime/tracing.ts';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, logLevelOf, tracingPlan, type SamplerPlan } from './tracing-plan.ts';

/** A started tracing SDK: flushes and stops its exporter on shutdown. */
export interface TracingSdk {
  /** Flushes what is buffered, within the shutdown budget; never rejects. */
  shutdown(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Milliseconds shutdown waits for the last spans to reach the collector (and the longest one
 * export may take): a collector that accepts and never answers must not hold a draining node.
 */
export const DEFAULT_SHUTDOWN_BUDGET_MS = 3_000;
/** Longest attribute value (characters) a span keeps: a long URL path or message kind is cut, not exported whole. */
export const ATTRIBUTE_VALUE_LENGTH_LIMIT = 256;
/** The batch processor's own default export timeout (OTEL_BSP_EXPORT_TIMEOUT unset). */
const BSP_EXPORT_TIMEOUT_MS = 30_000;

/** The SDK classes a sampler plan needs (`@opentelemetry/sdk-trace-base`, loaded only when tracing is on). */
export type SamplerClasses = Pick<
  typeof import('@opentelemetry/sdk-trace-base'),
  'AlwaysOffSampler' | 'AlwaysOnSampler' | 'ParentBasedSampler' | 'TraceIdRatioBasedSampler'
>;

/** The SDK sampler of a plan. */
export function samplerFrom(plan: SamplerPlan, sdk: SamplerClasses): Sampler {
  switch (plan.name) {
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'traceidratio':
      return new sdk.TraceIdRatioBasedSampler(plan.ratio);
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(plan.ratio) });
  }
}

/** One diagnostic argument as text; never throws (a circular object or a BigInt has no JSON form). */
function describe(arg: unknown): string {
  if (arg instanceof Error) return arg.message;
  if (typeof arg === 'string') return arg;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    try {
      return String(arg);
    } catch {
      return '[unprintable]';
    }
  }
}

/**
 * The SDK's own diagnostics (an unreachable collector, a refused export) as pino lines at warn
 * and above, at most 10 per minute: exporting never stops the node, and a collector that is down
 * says so without flooding the log. It never throws (the SDK calls it from its own error paths).
 */
export function diagLoggerOf(log: Logger): DiagLogger {
  const throttle = new LogThrottle(10, 60_000);
  const line =
    (level: 'warn' | 'error') =>
    (message: string, ...args: unknown[]): void => {
      try {
        const suppressed = throttle.admit();
        if (suppressed === undefined) return;
        const detail = args.map(describe).join(' ');
        log[level]({ detail: detail === '' ? undefined : detail.slice(0, 500), suppressed }, `tracing: ${String(message)}`);
      } catch {
        // A diagnostic that cannot be written is dropped: the SDK's error path must not throw.
      }
    };
  const ignore = (): void => {};
  return { error: line('error'), warn: line('warn'), info: ignore, debug: ignore, verbose: ignore };
}

/** The batch processor's export timeout: OTEL_BSP_EXPORT_TIMEOUT (or its default), at most the shutdown budget. */
function exportTimeoutMs(env: Env, budgetMs: number): number {
  const raw = Number(env['OTEL_BSP_EXPORT_TIMEOUT']);
  const configured = Number.isFinite(raw) && raw > 0 ? raw : BSP_EXPORT_TIMEOUT_MS;
  return Math.min(configured, budgetMs);
}

/**
 * Starts the SDK when the OTEL_* variables ask for traces; undefined otherwise (the SDK is not
 * even loaded then, and the runtime's switch stays off). `env` decides whether and how; the
 * exporter and the batch processor read their own tuning (endpoint, headers, timeouts, OTEL_BSP_*)
 * from the process environment, as the SDK documents. Throws ConfigError on a value it cannot
 * honour; exporters it ignores are logged as warnings.
 * @param resource nodeId becomes `service.instance.id`; logger receives the SDK's warnings (default:
 *   a root pino logger); shutdownBudgetMs: how long shutdown may take (default 3 s).
 */
export async function startTracing(
  env: Env,
  resource: { readonly nodeId: string; readonly logger?: Logger; readonly shutdownBudgetMs?: number },
): Promise<TracingSdk | undefined> {
  const plan = tracingPlan(env);
  const logger = (): Logger =>
    (resource.logger ?? createRootLogger({ level: logLevelOf(env), base: { node: resource.nodeId } })).child({ component: 'tracing' });
  if (!plan.on) {
    if (plan.warnings.length > 0) {
      const log = logger();
      for (const w of plan.warnings) log.warn(w);
      log.warn({ why: plan.why }, 'tracing off: no supported exporter named');
    }
    return undefined;
  }
  const log = logger();
  for (const w of plan.warnings) log.warn(w);
  const budgetMs = resource.shutdownBudgetMs ?? DEFAULT_SHUTDOWN_BUDGET_MS;
  // Loaded here, not at the top: a node with tracing off never loads the SDK (+130–190 ms, +10 MB).
  const [core, base, node, resources, exporterModule] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    plan.protocol === 'http/json' ? import('@opentelemetry/exporter-trace-otlp-http') : import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  diag.setLogger(diagLoggerOf(log), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  const exporter = new exporterModule.OTLPTraceExporter();
  const provider = new node.NodeTracerProvider({
    // The node id names the instance: OTEL_RESOURCE_ATTRIBUTES cannot make two nodes look like one.
    resource: resources.defaultResource().merge(
      resources.resourceFromAttributes({
        ...plan.attributes,
        [ATTR_SERVICE_NAME]: plan.serviceName,
        [ATTR_SERVICE_INSTANCE_ID]: resource.nodeId,
      }),
    ),
    sampler: samplerFrom(plan.sampler, base),
    // Attribute values come from requests and hubs (a URL path, a message kind): bounded.
    spanLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LENGTH_LIMIT },
    spanProcessors: [new base.BatchSpanProcessor(exporter, { exportTimeoutMillis: exportTimeoutMs(env, budgetMs) })],
  });
  provider.register({ propagator: new core.W3CTraceContextPropagator() });
  setTracing(true);
  log.info({ protocol: plan.protocol, serviceName: plan.serviceName }, 'tracing on: spans go to the OTLP endpoint');
  let stopped: Promise<void> | undefined;
  return {
    shutdown: () =>
      (stopped ??= (async () => {
        setTracing(false);
        let timer: NodeJS.Timeout | undefined;
        const outOfTime = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(resolve, budgetMs, 'timeout');
        });
        // Flushes what the batch processor holds; a collector that is gone or silent costs at most the
        // budget. A failure after the budget ran out is still caught (never an unhandled rejection).
        const flushed = provider.shutdown().then(
          () => 'done' as const,
          (err: unknown) => {
            log.warn({ err }, 'tracing: flushing the last spans failed');
            return 'failed' as const;
          },
        );
        if ((await Promise.race([flushed, outOfTime])) === 'timeout')
          log.warn({ budgetMs }, 'tracing: the collector did not take the last spans in time; they are dropped');
        clearTimeout(timer);
      })()),
  };
}
