/**
 * What the standard OTEL_* variables ask of tracing, decided from the variables alone: whether it
 * is on, the OTLP encoding, the sampler, the resource attributes and the service name. No
 * OpenTelemetry SDK here: node/tracing-sdk.ts loads the SDK only when the plan is on, so a node
 * with tracing off never pays for loading it.
 */
import { ConfigError } from './config.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** `service.name` when OTEL_SERVICE_NAME (and OTEL_RESOURCE_ATTRIBUTES) name none. */
export const DEFAULT_SERVICE_NAME = 'iot-actor-runtime';
/** The standard resource attribute naming the service (the semantic conventions' ATTR_SERVICE_NAME). */
export const ATTR_SERVICE_NAME = 'service.name';
/** The resource attribute naming this node (the cluster's node id). */
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';

/** The standard samplers (OTEL_TRACES_SAMPLER values). */
export const SAMPLER_NAMES = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** A sampler as the variables name it; `ratio` (0..1) matters for the `traceidratio` ones only. */
export interface SamplerPlan {
  readonly name: SamplerName;
  readonly ratio: number;
}

/**
 * What the OTEL_* variables ask for. `warnings`: values ignored as the specification says
 * unsupported ones are (an exporter this node does not have), for the caller to log.
 */
export type TracingPlan =
  | { readonly on: false; readonly why: string; readonly warnings: readonly string[] }
  | {
      readonly on: true;
      readonly protocol: 'http/protobuf' | 'http/json';
      readonly sampler: SamplerPlan;
      /** OTEL_RESOURCE_ATTRIBUTES, decoded. */
      readonly attributes: Readonly<Record<string, string>>;
      readonly serviceName: string;
      readonly warnings: readonly string[];
    };

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
};

/** Why an exporter named in OTEL_TRACES_EXPORTER besides `otlp` is ignored. */
function ignoredExporter(name: string): string {
  return name === 'console'
    ? 'OTEL_TRACES_EXPORTER: "console" ignored (its output is not pino JSON: every line this node prints is)'
    : `OTEL_TRACES_EXPORTER: "${name}" is not supported here and is ignored (supported: otlp, none)`;
}

/**
 * Decides from the variables alone, throwing ConfigError on a value this node cannot honour (it
 * stops at start with a clear line rather than run without the traces ops asked for):
 * OTEL_SDK_DISABLED=true → off; OTEL_TRACES_EXPORTER a list containing `otlp` → on (the other
 * names warned about and ignored), `none` alone → off, a list of only unsupported names → warned
 * about and off (the specification ignores unsupported values); unset → on only when an OTLP
 * endpoint is set. Protocol `http/protobuf` (default) or `http/json`; `grpc` refused. When on, the
 * sampler and the resource attributes are checked too.
 */
export function tracingPlan(env: Env): TracingPlan {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { on: false, why: 'OTEL_SDK_DISABLED=true', warnings: [] };
  const exporters = value(env, 'OTEL_TRACES_EXPORTER')
    ?.split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  const warnings: string[] = [];
  if (exporters === undefined || exporters.length === 0) {
    if (value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') === undefined && value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') === undefined)
      return { on: false, why: 'no OTEL_TRACES_EXPORTER and no OTLP endpoint', warnings };
  } else {
    const others = [...new Set(exporters.filter((e) => e !== 'otlp' && e !== 'none'))];
    for (const e of others) warnings.push(ignoredExporter(e));
    if (!exporters.includes('otlp'))
      return { on: false, why: others.length === 0 ? 'OTEL_TRACES_EXPORTER=none' : 'OTEL_TRACES_EXPORTER names no otlp', warnings };
  }
  const protocolVar =
    value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL';
  const protocol = value(env, protocolVar) ?? 'http/protobuf';
  if (protocol === 'grpc')
    throw new ConfigError(
      `${protocolVar}=grpc is not supported: use http/protobuf (default) or http/json, and the collector's OTLP/HTTP port (4318)`,
    );
  if (protocol !== 'http/protobuf' && protocol !== 'http/json')
    throw new ConfigError(`${protocolVar}=${protocol}: use http/protobuf (default) or http/json`);
  const attributes = resourceAttributesOf(env);
  const serviceName = value(env, 'OTEL_SERVICE_NAME') ?? attributes[ATTR_SERVICE_NAME] ?? DEFAULT_SERVICE_NAME;
  return { on: true, protocol, sampler: samplerOf(env), attributes, serviceName, warnings };
}

/** The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (default parentbased_always_on); ConfigError on anything else. */
export function samplerOf(env: Env): SamplerPlan {
  const name = value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  if (!(SAMPLER_NAMES as readonly string[]).includes(name))
    throw new ConfigError(
      `OTEL_TRACES_SAMPLER=${name}: use always_on, always_off, traceidratio, parentbased_always_on (default), parentbased_always_off or parentbased_traceidratio`,
    );
  let ratio = 1;
  const raw = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (raw !== undefined && name.endsWith('traceidratio')) {
    ratio = Number(raw);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG=${raw} is not a ratio in 0..1`);
  }
  return { name: name as SamplerName, ratio };
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

/** The variable LOG_LEVEL as the node reads it (for the tracing logger when the caller gives none). */
export function logLevelOf(env: Env): string {
  return value(env, 'LOG_LEVEL') ?? 'info';
}
