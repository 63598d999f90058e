import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeProcess, type NodeProcess } from '../../../tools/process/node-process.ts';
import { runCli, type CliRun } from '../../support/run-cli.ts';

const ADMIN = 'admin-token-for-sim-test';
let node: NodeProcess;

beforeAll(async () => {
  node = await startNodeProcess({ NODE_ID: 'sim-node', ADMIN_TOKEN: ADMIN });
});

afterAll(async () => {
  await node.stop();
});

const runSim = (args: string[], env: Record<string, string> = { ADMIN_TOKEN: ADMIN }): Promise<CliRun> =>
  runCli('tools/hub-sim/hub-sim.ts', args, env);

describe('hub simulator (npm run hub:sim)', () => {
  it('provisions homes over HTTP, streams reports over gRPC, and every report is acked', async () => {
    const { code, out } = await runSim([
      '--hubs',
      '3',
      '--rate',
      '40',
      '--batch',
      '5',
      '--duration',
      '2',
      '--http',
      `http://127.0.0.1:${node.httpPort}`,
      '--grpc',
      `127.0.0.1:${node.grpcPort}`,
    ]);
    expect(code, out).toBe(0);
    const done = /done: \S+ sent=(\d+) acked=(\d+) .* errors=(\d+)/.exec(out);
    expect(done, out).not.toBeNull();
    const [, sent, acked, errors] = done!.map(Number);
    expect(sent).toBeGreaterThan(0);
    expect(acked).toBeGreaterThan(0);
    expect(acked).toBeLessThanOrEqual(sent!);
    expect(errors).toBe(0);
  });

  it('explains what is missing when it has no admin token', async () => {
    const child = await runSim([], { ADMIN_TOKEN: '' });
    expect(child.code).toBe(2);
    expect(child.out).toContain('admin token');
  });
});
