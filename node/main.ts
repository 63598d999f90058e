/**
 * `npm start`: one node from environment variables. Every line it prints is pino JSON on stdout:
 * the start line (`msg: "listening"`), a generated admin token, shutdown, and one fatal line
 * (level 60, with a stable `code`) when it cannot start. SIGTERM stops it cleanly.
 *
 * Exit codes: 0 stopped by a signal; 2 a configuration error (CONFIG_INVALID) or a port held by
 * another process (PORT_TAKEN), which a restart cannot fix; 1 any other failure.
 */
import { setLogger } from '@grpc/grpc-js';
import { format } from 'node:util';
import { createRootLogger, type Logger } from '../runtime/logger.ts';
import { ConfigError, loadConfig } from './config.ts';
import { PortTakenError } from './port-taken-error.ts';
import { startNode } from './start-node.ts';
import { startTracing, type TracingSdk } from './tracing-sdk.ts';

/**
 * The process's own lines (start, token, shutdown, fatal) print at any LOG_LEVEL: supervisors,
 * scripts and the test tools wait for the start line. The node's components log through the
 * logger startNode makes at LOG_LEVEL.
 */
const out = createRootLogger({ level: 'info' }).child({ component: 'main' });

/** Output that would otherwise be plain text on stderr becomes JSON lines too. */
function routeLibraryOutput(log: Logger): void {
  // grpc-js writes its errors (and, with GRPC_VERBOSITY, more) through console.error.
  const grpc = log.child({ component: 'grpc' }, { level: 'trace' });
  setLogger({
    error: (...args: unknown[]) => grpc.error(format(...args)),
    info: (...args: unknown[]) => grpc.info(format(...args)),
    debug: (...args: unknown[]) => grpc.debug(format(...args)),
  });
  // Node prints process warnings (deprecations, MaxListenersExceeded, ...) itself through a default
  // 'warning' listener; replaced by one that logs them.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn({ err: warning }, `${warning.name}: ${warning.message}`));
  // As Node's default (a stack on stderr, exit 1), as one fatal line. An unhandled rejection lands
  // here too (Node's default `--unhandled-rejections=throw`).
  process.on('uncaughtException', (err) => {
    log.fatal({ err, code: 'UNCAUGHT' }, `uncaught exception: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}

async function main(): Promise<void> {
  routeLibraryOutput(out);
  const config = loadConfig();
  const log = out.child({ node: config.nodeId });
  const tracing = await startTracing(process.env, { nodeId: config.nodeId });
  let node;
  try {
    node = await startNode(config);
  } catch (err) {
    await shutdownTracing(tracing, log);
    throw err;
  }
  // The addresses others reach (as the cluster registers them: ADVERTISE_HOST, IPv6 bracketed, no 0.0.0.0), not the bind addresses.
  const { http, grpc, peer } = node.addresses;
  // The token line comes first: whoever waits for the start line then has both.
  if (node.adminTokenGenerated) log.info({ adminToken: node.adminToken }, 'admin token generated (set ADMIN_TOKEN to choose one)');
  log.info({ http, grpc, peer, store: node.durable ? 'redis' : 'memory (not durable)' }, 'listening');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'signal received: shutting down');
    node.close().then(
      async () => {
        await shutdownTracing(tracing, log);
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.fatal({ err, code: 'SHUTDOWN_FAILED' }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** Flushes the spans still buffered; a tracing backend that fails is logged, never a reason to fail the node's exit. */
async function shutdownTracing(tracing: TracingSdk | undefined, log: Logger): Promise<void> {
  try {
    await tracing?.shutdown();
  } catch (err) {
    log.warn({ err }, 'tracing shutdown failed: the last spans may be lost');
  }
}

main().catch((err: unknown) => {
  // Expected refusals get one line saying what to change, without a stack.
  if (err instanceof ConfigError) {
    out.fatal({ code: 'CONFIG_INVALID' }, `configuration error: ${err.message}`);
    process.exit(2);
  }
  if (err instanceof PortTakenError) {
    out.fatal({ code: err.code, variable: err.variable, host: err.host, port: err.port }, err.message);
    process.exit(2);
  }
  out.fatal({ err, code: 'START_FAILED' }, `failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
