/**
 * The ingest baseline: a raw grpc-js `HubIngress` server with the same proto and message shapes as
 * the node and no runtime behind it — `hello` gets a `welcome` with the same credit window, every
 * report batch is acked at once (cumulative ack of its last seq). Runs as its own process, like a
 * node, so the load hubs measure the same path minus our runtime.
 *
 * As a script: `node dist/bench/harness/echo-server.js <window>` (or the source under tsx) prints
 * `echo listening grpc=HOST:PORT`; `startEchoServer` starts it in the flavour of its caller.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { loadProto } from '../../protos/load-proto.ts';
import { scriptEntry } from '../../tools/process/script-entry.ts';

type HubMessage = { hello?: unknown; reports?: { items: { seq: string }[] }; command_result?: unknown; ping?: unknown };

function serve(window: number): Promise<number> {
  const proto = loadProto('hub.proto') as unknown as { iot: { hub: { v1: { HubIngress: { service: ServiceDefinition } } } } };
  const server = new Server({ 'grpc.max_receive_message_length': 1 << 20 });
  server.addService(proto.iot.hub.v1.HubIngress.service, {
    Connect: (call: ServerDuplexStream<HubMessage, unknown>) => {
      call.on('data', (m: HubMessage) => {
        if (m.hello) call.write({ welcome: { node_id: 'echo', window, last_durable_seq: '0' } });
        else if (m.reports) {
          const last = m.reports.items.at(-1);
          if (last) call.write({ ack: { up_to_seq: last.seq } });
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

export interface EchoServer {
  readonly address: string;
  stop(): Promise<void>;
}

/** Starts the echo server as a child process; resolves once it listens. */
export function startEchoServer(window: number): Promise<EchoServer> {
  const entry = scriptEntry('bench/harness/echo-server.ts');
  const child: ChildProcess = spawn(process.execPath, [...entry.execArgv, entry.file, String(window)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`echo server did not start within 20 s: ${out}`));
    }, 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /echo listening grpc=(\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        address: m[1]!,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`echo server exited (${code}): ${out}`));
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const window = Number(process.argv[2] ?? 1000);
  serve(window).then(
    (port) => process.stdout.write(`echo listening grpc=127.0.0.1:${port}\n`),
    (err: unknown) => {
      process.stderr.write(`echo server failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
  process.on('SIGTERM', () => process.exit(0));
}
