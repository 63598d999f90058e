/**
 * `npm run bench:cluster`: (1) time for a 4th node to take its shards from a 3-node cluster that
 * holds N resident actors, through the ops API, with nothing lost; (2) forwarding overhead: ack
 * latency of a hub connected to the node that owns its home vs to another node, same run.
 */
import { parseArgs } from 'node:util';
import { buildShardTable } from '../cluster/hash-ring.ts';
import { shardOfHome } from '../cluster/shard-of.ts';
import type { RingDoc } from '../cluster/cluster-types.ts';
import { startNodeProcess, type NodeProcess } from '../test/support/node-process.ts';
import { startTestRedis } from '../test/support/redis-server.ts';
import { BenchHub } from './ingest/bench-hub.ts';

const { values } = parseArgs({
  options: {
    homes: { type: 'string', default: '1000' },
    devices: { type: 'string', default: '98' },
    shards: { type: 'string', default: '1024' },
    seconds: { type: 'string', default: '5' },
  },
});
const homes = Number(values.homes);
const devices = Number(values.devices);
const ADMIN = 'bench-admin-token-0123456789';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function api(node: NodeProcess, method: string, path: string, body?: unknown): Promise<Record<string, any>> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, any>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function settled(node: NodeProcess, activeNodes: number): Promise<Record<string, any>> {
  for (;;) {
    const s = await api(node, 'GET', '/v1/admin/cluster');
    if (!s.handoffs.inFlight && s.nodes.filter((n: any) => n.state === 'active' && n.alive).length === activeNodes) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const redis = await startTestRedis();
  const env = { REDIS_URL: redis.url, CLUSTER: redis.cluster, ADMIN_TOKEN: ADMIN, SHARDS: values.shards, LOG_LEVEL: 'warn', PASSIVATE_AFTER_MS: '3600000' };
  const nodes: NodeProcess[] = [];
  try {
    for (const id of ['n1', 'n2', 'n3']) nodes.push(await startNodeProcess({ ...env, NODE_ID: id }));
    await settled(nodes[0]!, 3);
    process.stdout.write(`3 nodes up; provisioning ${homes} homes × (1 hub + ${devices} devices) = ${homes * (devices + 2)} actors\n`);

    const hubs: BenchHub[] = [];
    for (let i = 0; i < homes; i++) {
      const via = nodes[i % 3]!;
      await api(via, 'PUT', `/v1/homes/b${i}`, { name: `b${i}`, timezone: 'UTC' });
      const hub = await api(via, 'POST', `/v1/homes/b${i}/hubs`, { hubId: 'hub1' });
      hubs.push(new BenchHub({ address: `127.0.0.1:${via.grpcPort}`, homeId: `b${i}`, hubId: 'hub1', secret: hub.secret, devices, batch: devices }));
    }
    const t0 = performance.now();
    for (let i = 0; i < hubs.length; i += 100) await Promise.all(hubs.slice(i, i + 100).map((h) => h.connect()));
    // Each hub fills its credit window once: every device actor is resident with journaled state.
    for (let i = 0; i < hubs.length; i += 100) {
      const slice = hubs.slice(i, i + 100);
      await Promise.all(slice.map((h) => h.flood(performance.now() + 1)));
      await Promise.all(slice.map((h) => h.drain(60_000)));
    }
    const acked = hubs.reduce((a, h) => a + h.acked, 0);
    process.stdout.write(`resident actors ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (${acked} reports acked)\n`);

    // (1) Join a 4th node through the ops API and time until every moved shard is served.
    nodes.push(await startNodeProcess({ ...env, NODE_ID: 'n4', AUTO_JOIN: 'false' }));
    const plan = await api(nodes[0]!, 'POST', '/v1/admin/ring/plan', { add: [{ id: 'n4', weight: 1 }] });
    const started = performance.now();
    await api(nodes[0]!, 'POST', '/v1/admin/ring', { add: [{ id: 'n4', weight: 1 }] });
    const after = await settled(nodes[0]!, 4);
    const handoffMs = performance.now() - started;
    const n4 = after.nodes.find((n: any) => n.id === 'n4');
    process.stdout.write(
      `join 3 → 4: ${plan.moving} of ${values.shards} shards moved, all served after ${handoffMs.toFixed(0)} ms (n4 owns ${n4.shardsOwned})\n`,
    );
    // Every hub's next window is acked after the move (loss and duplicates are checked by the e2e tests).
    for (let i = 0; i < hubs.length; i += 100) {
      const slice = hubs.slice(i, i + 100);
      await Promise.all(slice.map((h) => h.flood(performance.now() + 1)));
      await Promise.all(slice.map((h) => h.drain(60_000)));
    }
    const errors = hubs.reduce((a, h) => a + h.errors, 0);
    process.stdout.write(`after the move: ${hubs.reduce((a, h) => a + h.acked, 0)} reports acked in total, ${errors} errors\n`);
    for (const h of hubs) h.close();

    // (2) Forwarding overhead: one hub on the owner, one on another node, same rate.
    const ring: RingDoc = { epoch: after.epoch, shardCount: after.shardCount, nodes: after.nodes.filter((n: any) => n.state === 'active').map((n: any) => ({ id: n.id, weight: n.weight, state: 'active' })) };
    const table = buildShardTable(ring);
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    const home = 'fwd-home';
    const owner = byId.get(table.owners[shardOfHome(home, ring.shardCount)]!)!;
    const other = nodes.find((n) => n !== owner)!;
    await api(owner, 'PUT', `/v1/homes/${home}`, { name: 'fwd', timezone: 'UTC' });
    // Both hubs run at once at the same rate, so warm-up and background work hit them alike.
    const pair = await Promise.all(
      ([['local', owner], ['forwarded', other]] as const).map(async ([label, via]) => {
        const hub = await api(owner, 'POST', `/v1/homes/${home}/hubs`, { hubId: `h-${label}` });
        return { label, hub: new BenchHub({ address: `127.0.0.1:${via.grpcPort}`, homeId: home, hubId: `h-${label}`, secret: hub.secret, devices: 10, batch: 10 }) };
      }),
    );
    await Promise.all(pair.map(({ hub }) => hub.connect()));
    await Promise.all(pair.map(({ hub }) => hub.paced(500, performance.now() + 1000))); // warm-up
    await Promise.all(pair.map(({ hub }) => hub.drain()));
    for (const { hub } of pair) hub.recording = true;
    const until = performance.now() + Number(values.seconds) * 1000;
    await Promise.all(pair.map(({ hub }) => hub.paced(1000, until)));
    await Promise.all(pair.map(({ hub }) => hub.drain()));
    const results: Record<string, { p50: number; p99: number }> = {};
    for (const { label, hub } of pair) {
      results[label] = { p50: pct(hub.latenciesMs, 50), p99: pct(hub.latenciesMs, 99) };
      hub.close();
    }
    process.stdout.write(
      `forwarding, two hubs at 1,000 reports/s each in batches of 10: local ack p50 ${results.local!.p50.toFixed(2)} ms p99 ${results.local!.p99.toFixed(2)} ms | ` +
        `forwarded p50 ${results.forwarded!.p50.toFixed(2)} ms p99 ${results.forwarded!.p99.toFixed(2)} ms | overhead p50 ${(results.forwarded!.p50 - results.local!.p50).toFixed(2)} ms\n`,
    );
  } finally {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
