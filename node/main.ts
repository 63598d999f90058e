/** `npm start`: one node from environment variables; prints its id and ports; SIGTERM stops it cleanly. */
import { ConfigError, loadConfig } from './config.ts';
import { startNode } from './start-node.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const node = await startNode(config);
  // The addresses others reach (as the cluster registers them: IPv6 bracketed, no 0.0.0.0), not the bind addresses.
  const { http, grpc, peer } = node.addresses;
  const ports = [
    http === undefined ? undefined : `http=${http}`,
    grpc === undefined ? undefined : `grpc=${grpc}`,
    peer === undefined ? undefined : `peer=${peer}`,
  ].filter(Boolean);
  const store = node.durable ? 'redis' : 'memory (not durable)';
  // The token line comes first: whoever waits for the start line then has both.
  if (node.adminTokenGenerated) process.stdout.write(`admin token (generated, set ADMIN_TOKEN to choose one): ${node.adminToken}\n`);
  process.stdout.write(`node ${node.nodeId} listening ${ports.join(' ')} store=${store}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down\n`);
    node.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`configuration error: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
