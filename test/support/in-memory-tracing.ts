/** An in-process OpenTelemetry SDK for tests: spans kept in memory, the runtime's switch on while it runs. */
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type Sampler } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { vi, type MockInstance } from 'vitest';
import { setTracing } from '../../runtime/tracing.ts';

export interface InMemoryTracing {
  /** Spans ended so far, in the order they ended. */
  spans(): ReadableSpan[];
  /** The ended span named `name` (the first one), or a thrown error listing what there is. */
  span(name: string): ReadableSpan;
  /** Turns the switch off and unregisters the SDK (the API falls back to its no-op implementations). */
  stop(): Promise<void>;
}

/**
 * Registers a provider with a synchronous in-memory exporter and turns tracing on. `sampler`:
 * default the SDK's (parent-based always-on).
 */
export function startInMemoryTracing(opts: { readonly sampler?: Sampler } = {}): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(opts.sampler === undefined ? {} : { sampler: opts.sampler }),
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  setTracing(true);
  const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
  return {
    spans,
    span(name) {
      const found = spans().find((s) => s.name === name);
      if (!found)
        throw new Error(
          `no span "${name}"; ended: ${
            spans()
              .map((s) => s.name)
              .join(', ') || 'none'
          }`,
        );
      return found;
    },
    async stop() {
      setTracing(false);
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** The parent span id of `span` (undefined for a root span). */
export const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

/**
 * Spies on every OpenTelemetry API call a traced path makes (context, span lookup, tracer,
 * propagation): a path with tracing off must call none of them.
 */
export function spyOnTracingApi(): MockInstance[] {
  return [
    vi.spyOn(context, 'active'),
    vi.spyOn(context, 'with'),
    vi.spyOn(context, 'bind'),
    vi.spyOn(trace, 'getSpan'),
    vi.spyOn(trace, 'getTracer'),
    vi.spyOn(trace, 'setSpanContext'),
    vi.spyOn(propagation, 'inject'),
    vi.spyOn(propagation, 'extract'),
  ] as MockInstance[];
}
