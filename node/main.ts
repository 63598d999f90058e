/**
 * `npm start`: one node from environment variables. Every line it prints is pino JSON on stdout:
 * the start line (`msg: "listening"`), a generated admin token, shutdown, and one fatal line
 * (level 60, with a stable `code`) when it cannot start. SIGTERM or SIGINT stops it cleanly, also
 * while it is still starting; a second signal exits at once.
 *
 * Exit codes: 0 stopped by a signal; 2 a configuration error (CONFIG_INVALID) or a port that cannot
 * be bound (PORT_TAKEN, ADDRESS_NOT_AVAILABLE, PORT_FORBIDDEN), which a restart cannot fix; 130 / 143
 * a second SIGINT / SIGTERM cut the shutdown short; 1 any other failure (SHUTDOWN_TIMEOUT included).
 */
import { setLogger } from '@grpc/grpc-js';
import { format } from 'node:util';
import { pino } from 'pino';
import type { Logger } from '../runtime/logger.ts';
import { ConfigError, loadConfig, type NodeConfig } from './config.ts';
import { ListenError } from './port-taken-error.ts';
import { SHUTDOWN_AFTER_DRAIN_MS } from './shutdown-budget.ts';
import { abortedBy, startNode, type RunningNode } from './start-node.ts';
import { startTracing, type TracingSdk } from './tracing-sdk.ts';

/**
 * Where every line goes: stdout, written synchronously (never an asynchronous write in flight when
 * the process exits), through a 4 KB buffer so that busy lines (the access log: one per request)
 * cost one write(2) per ~16 lines instead of one each (2.8 µs a line against 8 µs, measured with
 * a pipe reader). The buffer is written when it fills, every 100 ms, at once for main's own lines
 * (start, token, shutdown, fatal: supervisors and scripts wait for them) and for errors, and by
 * the exit hook, so a line logged before `process.exit` is never lost.
 */
const destination = pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: 100 });
/** Lines written at once: level 50 and above (pino puts the level first), and main's own. */
const IMMEDIATE = /^\{"level":(?:[5-9]\d|\d{3})|"component":"main"/;
process.on('exit', () => {
  try {
    destination.flushSync();
  } catch {
    // stdout closed (EPIPE): nobody is left to read the last lines.
  }
});

/**
 * The process's one root logger: main's lines, the components', grpc-js's and the tracing SDK's
 * all go through it, so they come out in the order they were logged. Its level becomes LOG_LEVEL
 * once the configuration is read.
 */
const root: Logger = pino(
  { level: 'info', base: {} },
  {
    write(line: string): void {
      destination.write(line);
      if (IMMEDIATE.test(line)) destination.flushSync();
    },
  },
);

/**
 * The process's own lines (start, token, shutdown, fatal) print at any LOG_LEVEL: supervisors,
 * scripts and the test tools wait for the start line. Bound to the node's id once it is known.
 */
let log: Logger = pinnedChild(root, { component: 'main' }, 'info');
/** grpc-js's reports, at whatever GRPC_VERBOSITY lets through (a child of the root, not of main: one `component` key per line). */
let grpcLog: Logger = pinnedChild(root, { component: 'grpc' }, 'trace');
/** Node's process warnings. */
let warningLog: Logger = root;

/**
 * A child logging at `level` whatever the root's level becomes. (pino's `child(b, { level })` with
 * the parent's current level keeps following the parent: the level is set on the child itself.)
 */
function pinnedChild(parent: Logger, bindings: Record<string, unknown>, level: string): Logger {
  const child = parent.child(bindings);
  child.level = level;
  return child;
}

/** Exit code of a second signal: 128 + the signal's number, as a shell reports a process it killed. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

/**
 * The shutdown's bound: the drain (DRAIN_TIMEOUT_MS) plus what the steps after it may take
 * (SHUTDOWN_AFTER_DRAIN_MS, node/shutdown-budget.ts). Past it the process exits 1 with a fatal
 * line, before an orchestrator's SIGKILL (whose grace period exceeds it) would cut it without one.
 * Before the configuration is read nothing has started, and there is nothing to drain.
 */
let shutdownDeadlineMs = SHUTDOWN_AFTER_DRAIN_MS;

/** Aborts a start in progress when a signal arrives (startNode stops what it started). */
const startAbort = new AbortController();
let shuttingDown = false;
/** The started node and its tracing, once `startNode` resolved. */
let running: { readonly node: RunningNode; readonly tracing: TracingSdk | undefined } | undefined;

/** Logs `msg` as the process's last line (level 60, a stable code) and exits. Level 60 is written at once: the line is out. */
function exitFatal(fields: Record<string, unknown> & { code: string }, msg: string, exitCode: number): never {
  log.fatal(fields, msg);
  process.exit(exitCode);
}

/** Output that would otherwise be plain text on stderr becomes JSON lines too. */
function routeLibraryOutput(): void {
  // grpc-js writes its errors (and, with GRPC_VERBOSITY, more) through console.error.
  setLogger({
    error: (...args: unknown[]) => {
      const message = format(...args);
      // A failed bind: grpc-js reports it at error, then rejects the bind, and that rejection is
      // the node's fatal line (PORT_TAKEN, ...). Shown at LOG_LEVEL=debug only, so the fatal line stands alone.
      if (!/No address added out of total/.test(message)) grpcLog.error(message);
      else if (root.isLevelEnabled('debug')) grpcLog.debug(message);
    },
    info: (...args: unknown[]) => grpcLog.info(format(...args)),
    debug: (...args: unknown[]) => grpcLog.debug(format(...args)),
  });
  // Node prints process warnings (deprecations, MaxListenersExceeded, ...) itself through a default
  // 'warning' listener; replaced by one that logs them.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => warningLog.warn({ err: warning }, `${warning.name}: ${warning.message}`));
  // As Node's default (a stack on stderr, exit 1), as one fatal line. An unhandled rejection lands
  // here too (Node's default `--unhandled-rejections=throw`).
  process.on('uncaughtException', (err) =>
    exitFatal({ err, code: 'UNCAUGHT' }, `uncaught exception: ${err instanceof Error ? err.message : String(err)}`, 1),
  );
}

/**
 * Installed before anything starts: a signal during the start aborts it (exit 0 once what started
 * has stopped; during the ring join, once the node has joined and drained out again), a signal once
 * running closes the node. Either way the shutdown is bounded, and a second signal exits at once.
 * (Installed at all, also for PID 1 in a container: PID 1 has no default action for SIGTERM, so
 * without a handler the signal would be ignored until SIGKILL.)
 */
function handleSignals(): void {
  const onSignal = (signal: StopSignal): void => {
    if (shuttingDown) {
      log.warn({ signal }, `second ${signal}: exiting now, without finishing the shutdown`);
      process.exit(SIGNAL_EXIT_CODES[signal]);
    }
    shuttingDown = true;
    log.info({ signal }, 'signal received: shutting down');
    const deadlineMs = shutdownDeadlineMs;
    setTimeout(
      () => exitFatal({ code: 'SHUTDOWN_TIMEOUT', timeoutMs: deadlineMs }, `shutdown did not finish within ${deadlineMs} ms: exiting`, 1),
      deadlineMs,
    ).unref();
    if (running) void stop(running.node, running.tracing);
    else startAbort.abort(new Error(`${signal} during the start`));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

/** Closes the node, flushes the spans, prints "stopped" and exits 0. */
async function stop(node: RunningNode, tracing: TracingSdk | undefined): Promise<never> {
  try {
    await node.close();
  } catch (err) {
    exitFatal({ err, code: 'SHUTDOWN_FAILED' }, 'shutdown failed', 1);
  }
  await shutdownTracing(tracing);
  log.info('stopped');
  process.exit(0);
}

async function main(): Promise<void> {
  routeLibraryOutput();
  handleSignals();
  const config: NodeConfig = loadConfig();
  shutdownDeadlineMs = config.drainTimeoutMs + SHUTDOWN_AFTER_DRAIN_MS;
  root.level = config.logLevel;
  // Every logger from here on carries the node's id; the components log at LOG_LEVEL.
  const logger = root.child({ node: config.nodeId });
  log = log.child({ node: config.nodeId });
  grpcLog = grpcLog.child({ node: config.nodeId });
  warningLog = logger;
  const tracing = await startTracing(process.env, { nodeId: config.nodeId, logger });
  let node: RunningNode;
  try {
    startAbort.signal.throwIfAborted();
    node = await startNode(config, { logger, signal: startAbort.signal });
  } catch (err) {
    await shutdownTracing(tracing);
    // A signal aborted the start: startNode stopped what it had started. A start that failed on its
    // own is reported as the failure it is, also when a signal came while it was being undone.
    if (abortedBy(err, startAbort.signal)) {
      log.info({ startAborted: true }, 'stopped');
      process.exit(0);
    }
    throw err;
  }
  running = { node, tracing };
  // The addresses others reach (as the cluster registers them: ADVERTISE_HOST, IPv6 bracketed, no 0.0.0.0), not the bind addresses.
  const { http, grpc, peer } = node.addresses;
  // The token line comes first: whoever waits for the start line then has both.
  if (node.adminTokenGenerated) log.info({ adminToken: node.adminToken }, 'admin token generated (set ADMIN_TOKEN to choose one)');
  log.info({ http, grpc, peer, store: node.durable ? 'redis' : 'memory (not durable)' }, 'listening');
}

/** Flushes the spans still buffered; a tracing backend that fails is logged, never a reason to fail the node's exit. */
async function shutdownTracing(tracing: TracingSdk | undefined): Promise<void> {
  try {
    await tracing?.shutdown();
  } catch (err) {
    log.warn({ err }, 'tracing shutdown failed: the last spans may be lost');
  }
}

main().catch((err: unknown) => {
  // Expected refusals get one line saying what to change, without a stack.
  if (err instanceof ConfigError) exitFatal({ code: 'CONFIG_INVALID' }, `configuration error: ${err.message}`, 2);
  if (err instanceof ListenError) exitFatal({ code: err.code, variable: err.variable, host: err.host, port: err.port }, err.message, 2);
  exitFatal({ err, code: 'START_FAILED' }, `failed to start: ${err instanceof Error ? err.message : String(err)}`, 1);
});
