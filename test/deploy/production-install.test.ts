/**
 * What the image runs, without the image: the compiled build (dist/) installed elsewhere with
 * production dependencies only (`npm ci --omit=dev`, as deploy/Dockerfile's deps stage), started
 * with `node dist/node/main.js` against a private Redis, and smoke-tested over HTTP, hub gRPC and
 * the metrics port, and for the files it reads at run time (Swagger UI from swagger-ui-dist, the
 * admin console from dist/). Proves no dev dependency (tsx, TypeScript) is needed at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HubClient } from '../../tools/hub-client/hub-client.ts';
import { buildCompiled } from '../../tools/process/compiled-build.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';
import { parseDockerfile, readDeployFile } from './deploy-files.ts';

const ADMIN = 'admin-token-of-the-install-test';
const DEVICES = [{ deviceId: 'motion1', type: 'motion_sensor', capabilities: ['motion'] }];

let dir: string;
let redis: TestRedis;
let node: ChildProcess;
let exited: Promise<number | null>;
let out = '';
let http: string;
let grpc: string;
let metricsPort: number;

/** Runs a command in the install directory; rejects with its output on a non-zero exit. */
function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Only what a container would have: no NODE_OPTIONS (a test runner's loaders), no dev tooling on the way. */
const bareEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...extra });

/** The node's pino start line (`msg: "listening"`), once it is printed. */
function startLine(): { http: string; grpc: string } | undefined {
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; http?: string; grpc?: string };
    if (entry.msg === 'listening' && entry.http && entry.grpc) return { http: entry.http, grpc: entry.grpc };
  }
  return undefined;
}

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${http}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  await buildCompiled();
  dir = mkdtempSync(join(tmpdir(), 'iot-install-'));
  for (const entry of ['dist', 'package.json', 'package-lock.json'])
    cpSync(join(PACKAGE_ROOT, entry), join(dir, entry), { recursive: true });
  // From the local npm cache (CI's `npm ci` filled it); no install scripts, as in the image.
  const install = await run(
    'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
    { ...process.env, NODE_ENV: 'production' },
    120_000,
  );
  if (install.code !== 0) throw new Error(`npm ci --omit=dev failed (${install.code}):\n${install.output}`);

  redis = await startTestRedis();
  metricsPort = await freePort();
  node = spawn(process.execPath, ['dist/node/main.js'], {
    cwd: dir,
    env: bareEnv({
      NODE_ENV: 'production',
      NODE_ID: 'installed',
      HTTP_PORT: '0',
      GRPC_PORT: '0',
      PEER_PORT: '0',
      METRICS_PORT: String(metricsPort),
      REDIS_URL: redis.url,
      CLUSTER: redis.cluster,
      ADMIN_TOKEN: ADMIN,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  node.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  node.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  exited = new Promise((resolve) => node.once('exit', (code) => resolve(code)));
  const addresses = await vi.waitFor(
    () => {
      if (node.exitCode !== null) throw new Error(`the node exited with code ${node.exitCode}:\n${out}`);
      const started = startLine();
      if (!started) throw new Error(`no start line yet:\n${out}`);
      return started;
    },
    { timeout: 30_000, interval: 100 },
  );
  http = `http://${addresses.http}`;
  grpc = addresses.grpc;
}, 300_000);

afterAll(async () => {
  if (node && node.exitCode === null) {
    node.kill('SIGKILL');
    await exited;
  }
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the compiled build with production dependencies only', () => {
  it('installs without tsx, TypeScript or the test tools', () => {
    for (const dev of ['tsx', 'typescript', 'vitest', 'esbuild']) expect(existsSync(join(dir, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(join(dir, 'node_modules', 'ioredis'))).toBe(true);
  });

  it('serves /healthz and /readyz, takes a hub report over gRPC to a durable ack, and exposes /metrics', async () => {
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    await vi.waitFor(async () => expect((await fetch(`${http}/readyz`)).status).toBe(200), { timeout: 20_000, interval: 100 });

    expect((await admin('PUT', '/v1/homes/installed-home', { name: 'Flat', timezone: 'UTC' })).status).toBeLessThan(300);
    const hub = await admin('POST', '/v1/homes/installed-home/hubs', { hubId: 'hub1' });
    expect(hub.status).toBe(201);
    const client = new HubClient(grpc, hub.body.secret);
    try {
      client.hello('hub1', 'installed-home', DEVICES);
      expect(await client.welcome()).toMatchObject({ node_id: 'installed' });
      client.reports([{ seq: 1, device: 'motion1', attributes: { motion: true } }]);
      expect(await client.ackAtLeast(1)).toBeGreaterThanOrEqual(1);
    } finally {
      client.close();
    }

    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^iot_hub_reports_total(\{[^}]*\})? [1-9]/m);
  });

  it('serves the files it reads at run time: /docs with its Swagger UI bundle, the admin console page and its scripts', async () => {
    /** GETs `path`, expects 200 and the bytes of `file` in the install (fetch undoes any gzip). */
    const servesFile = async (path: string, file: string): Promise<string> => {
      const res = await fetch(`${http}${path}`);
      expect(res.status, path).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.equals(readFileSync(join(dir, file))), `${path} = ${file}`).toBe(true);
      return body.toString('utf8');
    };
    const docs = await fetch(`${http}/docs`);
    expect(docs.status).toBe(200);
    const bundle = /<script src="\/docs\/assets\/(swagger-ui[\w.-]*\.js)"/.exec(await docs.text())?.[1];
    expect(bundle, 'the /docs page loads a swagger-ui script').toBeDefined();
    await servesFile(`/docs/assets/${bundle}`, `node_modules/swagger-ui-dist/${bundle}`);

    const page = await servesFile('/admin', 'dist/edge-api/admin-console/static/index.html');
    const script = /<script[^>]* src="\/admin\/assets\/([\w-]+\.js)"/.exec(page)?.[1];
    expect(script, 'the admin console page loads a script').toBeDefined();
    await servesFile(`/admin/assets/${script}`, `dist/edge-api/admin-console/static/${script}`);
  });

  it("passes the image's HEALTHCHECK command, which fails when nothing answers", async () => {
    const healthcheck = parseDockerfile(readDeployFile('Dockerfile'))
      .at(-1)!
      .instructions.find((i) => i.keyword === 'HEALTHCHECK')!.args;
    const [command, ...args] = JSON.parse(/CMD (\[.*\])$/.exec(healthcheck)![1]!) as string[];
    expect(command).toBe('node');
    const port = new URL(http).port;
    expect(await run(process.execPath, args, bareEnv({ HTTP_PORT: port }), 10_000)).toMatchObject({ code: 0 });
    const closed = String(await freePort()); // nothing listens there
    expect(await run(process.execPath, args, bareEnv({ HTTP_PORT: closed }), 10_000)).toMatchObject({ code: 1 });
  });

  it('starts its tools (ring, doctor) from the same install', async () => {
    for (const tool of ['dist/tools/ring-cli.js', 'dist/tools/doctor.js']) {
      const help = await run(process.execPath, [tool, '--help'], bareEnv({ NODE_ENV: 'production' }), 30_000);
      expect(help, tool).toMatchObject({ code: 0, output: expect.stringMatching(/usage/i) });
    }
  });

  it('drains and exits 0 on SIGTERM, having printed only JSON log lines', async () => {
    node.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = out.split('\n').filter((l) => l !== '');
    expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
  }, 60_000);
});
