/** Placeholder (issue 14, tracing helper replaces it): the OpenTelemetry SDK, started from the standard OTEL_* variables. */

/** A started tracing SDK: flushes and stops its exporter on shutdown. */
export interface TracingSdk {
  shutdown(): Promise<void>;
}

/** Starts the SDK when the OTEL_* variables ask for traces; undefined otherwise. */
export async function startTracing(
  env: Readonly<Record<string, string | undefined>>,
  resource: { readonly nodeId: string },
): Promise<TracingSdk | undefined> {
  void env;
  void resource;
  return undefined;
}
