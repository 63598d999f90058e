/**
 * HTTP shadow GET through a real node process (memory store), next to a raw Hono app and a raw
 * `node:http` server measured in the same run on the same machine. The load generator is its own
 * process (keep-alive connections, N concurrent loops); the node and each baseline run in their
 * own processes too, one at a time, so each gets the same share of the machine.
 */
import { startNodeProcess, type NodeProcess } from '../../tools/process/node-process.ts';
import type { ResilientHub } from '../../tools/hub-client/resilient-hub.ts';
import { climateHub } from '../harness/climate-hub.ts';
import { LatencyRecorder } from '../harness/hdr.ts';
import type { Figure, LatencySummary, Scenario, ScenarioContext, ScenarioResult } from '../harness/scenario.ts';
import { figure, fmt, warmedPhases, type FigureSpec } from '../harness/scenario-kit.ts';
import { runWorker, startServerWorker, type ChildHandle } from '../harness/worker-process.ts';
import type { LoadInput, LoadOutput } from './support/http-load-worker.ts';
import type { RawServerInput } from './support/raw-http-server.ts';

export interface HttpScenarioOptions {
  /** Concurrent request loops (keep-alive connections) of the load generator. Default 32 (smoke 8). */
  readonly concurrency?: number;
  /** Devices the hub creates; GETs rotate over them. Default 10. */
  readonly devices?: number;
}

const ADMIN = 'bench-http-admin-token-0123456789';
const HOME = 'bench-http';
const LOAD_WORKER = 'bench/scenarios/support/http-load-worker.ts';
const RAW_SERVER = 'bench/scenarios/support/raw-http-server.ts';
/** The edge's rate limits raised out of the way (the limiter still runs on every request; a 429 shows in the integrity counts). */
const LIFTED_LIMITS = { RATE_LIMIT_PER_TOKEN: '1000000000', RATE_LIMIT_PER_HOME: '1000000000', RATE_LIMIT_BURST: '1000000000' };

interface Measured {
  readonly name: string;
  readonly out: LoadOutput;
  readonly latency: LatencySummary;
}

/** SIGTERM, and SIGKILL if the node has not exited within 15 s (a hung shutdown must not hang the run). */
async function stopNode(node: NodeProcess): Promise<void> {
  const timer = setTimeout(() => node.child.kill('SIGKILL'), 15_000);
  try {
    await node.stop('SIGTERM');
  } finally {
    clearTimeout(timer);
  }
}

async function api(base: string, method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Creates the home, its hub and devices (hello + reports) and an app token; returns the token. */
async function provision(node: NodeProcess, devices: number): Promise<{ token: string; hub: ResilientHub }> {
  const base = `http://127.0.0.1:${node.httpPort}`;
  await api(base, 'PUT', `/v1/homes/${HOME}`, { name: 'HTTP bench home', timezone: 'UTC' });
  const { secret } = await api(base, 'POST', `/v1/homes/${HOME}/hubs`, { hubId: 'hub1' });
  const spec = { homeId: HOME, hubId: 'hub1', secret: secret as string, addresses: [`127.0.0.1:${node.grpcPort}`], first: 0 };
  // Every device reports once (and so exists with a reported value).
  const hub = climateHub(spec, devices, { total: devices, batch: devices, ratePerSec: Infinity });
  await hub.run(10_000);
  const { token } = await api(base, 'POST', '/v1/tokens', { homes: [HOME], scopes: ['read'] });
  return { token: token as string, hub };
}

export function createHttpScenario(options: HttpScenarioOptions = {}): Scenario {
  return {
    name: 'http',
    description: 'HTTP shadow GET req/s and latency through a real node, against raw Hono and raw node:http in the same run',
    async run(ctx: ScenarioContext): Promise<ScenarioResult> {
      const { seconds, warmupSeconds } = warmedPhases(ctx, { seconds: 1, warmup: 0.3 }, { divisor: 3, min: 1, max: 3 });
      const concurrency = options.concurrency ?? (ctx.smoke ? 8 : 32);
      const devices = options.devices ?? 10;
      const paths = Array.from({ length: devices }, (_, i) => `/v1/homes/${HOME}/devices/d${i}`);
      const bar = ctx.progress('http: node, node with access log, raw Hono, raw node:http', 4);

      const measure = async (name: string, port: number, headers: Record<string, string>): Promise<Measured> => {
        ctx.log(`http: ${name}: ${concurrency} connections, ${warmupSeconds} s warm-up + ${seconds} s`);
        const input: LoadInput = { port, paths, headers, concurrency, seconds, warmupSeconds };
        const out = await runWorker<LoadOutput>(LOAD_WORKER, input, { timeoutMs: (seconds + warmupSeconds) * 1000 + 60_000 });
        if (out.requests === 0) throw new Error(`http: no request to ${name} completed in the measured phase`);
        const m = { name, out, latency: LatencyRecorder.decode(out.histogram).summary(name) };
        ctx.log(
          `http: ${name}: ${fmt(out.perSec)} req/s, p50 ${m.latency.p50} ms, p99 ${m.latency.p99} ms, statuses ${JSON.stringify(out.statuses)}`,
        );
        return m;
      };

      let node: NodeProcess | undefined;
      let hub: ResilientHub | undefined;
      let raw: ChildHandle | undefined;
      try {
        // 1. The node under test, with a home, a hub, devices and an app token: once with
        // ACCESS_LOG=false, once with the access log on (the default: a JSON line per request).
        const measureNode = async (
          name: string,
          accessLog: boolean,
        ): Promise<{ m: Measured; body: string; etag: string; headers: Record<string, string> }> => {
          node = await startNodeProcess(
            { ADMIN_TOKEN: ADMIN, NODE_ID: 'bench-http', LOG_LEVEL: 'warn', ACCESS_LOG: String(accessLog), ...LIFTED_LIMITS },
            30_000,
          );
          const provisioned = await provision(node, devices);
          hub = provisioned.hub;
          const headers = { authorization: `Bearer ${provisioned.token}` };
          const sample = await fetch(`http://127.0.0.1:${node.httpPort}${paths[0]}`, { headers });
          const body = await sample.text();
          const etag = sample.headers.get('etag');
          if (sample.status !== 200 || etag === null)
            throw new Error(`shadow GET answered ${sample.status} (ETag ${String(etag)}): ${body}`);
          const m = await measure(name, node.httpPort, headers);
          hub.stop();
          hub = undefined;
          await stopNode(node);
          node = undefined;
          return { m, body, etag, headers };
        };
        const { m: viaNode, body, etag, headers } = await measureNode('node (shadow GET)', false);
        bar.update(1);
        const { m: withAccessLog } = await measureNode('node (shadow GET, access log on)', true);
        bar.update(2);

        // 2. The baselines: the same body and ETag from a raw Hono app and a raw node:http server.
        const baselines: Measured[] = [];
        for (const kind of ['hono', 'node-http'] as const) {
          const input: RawServerInput = { kind, body, etag };
          const server = await startServerWorker(RAW_SERVER, input);
          raw = server;
          baselines.push(await measure(kind === 'hono' ? 'raw Hono' : 'raw node:http', server.port, headers));
          await raw.stop();
          raw = undefined;
          bar.update(baselines.length + 2);
        }
        const [hono, nodeHttp] = baselines as [Measured, Measured];

        const non200 = (m: Measured): number => Object.entries(m.out.statuses).reduce((a, [s, n]) => (s === '200' ? a : a + n), 0);
        /** `m`'s req/s against `base`'s. */
        const throughput = (name: string, m: Measured, base: Measured, baseName: string): FigureSpec => ({
          name,
          value: m.out.perSec,
          unit: 'req/s',
          baseline: { name: baseName, value: base.out.perSec },
        });
        /** `m`'s latency percentile `q` against raw Hono's. */
        const latency = (name: string, m: Measured, q: 'p50' | 'p99'): FigureSpec => ({
          name,
          value: m.latency[q],
          unit: 'ms',
          baseline: { name: `raw Hono ${q}`, value: hono.latency[q] },
        });
        const figures: Figure[] = [
          figure({
            ...throughput('HTTP shadow GET throughput (node vs raw Hono)', viaNode, hono, 'raw Hono (@hono/node-server)'),
            target: { text: '≥ 70% of raw Hono req/s', met: (_v, ratio) => (ratio ?? 0) >= 0.7 },
          }),
          figure(throughput('HTTP shadow GET throughput (node vs raw node:http)', viaNode, nodeHttp, 'raw node:http')),
          figure(throughput('raw Hono throughput (framework share: Hono vs raw node:http)', hono, nodeHttp, 'raw node:http')),
          figure(throughput('HTTP shadow GET throughput, access log on vs off', withAccessLog, viaNode, 'node with ACCESS_LOG=false')),
          figure(latency('HTTP shadow GET latency p50', viaNode, 'p50')),
          figure(latency('HTTP shadow GET latency p99', viaNode, 'p99')),
          figure(latency('raw node:http latency p99', nodeHttp, 'p99')),
        ];
        return {
          scenario: 'http',
          figures,
          latencies: [viaNode.latency, withAccessLog.latency, hono.latency, nodeHttp.latency],
          integrity: {
            'http non-200 responses (node)': non200(viaNode) + non200(withAccessLog),
            'http non-200 responses (baselines)': non200(hono) + non200(nodeHttp),
          },
          notes: [
            `GET /v1/homes/{home}/devices/{d} rotating over ${devices} devices of one home (created by a hub's hello and reports), app token with the read scope; body ${viaNode.out.bodyBytes} bytes, ETag ${etag}. Baselines serve the same JSON (serialised per request, as the node does) with the same ETag on the same route pattern, and get the same Authorization header.`,
            `Load generator: one child process, ${concurrency} keep-alive connections each issuing requests back to back (closed loop), ${warmupSeconds} s warm-up then ${seconds} s measured per target; node, raw Hono and raw node:http run one after the other, each in its own process. On a 2-core machine the load generator competes with the server for CPU, which caps all three (the raw baselines most): the ratios are the comparable part, absolute req/s are the machine's.`,
            'The node is measured twice: with ACCESS_LOG=false, and with the access log on (the default), which writes one JSON line per request to stdout, read by the bench as a container runtime would read it. The other figures are the run without it.',
            'The node runs with the memory store (no Redis): a shadow GET is auth (token digest lookup) + rate limiter + ask to the device actor through the ActorHost (nact) + JSON; nothing is written.',
            'The node runs with RATE_LIMIT_PER_TOKEN / RATE_LIMIT_PER_HOME / RATE_LIMIT_BURST raised out of the way; the limiter still runs on every request, and a 429 would show in the integrity counts.',
          ],
        };
      } finally {
        bar.stop();
        hub?.stop();
        await raw?.stop();
        if (node) await stopNode(node);
      }
    },
  };
}

export const httpScenario: Scenario = createHttpScenario();
