/**
 * The HTTP load generator (its own process): `concurrency` loops, each on its own keep-alive
 * connection, issue GETs back to back for `warmupSeconds` (not recorded) and then `seconds`
 * (recorded: completed requests, status codes, latency in an HDR histogram).
 *
 * It speaks HTTP/1.1 over raw sockets with prebuilt request bytes and a minimal response parser
 * (status line, Content-Length or chunked body), as wrk and autocannon do: the `node:http`
 * client costs more CPU per request than a raw server does to answer it, so on a small machine
 * it would measure itself rather than the servers.
 */
import { connect, type Socket } from 'node:net';
import { LatencyRecorder } from '../../harness/hdr.ts';
import { runAsWorker, workerInput } from '../../harness/worker-process.ts';

export interface LoadInput {
  readonly port: number;
  readonly paths: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
  readonly concurrency: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface LoadOutput {
  readonly requests: number;
  readonly seconds: number;
  readonly perSec: number;
  readonly histogram: string;
  /** Responses by status code (recorded phase), plus `error` for transport failures. */
  readonly statuses: Readonly<Record<string, number>>;
  /** Body size of the last recorded response. */
  readonly bodyBytes: number;
  /** Connections opened (1 per loop unless the server closed some). */
  readonly connections: number;
}

interface Response {
  readonly status: number;
  readonly bodyBytes: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

/** Parses one complete response at the start of `buf`: its status, body size and total length, or undefined if incomplete. */
function parseResponse(buf: Buffer): { res: Response; length: number } | undefined {
  const headEnd = buf.indexOf(CRLFCRLF);
  if (headEnd < 0) return undefined;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (cl) {
    const len = Number(cl[1]);
    if (buf.length < bodyStart + len) return undefined;
    return { res: { status, bodyBytes: len }, length: bodyStart + len };
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    let at = bodyStart;
    let bytes = 0;
    for (;;) {
      const lineEnd = buf.indexOf(CRLF, at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
      const next = lineEnd + 2 + size + 2;
      if (buf.length < next) return undefined;
      if (size === 0) return { res: { status, bodyBytes: bytes }, length: next };
      bytes += size;
      at = next;
    }
  }
  return { res: { status, bodyBytes: 0 }, length: bodyStart }; // no body (304, 204)
}

/** One keep-alive connection with at most one request in flight. */
class Connection {
  private socket!: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((res: Response) => void) | undefined;
  opened = 0;

  constructor(private readonly port: number) {
    this.open();
  }

  request(bytes: Buffer): Promise<Response> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private open(): void {
    this.opened++;
    this.buf = Buffer.alloc(0);
    const socket = connect({ port: this.port, host: '127.0.0.1', noDelay: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      const parsed = parseResponse(this.buf);
      if (!parsed) return;
      this.buf = this.buf.subarray(parsed.length);
      const w = this.waiting;
      this.waiting = undefined;
      w?.(parsed.res);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket !== socket) return;
      const w = this.waiting;
      this.waiting = undefined;
      this.open(); // the next request goes on a new connection
      w?.({ status: -1, bodyBytes: 0 });
    });
  }
}

runAsWorker(async () => {
  const input = workerInput<LoadInput>();
  const extra = Object.entries(input.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const requests = input.paths.map((p) => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${input.port}\r\n${extra}\r\n`, 'latin1'));
  const conns = Array.from({ length: input.concurrency }, () => new Connection(input.port));
  const hist = LatencyRecorder.create();
  const statuses: Record<string, number> = {};
  let recording = false;
  let count = 0;
  let bodyBytes = 0;
  let measuredFrom = 0;
  let measuredTo = 0;

  const t0 = performance.now();
  const end = t0 + (input.warmupSeconds + input.seconds) * 1000;
  const loop = async (l: number): Promise<void> => {
    const conn = conns[l]!;
    for (let i = l; ; i += input.concurrency) {
      const start = performance.now();
      if (start >= end) return;
      const res = await conn.request(requests[i % requests.length]!);
      const done = performance.now();
      if (recording && start >= measuredFrom) {
        hist.record(done - start);
        count++;
        bodyBytes = res.bodyBytes;
        const key = res.status < 0 ? 'error' : String(res.status);
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (done > measuredTo) measuredTo = done;
      }
    }
  };
  const switchOn = setTimeout(() => {
    measuredFrom = performance.now();
    recording = true;
  }, input.warmupSeconds * 1000);
  await Promise.all(conns.map((_, l) => loop(l)));
  clearTimeout(switchOn);
  const connections = conns.reduce((a, c) => a + c.opened, 0);
  for (const c of conns) c.close();
  const seconds = (measuredTo - measuredFrom) / 1000;
  return {
    requests: count,
    seconds,
    perSec: seconds > 0 ? count / seconds : 0,
    histogram: hist.encode(),
    statuses,
    bodyBytes,
    connections,
  } satisfies LoadOutput;
});
