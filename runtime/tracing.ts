/**
 * The tracing switch the hot paths test, and the few helpers they call when it is on: trace
 * context as a compact carrier (a W3C `traceparent` string) that rides beside messages, effects
 * and peer items, and spans started from one. Only the OpenTelemetry API is used here; the SDK
 * (node/tracing-sdk.ts) turns the switch on. With it off nothing here runs: callers test
 * `tracingOn` (or a carrier they were given, which exists only when it is on) first.
 */
import {
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

export { SpanKind, SpanStatusCode, type Span };

/** The instrumentation scope of every span the runtime, cluster and edges start. */
export const TRACER_NAME = 'iot-actor-runtime';

/**
 * The active trace context as it travels inside the process and between nodes: a W3C
 * `traceparent` (`00-<trace id>-<span id>-<flags>`, 55 characters). Only sampled contexts are
 * carried (an unsampled one would only produce unrecorded children); `tracestate` is not carried.
 */
export type TraceCarrier = string;

/**
 * True once the SDK is started (node/tracing-sdk.ts): hot paths test this and nothing else when it
 * is false. A live binding (importers see changes): one load per test, no call.
 */
export let tracingOn = false;
let tracer: Tracer | undefined;

/** Turns tracing on (the SDK is registered) or off. Tests call it around an in-memory provider. */
export function setTracing(on: boolean): void {
  tracingOn = on;
  // Fetched afresh each time: a tracer from an earlier global provider (tests replace it) would keep exporting there.
  tracer = on ? trace.getTracer(TRACER_NAME) : undefined;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE = '00000000000000000000000000000000';
const INVALID_SPAN = '0000000000000000';

/** The carrier of `span`'s context, or undefined when it is not sampled. */
export function carrierOf(span: Span): TraceCarrier | undefined {
  const sc = span.spanContext();
  if ((sc.traceFlags & TraceFlags.SAMPLED) === 0 || sc.traceId === INVALID_TRACE) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-01`;
}

/** The carrier of the active context (the span the caller runs in), or undefined when there is none or it is not sampled. */
export function activeCarrier(): TraceCarrier | undefined {
  const span = trace.getSpan(context.active());
  return span === undefined ? undefined : carrierOf(span);
}

/** Length of a version-00 `traceparent`: anything else (e.g. a peer's megabyte string) is refused before the regex. */
const TRACEPARENT_LENGTH = 55;

/** The context a carrier names (a remote parent), or the root context when it is not a valid `traceparent`. */
export function contextOf(carrier: TraceCarrier | undefined): Context {
  const m = carrier === undefined || carrier.length !== TRACEPARENT_LENGTH ? null : TRACEPARENT.exec(carrier);
  if (!m || m[1] === INVALID_TRACE || m[2] === INVALID_SPAN) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true });
}

/**
 * Runs `fn` with the carrier's context active (the root context when there is none): what `fn`
 * sends (an ask, a peer item, an effect) carries it. Always sets a context, so a caller that runs
 * in some unrelated leftover context (a timer armed during another trace) does not leak it.
 */
export function runWithCarrier<T>(carrier: TraceCarrier | undefined, fn: () => T): T {
  return context.with(contextOf(carrier), fn);
}

/** Runs `fn` with `span` active. */
export function runInSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** `fn` bound to the context active now: for work that runs later from elsewhere (a message held for a shard being taken over). */
export function bindActive<F extends (...args: never[]) => unknown>(fn: F): F {
  return context.bind(context.active(), fn);
}

/** Starts a span whose parent is the carrier's context (a root span when there is none). Call only with tracing on. */
export function startSpanFrom(carrier: TraceCarrier | undefined, name: string, kind: SpanKind, attributes: Attributes): Span {
  return tracerOf().startSpan(name, { kind, attributes }, contextOf(carrier));
}

/**
 * Starts a new root span (its own trace, sampled by this node's sampler) linked to `linked`, a
 * context that came from outside (an HTTP client's `traceparent`): the caller's trace is related,
 * never the parent, so a client can neither force nor suppress sampling nor choose the trace id.
 * Call only with tracing on.
 */
export function startRootSpanLinkedTo(linked: Context, name: string, kind: SpanKind, attributes: Attributes): Span {
  const sc = trace.getSpanContext(linked);
  const links = sc !== undefined && isSpanContextValid(sc) ? [{ context: sc }] : undefined;
  return tracerOf().startSpan(name, { kind, attributes, root: true, links }, ROOT_CONTEXT);
}

/**
 * Starts a child of the active span, or returns undefined when no sampled span is active: work
 * that only continues a trace (a command written to a hub) never starts one of its own.
 */
export function startChildOfActive(name: string, kind: SpanKind, attributes: Attributes): Span | undefined {
  const active = context.active();
  const parent = trace.getSpan(active);
  if (parent === undefined || (parent.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return tracerOf().startSpan(name, { kind, attributes }, active);
}

/** Ends `span`, with an error status when `error` is given. */
export function endSpan(span: Span, error?: string): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}

/** The message kind of an actor message, for span names and attributes: its `type` when it is a string. */
export function messageKindOf(msg: unknown): string {
  const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type.slice(0, 64) : typeof msg;
}

/**
 * Starts the span of one actor step from the carrier its message came with: `step <kind> <message
 * kind>`, with the actor id, kind and message kind as attributes.
 */
export function startStepSpan(carrier: TraceCarrier, actorId: string, kind: string, msg: unknown): Span {
  const messageKind = messageKindOf(msg);
  return startSpanFrom(carrier, `step ${kind} ${messageKind}`, SpanKind.INTERNAL, {
    'iot.actor.id': actorId,
    'iot.actor.kind': kind,
    'iot.message.kind': messageKind,
  });
}

function tracerOf(): Tracer {
  return (tracer ??= trace.getTracer(TRACER_NAME));
}
