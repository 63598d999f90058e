/**
 * `npm run doctor` as a process against real things: a private redis-server, real node processes
 * in a 2-node cluster, a Redis that refuses or never answers. Exit codes and the lines people read.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { KeyLayout } from '../../runtime/redis/key-layout.ts';
import { clusterTestFile, type TestCluster } from '../support/cluster-harness.ts';
import { runCli, type CliRun } from '../support/run-cli.ts';

const ADMIN = 'admin-token-for-doctor-tests';
const SHARDS = 16;
const file = clusterTestFile({ adminToken: ADMIN, shards: SHARDS, tag: 'doc' });

/** Runs doctor as `npm run doctor` does, with only the environment given here among the node's variables. */
const doctor = (args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> =>
  runCli(
    'tools/doctor.ts',
    args,
    { REDIS_URL: undefined, CLUSTER: undefined, ADMIN_TOKEN: undefined, NODE_ID: 'doctor-test', ...env },
    30_000,
  );

/** `{level, finding}` of one check's line; throws with the whole output when the line is missing. */
function line(run: CliRun, check: string): { level: string; text: string } {
  const m = new RegExp(`^(ok|warn|fail) +${check}: +(.*)$`, 'm').exec(run.stdout);
  if (!m) throw new Error(`no ${check} line in:\n${run.out}`);
  return { level: m[1]!, text: m[2]! };
}

/** Every check's level, by name. */
function levels(run: CliRun): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of run.stdout.matchAll(/^(ok|warn|fail) +([a-z-]+): /gm)) out[m[2]!] = m[1]!;
  return out;
}

async function twoNodes(nodeEnv: Record<string, string> = {}): Promise<{ cluster: TestCluster; env: Record<string, string>; url: string }> {
  const cluster = file.newCluster();
  const n1 = await cluster.start('n1', nodeEnv);
  await cluster.start('n2', nodeEnv);
  await cluster.settled('n1', ['n1', 'n2']);
  return {
    cluster,
    env: { REDIS_URL: file.redis.url, CLUSTER: cluster.opts.cluster },
    url: `http://127.0.0.1:${n1.httpPort}`,
  };
}

async function redisAdmin(): Promise<Redis> {
  const client = new Redis(file.redis.url);
  file.cleanup(() => client.quit());
  return client;
}

/** Starting two nodes takes a while on a busy machine: each test below starts one cluster and runs doctor several times against it. */
const CLUSTER_TEST_MS = 120_000;

describe('npm run doctor', () => {
  it(
    'a healthy 2-node cluster: every check ok (exit 0); a wrong admin token fails; appendonly off warns (exit 0)',
    async () => {
      const { env, url } = await twoNodes();
      const run = await doctor(['--url', url], { ...env, ADMIN_TOKEN: ADMIN });
      expect(run.code, run.out).toBe(0);
      expect(levels(run)).toEqual({
        configuration: 'ok',
        redis: 'ok',
        persistence: 'ok',
        eviction: 'ok',
        clock: 'ok',
        heartbeats: 'ok',
        ring: 'ok',
        leases: 'ok',
        handoffs: 'ok',
        node: 'ok',
        ports: 'ok',
      });
      expect(line(run, 'persistence').text).toContain('appendfsync always');
      expect(line(run, 'heartbeats').text).toContain('2 alive (n1, n2)');
      expect(line(run, 'leases').text).toContain(`${SHARDS}/${SHARDS} shards leased by their owner`);
      expect(line(run, 'ports').text).toContain('6 registered addresses accept connections (n1, n2)');
      expect(run.stderr).toBe('');

      const json = await doctor(['--json'], env);
      expect(json.code, json.out).toBe(0);
      const doc = JSON.parse(json.stdout) as { ok: boolean; results: { check: string; level: string }[] };
      expect(doc.ok).toBe(true);
      expect(doc.results.map((r) => r.check)).toEqual([
        'configuration',
        'redis',
        'persistence',
        'eviction',
        'clock',
        'heartbeats',
        'ring',
        'leases',
        'handoffs',
        'ports',
      ]);

      // --url alone: what the node's admin API says, and a line saying Redis was not checked.
      const urlOnly = await doctor(['--url', url], { ADMIN_TOKEN: ADMIN });
      expect(urlOnly.code, urlOnly.out).toBe(0);
      expect(levels(urlOnly)).toMatchObject({ node: 'ok', redis: 'warn', heartbeats: 'ok', ring: 'ok', handoffs: 'ok', ports: 'ok' });
      expect(line(urlOnly, 'redis').text).toContain('REDIS_URL is not set');

      const wrongToken = await doctor(['--url', url, '--token', 'not-the-admin-token-at-all'], env);
      expect(wrongToken.code, wrongToken.out).toBe(1);
      expect(line(wrongToken, 'node')).toEqual({
        level: 'fail',
        text: expect.stringMatching(/refused the admin token \(HTTP 401\) — set ADMIN_TOKEN to that node's admin token/),
      });
      expect(levels(wrongToken).leases).toBe('ok'); // the other checks still ran

      const admin = await redisAdmin();
      await admin.config('SET', 'appendonly', 'no');
      file.cleanup(() => admin.config('SET', 'appendonly', 'yes'));
      const noAof = await doctor([], env);
      expect(noAof.code, noAof.out).toBe(0);
      expect(line(noAof, 'persistence')).toEqual({
        level: 'warn',
        text: expect.stringMatching(/^appendonly is off: acked hub reports .* lost when Redis restarts — set appendonly yes/),
      });
    },
    CLUSTER_TEST_MS,
  );

  it(
    'a lease held by a node that does not own the shard fails naming it; a SIGKILLed node fails naming its ports (exit 1)',
    async () => {
      // A 30 s heartbeat: the SIGKILLed node stays in the ring while doctor looks (at the default 2 s,
      // n1 takes it out within about 2 s, and a node that left is not expected to listen).
      const { cluster, env } = await twoNodes({ HEARTBEAT_TTL_MS: '30000' });
      const status = await cluster.status('n1');
      const shard = status.owners.indexOf('n1');
      const admin = await redisAdmin();
      const keys = new KeyLayout(cluster.opts.cluster);
      // As if n2 had kept a shard the ring gives n1: n1's renewal is refused and it waits for n2, which never lets go.
      await admin.set(keys.lease(shard), 'n2', 'PX', 60_000);
      const foreign = await doctor([], env);
      expect(foreign.code, foreign.out).toBe(1);
      expect(line(foreign, 'leases')).toEqual({
        level: 'fail',
        text: expect.stringContaining(
          `${SHARDS - 1}/${SHARDS} shards leased by their owner; 1 held by a node that is not the owner and is not handing off: shard ${shard} held by n2, owned by n1`,
        ),
      });
      await admin.del(keys.lease(shard));

      await cluster.node('n2').stop('SIGKILL');
      const killed = await doctor([], env);
      expect(killed.code, killed.out).toBe(1);
      const ports = line(killed, 'ports');
      expect(ports.level).toBe('fail');
      expect(ports.text).toMatch(/^3\/6 registered addresses refuse connections: n2 http 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
      // Its heartbeat is judged by the 30 s TTL its record carries: still alive, not late.
      expect(line(killed, 'heartbeats')).toEqual({ level: 'ok', text: expect.stringMatching(/^2 alive \(n1, n2\)/) });
    },
    CLUSTER_TEST_MS,
  );
});

describe('npm run doctor without a usable Redis', () => {
  it('Redis refuses connections: redis fails with the reason at once, exit 1', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const run = await doctor([], { REDIS_URL: `redis://:secret-password@127.0.0.1:${port}` });
    expect(run.code, run.out).toBe(1);
    expect(line(run, 'redis')).toEqual({
      level: 'fail',
      text: expect.stringContaining(`cannot reach Redis at redis://:***@127.0.0.1:${port}: connect ECONNREFUSED`),
    });
    expect(run.out).not.toContain('secret-password');
    // Passwords with `/`, `+`, `=` or an unescaped `@` do not show either, in any line.
    for (const [password, secretPart] of [
      ['ab/cd+ef==', 'cd+ef'],
      ['p@ss-word', 'ss-word'],
    ] as const) {
      const other = await doctor([], { REDIS_URL: `redis://u:${password}@127.0.0.1:${port}` });
      expect(other.code, other.out).toBe(1);
      expect(other.out).not.toContain(secretPart);
      expect(line(other, 'redis').text).toContain(`cannot reach Redis at redis://u:***@127.0.0.1:${port}`);
    }
  });

  it('Redis accepts the connection but never answers: redis fails within 5 s, exit 1', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    file.cleanup(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const run = await doctor([], { REDIS_URL: `redis://127.0.0.1:${port}` });
    const doctorMs = Date.now() - started;
    expect(run.code, run.out).toBe(1);
    expect(line(run, 'redis')).toEqual({ level: 'fail', text: expect.stringContaining('did not answer within 3000 ms') });
    expect(doctorMs).toBeLessThan(5_000 + 3_000); // + tsx start-up of the child
  });

  it.each<[string, string[], Record<string, string>, RegExp]>([
    ['neither REDIS_URL nor --url', [], {}, /nothing to check: set REDIS_URL .* or give --url/],
    ['an unknown option', ['--frobnicate'], { REDIS_URL: 'redis://127.0.0.1:1' }, /Unknown option '--frobnicate'/],
    ['--url that is not a URL', ['--url', 'node:8080:x'], {}, /--url node:8080:x must be http:\/\/ or https:\/\//],
    ['a positional argument', ['check'], { REDIS_URL: 'redis://127.0.0.1:1' }, /Unexpected argument 'check'/],
  ])('bad usage (%s): says what is needed, exit 2, checks nothing', async (_, args, env, message) => {
    const run = await doctor(args, env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain('usage: npm run doctor');
    expect(run.stdout).toBe('');
  });

  it('--help prints the usage, exit 0', async () => {
    const run = await doctor(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Exit status: 0 when no check failed');
  });
});
