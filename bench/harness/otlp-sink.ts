/**
 * A tiny OTLP/HTTP trace receiver on loopback: answers every export with success. The benchmark
 * runs nodes with tracing on against it (spans are counted and discarded, so the collector costs
 * nothing measurable); tests ask it to keep what OTLP/JSON exports carry.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One span as an OTLP/JSON export carries it, with its resource's attributes. */
export interface ReceivedSpan {
  /** Hex trace id (32 characters). */
  readonly traceId: string;
  /** Hex span id (16 characters). */
  readonly spanId: string;
  /** Hex parent span id; undefined for a root span. */
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly resource: Readonly<Record<string, unknown>>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly status: number;
}

export interface OtlpSink {
  /** `http://127.0.0.1:<port>`: the value for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  /** Export requests received. */
  readonly requests: number;
  /** Spans received (kept only when `keep` was set). */
  readonly spans: readonly ReceivedSpan[];
  close(): Promise<void>;
}

/** OTLP/JSON ids are hex; tolerate base64 (the protobuf JSON mapping) too. */
function hexId(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return undefined;
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

interface JsonKeyValue {
  readonly key: string;
  readonly value?: Record<string, unknown>;
}

function attributesOf(list: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!Array.isArray(list)) return out;
  for (const kv of list as JsonKeyValue[]) {
    const v = kv.value ?? {};
    out[kv.key] = v['stringValue'] ?? v['boolValue'] ?? (v['intValue'] === undefined ? v['doubleValue'] : Number(v['intValue']));
  }
  return out;
}

/** The spans of one OTLP/JSON ExportTraceServiceRequest. */
export function spansOfExport(body: unknown): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const resourceSpans = (body as { resourceSpans?: unknown[] } | null)?.resourceSpans ?? [];
  for (const rs of resourceSpans as { resource?: { attributes?: unknown }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hexId(s['traceId']) ?? '',
          spanId: hexId(s['spanId']) ?? '',
          parentSpanId: hexId(s['parentSpanId']),
          name: String(s['name']),
          attributes: attributesOf(s['attributes']),
          resource,
          status: Number((s['status'] as { code?: unknown } | undefined)?.code ?? 0),
        });
      }
    }
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Starts the receiver on 127.0.0.1 (a free port). `keep`: decode OTLP/JSON exports and keep their
 * spans (tests); otherwise bodies are read and dropped (benchmarks, either protocol).
 */
export async function startOtlpSink(opts: { readonly keep?: boolean } = {}): Promise<OtlpSink> {
  let requests = 0;
  const spans: ReceivedSpan[] = [];
  const server: Server = createServer((req, res) => {
    readBody(req).then(
      (raw) => {
        requests++;
        if (opts.keep && req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          spans.push(...spansOfExport(JSON.parse(body.toString('utf8'))));
        }
        const json = req.headers['content-type']?.includes('json') ?? false;
        // An empty ExportTraceServiceResponse: `{}` in JSON, zero bytes in protobuf.
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : undefined);
      },
      () => {
        res.writeHead(400);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    spans,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
