/** The doctor's check functions on hand-made inputs: the level and the words of each finding, without Redis or nodes. */
import { describe, expect, it } from 'vitest';
import type { NodeProgress } from '../../cluster/cluster-admin.ts';
import type { RingDoc } from '../../cluster/cluster-types.ts';
import { buildShardTable } from '../../cluster/hash-ring.ts';
import { exitCodeOf, fail, ok, someOf, warn } from '../../tools/doctor/check-result.ts';
import { configurationCheck } from '../../tools/doctor/configuration-check.ts';
import { runDoctor } from '../../tools/doctor/run-doctor.ts';
import { redactRedisUrl } from '../../node/config.ts';
import {
  handoffsCheck,
  heartbeatsCheck,
  LAPSE_RECHECK_MS,
  leasesCheck,
  needsSecondLook,
  ringCheck,
  thirdLookInMs,
} from '../../tools/doctor/cluster-checks.ts';
import { heartbeatTtlOf, nodeClockSkews, type ClusterState, type Heartbeat } from '../../tools/doctor/cluster-state.ts';
import { parseDoctorArgs, UsageError } from '../../tools/doctor/doctor-args.ts';
import { formatJson, formatText } from '../../tools/doctor/format-results.ts';
import { sampleOf } from '../../tools/doctor/node-api-check.ts';
import { splitHostPort } from '../../tools/doctor/ports-check.ts';
import { CLOCK_FAIL_MS, clockCheck, evictionCheck, persistenceCheck, readServerConfig } from '../../tools/doctor/redis-checks.ts';

const TTL = 6_000;
const ring: RingDoc = {
  epoch: 4,
  shardCount: 16,
  nodes: [
    { id: 'n1', weight: 1, state: 'active' },
    { id: 'n2', weight: 1, state: 'active' },
  ],
};
const owners = buildShardTable(ring).owners;
const fresh: Heartbeat = { writtenAtMs: 1_000, ttlLeftMs: TTL - 500 };
const settledProgress = (epoch = 4): NodeProgress => ({ epoch, owned: 8, pending: 0, done: 8, at: 1_000 });

/** A healthy two-node cluster, with `over` laid over it. */
function state(over: Partial<ClusterState> = {}): ClusterState {
  return {
    cluster: 'iot',
    heartbeatTtlMs: TTL,
    ring,
    ringError: undefined,
    owners,
    registered: ['n1', 'n2'].map((id) => ({ id, http: `127.0.0.1:1${id.slice(1)}`, grpc: '', peer: '', startedAt: 0 })),
    heartbeats: new Map([
      ['n1', fresh],
      ['n2', fresh],
    ]),
    progress: new Map([
      ['n1', settledProgress()],
      ['n2', settledProgress()],
    ]),
    badRecords: [],
    leases: [...owners],
    readAtMs: 10_000,
    readDurationMs: 2,
    ...over,
  };
}

describe('doctor persistence and eviction checks', () => {
  it.each<[Record<string, string>, string, RegExp]>([
    [{ appendonly: 'yes', appendfsync: 'always' }, 'ok', /appendfsync always: an ack survives a Redis or host crash/],
    [{ appendonly: 'yes', appendfsync: 'everysec' }, 'ok', /a host crash up to 1 s of acked writes/],
    [{ appendonly: 'yes', appendfsync: 'no' }, 'warn', /the OS decides when writes reach disk/],
    [{ appendonly: 'no', appendfsync: 'always' }, 'warn', /appendonly is off: acked hub reports .* lost when Redis restarts/],
  ])('%j → %s', (config, level, finding) => {
    const r = persistenceCheck([config]);
    expect(r.level).toBe(level);
    expect(r.finding).toMatch(finding);
  });

  it('one master of a Redis Cluster without the append-only file is enough to warn', () => {
    expect(persistenceCheck([{ appendonly: 'yes', appendfsync: 'always' }, { appendonly: 'no' }]).level).toBe('warn');
  });

  it('CONFIG renamed or denied: both checks warn that they cannot tell', () => {
    const denied = new Error("ERR unknown command 'CONFIG'");
    for (const r of [persistenceCheck(denied), evictionCheck(denied)]) {
      expect(r.level).toBe('warn');
      expect(r.finding).toBe("could not read CONFIG (renamed, denied, or the server did not answer): ERR unknown command 'CONFIG'");
    }
  });

  /** A server that answers CONFIG GET as Redis 6.2 does: one parameter per call, else an error. */
  const redis62 = (settings: Record<string, string>) => {
    const get = (names: string[]): [Error | null, unknown] =>
      names.length === 1
        ? [null, [names[0], settings[names[0]!] ?? '']]
        : [new Error("ERR Unknown subcommand or wrong number of arguments for 'GET'. Try CONFIG HELP."), null];
    return {
      pipeline() {
        const queued: string[][] = [];
        const p = {
          config(sub: string, ...names: string[]) {
            expect(sub).toBe('GET');
            queued.push(names);
            return p;
          },
          exec: () => Promise.resolve(queued.map(get)),
        };
        return p;
      },
    };
  };

  it('reads CONFIG one parameter per CONFIG GET, as Redis 6.2 (the oldest supported) requires', async () => {
    const settings = { appendonly: 'yes', appendfsync: 'always', maxmemory: '0', 'maxmemory-policy': 'noeviction' };
    const read = await readServerConfig([redis62(settings)] as unknown as Parameters<typeof readServerConfig>[0]);
    expect(read).toEqual([settings]);
    expect(persistenceCheck(read).level).toBe('ok');
  });

  it('eviction: noeviction is ok, any other policy warns naming what may be evicted', () => {
    expect(evictionCheck([{ 'maxmemory-policy': 'noeviction', maxmemory: '0' }])).toMatchObject({ level: 'ok' });
    expect(evictionCheck([{ 'maxmemory-policy': 'volatile-lru', maxmemory: '1048576' }])).toMatchObject({
      level: 'warn',
      finding: expect.stringContaining(
        'maxmemory-policy volatile-lru (maxmemory 1048576 bytes): Redis may evict actor journals, shard leases',
      ),
    });
  });
});

describe('doctor clock check', () => {
  const skew = (skewMs: number, uncertaintyMs = 1) => ({ skewMs, uncertaintyMs });

  it('ok within 500 ms, warn above, fail above 10 s, naming the worst clock and what skew breaks (not leases)', () => {
    expect(clockCheck(skew(3), new Map([['n1', skew(-20, 4)]]))).toMatchObject({
      level: 'ok',
      finding: 'clocks against Redis: this machine +3 ±1 ms, node n1 -20 ±4 ms (within 500 ms)',
    });
    expect(clockCheck(skew(3), new Map([['n2', skew(900)]]))).toMatchObject({
      level: 'warn',
      finding: expect.stringContaining('node n2 is off by more than 500 ms; reminders fire, and commands and tokens expire'),
      action: expect.stringContaining("synchronise node n2's clock"),
    });
    const r = clockCheck(skew(-(CLOCK_FAIL_MS + 2)), new Map());
    expect(r).toMatchObject({ level: 'fail', finding: expect.stringContaining(`this machine is off by more than ${CLOCK_FAIL_MS} ms`) });
    expect(r.finding).toContain("leases are safe: they expire on Redis' clock");
    expect(r.finding).not.toContain('lease margin');
    expect(CLOCK_FAIL_MS).toBe(10_000);
  });

  it('subtracts the uncertainty before comparing: a slow round trip alone does not warn', () => {
    // 700 ms measured, but ±300 ms: at least 400 ms off, within the 500 ms bound.
    expect(clockCheck(skew(5), new Map([['n1', skew(700, 300)]]))).toMatchObject({
      level: 'ok',
      finding: 'clocks against Redis: this machine +5 ±1 ms, node n1 +700 ±300 ms (within 500 ms)',
    });
    expect(clockCheck(skew(5), new Map([['n1', skew(-850, 300)]])).level).toBe('warn');
    // The worst clock is the one surely furthest off, not the largest raw reading.
    expect(
      clockCheck(
        skew(5),
        new Map([
          ['n1', skew(900, 600)],
          ['n2', skew(-700, 10)],
        ]),
      ).action,
    ).toContain('node n2');
  });

  it('TIME refused: warns that the clock could not be read', () => {
    expect(clockCheck(new Error('NOPERM'), new Map())).toMatchObject({ level: 'warn', finding: 'cannot read Redis TIME: NOPERM' });
  });

  it("estimates a node's clock from its heartbeat: its own timestamp against Redis' time of the write", () => {
    // Read at 10 000 (this machine, 200 ms ahead of Redis: Redis says 9 800). The key has 1 000 ms
    // of its 6 000 left, so Redis wrote it at 9 800 − 5 000 = 4 800; the node stamped 5 300: +500.
    // Uncertainty: this machine's ±10, the 2 ms heartbeat read, and its 20 ms round trip for the node's write.
    const s = state({ heartbeats: new Map([['n1', { writtenAtMs: 5_300, ttlLeftMs: 1_000 }]]) });
    expect(nodeClockSkews(s, { skewMs: 200, uncertaintyMs: 10 })).toEqual(new Map([['n1', { skewMs: 500, uncertaintyMs: 32 }]]));
  });
});

describe('doctor heartbeats check', () => {
  it('ok with every ring node alive, counting nodes that left', () => {
    const s = state({ registered: [...state().registered, { id: 'old', http: '', grpc: '', peer: '', startedAt: 0 }] });
    expect(heartbeatsCheck(s)).toEqual(ok('heartbeats', '2 alive (n1, n2); 1 left earlier (old)'));
  });

  it('fails naming a ring node whose heartbeat expired', () => {
    const r = heartbeatsCheck(state({ heartbeats: new Map([['n1', fresh]]) }));
    expect(r.level).toBe('fail');
    expect(r.finding).toBe('n2 in the ring without a heartbeat (none for over 6.0 s): down or cut off from Redis');
    expect(r.action).toContain('npm run ring -- remove n2');
  });

  it('warns about a heartbeat not refreshed for two periods', () => {
    const r = heartbeatsCheck(
      state({
        heartbeats: new Map([
          ['n1', fresh],
          ['n2', { writtenAtMs: 0, ttlLeftMs: 1_500 }],
        ]),
      }),
    );
    expect(r).toMatchObject({ level: 'warn', finding: 'late heartbeat: n2 (not refreshed for 4.5 s); it refreshes every 1.2 s' });
  });

  /** The healthy cluster with node n2 registered with its own HEARTBEAT_TTL_MS and heartbeat `hb`. */
  const withTtl = (heartbeatTtlMs: number, hb?: Heartbeat): ClusterState => {
    const s = state();
    return state({
      registered: s.registered.map((n) => (n.id === 'n2' ? { ...n, heartbeatTtlMs } : n)),
      heartbeats: new Map(hb ? [['n1', fresh] as const, ['n2', hb] as const] : [['n1', fresh] as const]),
    });
  };

  it("judges each heartbeat by the TTL in the node's record, the default only for records without one (older nodes)", () => {
    // A 500 ms TTL refreshed 50 ms ago: fresh by its own TTL (by the default 6 s one it would look 5.5 s late).
    expect(heartbeatsCheck(withTtl(500, { writtenAtMs: 0, ttlLeftMs: 450 })).level).toBe('ok');
    // A 60 s TTL not refreshed for 45 s: late (by the default 6 s one it would look fresh).
    expect(heartbeatsCheck(withTtl(60_000, { writtenAtMs: 0, ttlLeftMs: 15_000 }))).toMatchObject({
      level: 'warn',
      finding: 'late heartbeat: n2 (not refreshed for 45.0 s); it refreshes every 12.0 s',
    });
    // Expired: the finding names its own TTL.
    expect(heartbeatsCheck(withTtl(20_000)).finding).toBe(
      'n2 in the ring without a heartbeat (none for over 20.0 s): down or cut off from Redis',
    );
    expect(heartbeatTtlOf(withTtl(500), 'n2')).toBe(500);
    expect(heartbeatTtlOf(withTtl(500), 'n1')).toBe(TTL); // no TTL in its record
    expect(heartbeatTtlOf(withTtl(500), 'unregistered')).toBe(TTL);
  });

  it("estimates a node's clock with the TTL from its record", () => {
    // As above, but n2 runs a 3 000 ms TTL: 1 000 left means Redis wrote it at 9 800 − 2 000 = 7 800; stamped 8 300: +500.
    const s = withTtl(3_000, { writtenAtMs: 8_300, ttlLeftMs: 1_000 });
    expect(nodeClockSkews(s, { skewMs: 200, uncertaintyMs: 10 }).get('n2')).toEqual({ skewMs: 500, uncertaintyMs: 32 });
  });

  it('warns when no node ever registered in the cluster (a wrong CLUSTER or REDIS_URL)', () => {
    const r = heartbeatsCheck(
      state({ ring: undefined, owners: [], leases: [], registered: [], heartbeats: new Map(), progress: new Map() }),
    );
    expect(r).toMatchObject({
      level: 'warn',
      finding: "no node has ever registered under cluster 'iot' on this Redis (no keys 'iot:*' and '{iot:*')",
    });
    expect(
      ringCheck(state({ ring: undefined, owners: [], leases: [], registered: [], heartbeats: new Map(), progress: new Map() })),
    ).toMatchObject({
      level: 'warn',
      finding: expect.stringContaining("no ring and no node under cluster 'iot'"),
    });
  });

  it('names and skips an unreadable node record, and fails (nodes reading every record fail on it too)', () => {
    const r = heartbeatsCheck(state({ badRecords: ['{iot:members}:node:n3: not a node record'] }));
    expect(r).toMatchObject({
      level: 'fail',
      finding: '2 alive (n1, n2); 1 unreadable node record skipped: {iot:members}:node:n3: not a node record',
    });
    // A failure stays a failure.
    expect(heartbeatsCheck(state({ heartbeats: new Map([['n1', fresh]]), badRecords: ['k: bad'] })).level).toBe('fail');
  });
});

describe('doctor ring check', () => {
  it('ok when every live node reports the ring epoch', () => {
    expect(ringCheck(state())).toEqual(ok('ring', 'epoch 4, 2 active (n1, n2); every live node routes by it'));
  });

  it('fails naming a node that stayed behind across both reads, not one that just caught up', () => {
    const behind = state({
      progress: new Map([
        ['n1', settledProgress()],
        ['n2', settledProgress(3)],
      ]),
    });
    expect(ringCheck(behind, behind)).toMatchObject({ level: 'fail', finding: 'epoch 4, but n2 routes by epoch 3' });
    expect(ringCheck(behind, state()).level).toBe('ok');
  });

  it('fails when a live node is ahead of the stored ring (restored from an older copy), at the first look', () => {
    const ahead = state({
      progress: new Map([
        ['n1', settledProgress()],
        ['n2', settledProgress(6)],
      ]),
    });
    const r = ringCheck(ahead);
    expect(r).toMatchObject({
      level: 'fail',
      finding: 'ring went backwards: the stored ring is at epoch 4, but n2 routes by epoch 6',
    });
    expect(r.action).toContain('then restart those nodes');
  });

  it('fails when the ring is gone but nodes report an epoch (a lost ring is no fresh install)', () => {
    const lost = state({ ring: undefined, owners: [], leases: [] });
    const r = ringCheck(lost);
    expect(r.level).toBe('fail');
    expect(r.finding).toContain('the ring is gone from Redis');
    expect(r.finding).toContain('n1 routes by epoch 4, n2 routes by epoch 4');
    // Nodes waiting for a first ring report epoch 0: that is a fresh install.
    const fresh0 = state({
      ring: undefined,
      owners: [],
      leases: [],
      progress: new Map([['n1', { ...settledProgress(0), owned: 0, done: 0 }]]),
    });
    expect(ringCheck(fresh0).level).toBe('warn');
  });

  it('warns about a live node outside the ring, and about a node that reports no epoch', () => {
    const outside = state({
      heartbeats: new Map([
        ['n1', fresh],
        ['n2', fresh],
        ['n3', fresh],
      ]),
    });
    expect(ringCheck(outside)).toMatchObject({
      level: 'warn',
      finding: 'epoch 4; n3 alive but not in the ring',
      action: expect.stringContaining('npm run ring -- add n3'),
    });
    expect(ringCheck(state({ progress: new Map([['n1', settledProgress()]]) }))).toMatchObject({
      level: 'warn',
      finding: 'epoch 4; n2 reports no epoch (no progress in Redis)',
    });
  });

  it('fails for an unreadable ring and for a ring without an active node', () => {
    const unreadable = ringCheck(state({ ring: undefined, ringError: 'iot:ring does not hold a ring document' }));
    expect(unreadable.level).toBe('fail');
    expect(unreadable.action).toContain("a restored epoch below the nodes' own is ignored by them");
    const drained: RingDoc = { ...ring, nodes: ring.nodes.map((n) => ({ ...n, state: 'draining' as const })) };
    expect(ringCheck(state({ ring: drained, owners: [] }))).toMatchObject({
      level: 'fail',
      finding: 'epoch 4 has no active node: no shard is served',
    });
  });
});

describe('doctor leases check', () => {
  const shardOf = (owner: string): number => owners.indexOf(owner);

  it('ok when every shard is leased by its owner', () => {
    expect(leasesCheck(state())).toEqual(ok('leases', '16/16 shards leased by their owner'));
  });

  it('fails naming a shard another node holds while it hands nothing off', () => {
    const s = shardOf('n1');
    const leases = [...owners];
    leases[s] = 'n2';
    const r = leasesCheck(state({ leases }), [state({ leases })]);
    expect(r.level).toBe('fail');
    expect(r.finding).toBe(
      `15/16 shards leased by their owner; 1 held by a node that is not the owner and is not handing off: shard ${s} held by n2, owned by n1`,
    );
  });

  it('only warns while the holder is handing off, and counts a lease that changed between the reads apart', () => {
    const s = shardOf('n1');
    const leases = [...owners];
    leases[s] = 'n2';
    const handing = state({
      leases,
      progress: new Map([
        ['n1', settledProgress()],
        ['n2', { ...settledProgress(), pending: 1 }],
      ]),
    });
    expect(leasesCheck(handing, [handing]).level).toBe('warn');
    expect(leasesCheck(state({ leases }), [state()])).toMatchObject({
      level: 'warn',
      finding: `15/16 shards leased by their owner; 1 changed hands during the check: shard ${s} (n1 → n2)`,
    });
  });

  it('fails for a shard that changes holder at every look (two nodes fighting over it)', () => {
    const s = shardOf('n1');
    const to = (holder: string | null) => state({ leases: owners.map((o, i) => (i === s ? holder : o)) });
    const r = leasesCheck(to('n1'), [to('n2'), to(null)]);
    expect(r).toMatchObject({
      level: 'fail',
      finding: `15/16 shards leased by their owner; 1 changed holder at every look: shard ${s} (n2 → none → n1)`,
    });
    // Changed once in three looks: a move, not a fight.
    expect(leasesCheck(to('n1'), [to('n2'), to('n1')]).level).toBe('warn');
  });

  it('a lapsed lease of a live, settled owner: "renewal due" until its renewal period has passed, then a failure', () => {
    const s = shardOf('n1');
    const lapsed = (readAtMs: number) => state({ readAtMs, leases: owners.map((o, i) => (i === s ? null : o)) });
    expect(leasesCheck(lapsed(12_000), [lapsed(10_000)])).toMatchObject({
      level: 'warn',
      finding: `15/16 shards leased by their owner; 1 lapsed, renewal due: shard ${s} (owner n1)`,
    });
    const r = leasesCheck(lapsed(10_000 + LAPSE_RECHECK_MS), [lapsed(10_000), lapsed(12_000)]);
    expect(r).toMatchObject({
      level: 'fail',
      finding: expect.stringContaining(`1 unleased, so unserved: shard ${s} (owner n1, not taken back for 6 s)`),
    });
    expect(LAPSE_RECHECK_MS).toBe(6_000); // leases are renewed every 5 s, + 1 s
  });

  it("a third look: after a lease changed hands, and once a lapsed lease's renewal is due", () => {
    const s = shardOf('n1');
    const at = (readAtMs: number, holder: string | null) => state({ readAtMs, leases: owners.map((o, i) => (i === s ? holder : o)) });
    expect(thirdLookInMs([at(10_000, 'n1'), at(12_000, 'n1')], 2_000)).toBeUndefined();
    expect(thirdLookInMs([at(10_000, 'n2'), at(12_000, 'n1')], 2_000)).toBe(2_000);
    expect(thirdLookInMs([at(10_000, null), at(12_000, null)], 2_000)).toBe(LAPSE_RECHECK_MS - 2_000);
    expect(thirdLookInMs([at(10_000, null)], 2_000)).toBeUndefined();
  });

  it('fails for leases held by an owner without a heartbeat, naming it', () => {
    const s = state({ heartbeats: new Map([['n1', fresh]]) });
    const r = leasesCheck(s);
    const n2Shards = owners.filter((o) => o === 'n2').length;
    expect(r).toMatchObject({
      level: 'fail',
      finding: `${16 - n2Shards}/16 shards leased by their owner; ${n2Shards} held by down owner n2 (unserved until taken over)`,
    });
  });

  it('fails for unleased shards of a down owner, naming it', () => {
    const leases = owners.map((o) => (o === 'n2' ? null : o));
    const s = state({ leases, heartbeats: new Map([['n1', fresh]]) });
    const r = leasesCheck(s, [s]);
    expect(r.level).toBe('fail');
    expect(r.finding).toMatch(/unleased, so unserved: shard \d+ \(owner n2 is down\)/);
  });

  it('a second look is needed exactly when a lease or a node is moving', () => {
    expect(needsSecondLook(state())).toBe(false);
    expect(needsSecondLook(state({ leases: owners.map(() => null) }))).toBe(true);
    expect(needsSecondLook(state({ progress: new Map([['n1', settledProgress(3)]]) }))).toBe(true);
  });
});

describe('doctor handoffs check', () => {
  it('ok when nothing moves; warns when a node moves across both reads; ok when it just started', () => {
    expect(handoffsCheck(state())).toEqual(ok('handoffs', 'none in flight (16 done since the nodes started)'));
    const moving = state({ progress: new Map([['n1', { ...settledProgress(), pending: 3 }]]) });
    expect(handoffsCheck(moving, moving)).toMatchObject({ level: 'warn', finding: 'in flight: n1 3 pending at epoch 4' });
    expect(handoffsCheck(moving, state()).level).toBe('ok');
  });

  it('fails when a node reports a handoff older than 60 s', () => {
    expect(handoffsCheck(state(), undefined, new Map([['n1', 75]]))).toMatchObject({
      level: 'fail',
      finding: 'stuck for over 60 s: n1 (oldest 75 s)',
    });
    expect(handoffsCheck(state(), undefined, new Map([['n1', 10]]))).toMatchObject({ level: 'ok' });
  });

  it("reads the age of a live node's oldest handoff from its progress report", () => {
    const reporting = (ms: number): ClusterState =>
      state({
        progress: new Map([
          ['n1', settledProgress()],
          ['n2', { ...settledProgress(), pending: 2, oldestHandoffMs: ms }],
        ]),
      });
    expect(handoffsCheck(reporting(61_000), reporting(59_000))).toMatchObject({
      level: 'fail',
      finding: 'stuck for over 60 s: n2 (oldest 61 s)',
    });
    expect(handoffsCheck(reporting(12_000), reporting(10_000))).toMatchObject({
      level: 'warn',
      finding: 'in flight: n2 2 pending at epoch 4 (oldest 12 s)',
    });
    // A dead node's last report says nothing about now: the heartbeats check speaks for it.
    expect(handoffsCheck({ ...reporting(90_000), heartbeats: new Map([['n1', fresh]]) }).level).not.toBe('fail');
  });
});

describe('doctor output, arguments and parsing helpers', () => {
  it('aligns findings in one column and ends a line with what to do', () => {
    const text = formatText([
      ok('redis', 'Redis 7.2.4'),
      warn('persistence', 'appendonly is off', 'set appendonly yes'),
      fail('ports', 'n2 refuses', 'check n2'),
    ]);
    expect(text.split('\n')).toEqual([
      'ok    redis:       Redis 7.2.4',
      'warn  persistence: appendonly is off — set appendonly yes',
      'fail  ports:       n2 refuses — check n2',
    ]);
    expect(JSON.parse(formatJson([ok('redis', 'x'), fail('ports', 'y', 'z')]))).toEqual({
      ok: false,
      results: [
        { check: 'redis', level: 'ok', finding: 'x' },
        { check: 'ports', level: 'fail', finding: 'y', action: 'z' },
      ],
    });
  });

  it('exit code 1 only when a check failed', () => {
    expect(exitCodeOf([ok('redis', 'x'), warn('ring', 'y', 'z')])).toBe(0);
    expect(exitCodeOf([ok('redis', 'x'), fail('ring', 'y', 'z')])).toBe(1);
  });

  it('parses --url, --token (ADMIN_TOKEN by default), --json and REDIS_URL; refuses what it cannot use', () => {
    expect(parseDoctorArgs(['--url', 'http://n1:8080/', '--json'], { ADMIN_TOKEN: 'env-token' })).toEqual({
      url: 'http://n1:8080',
      token: 'env-token',
      redisUrl: undefined,
      json: true,
      help: false,
    });
    expect(parseDoctorArgs(['--token', 'flag'], { REDIS_URL: 'redis://r:6379', ADMIN_TOKEN: 'env' })).toMatchObject({
      token: 'flag',
      redisUrl: 'redis://r:6379',
    });
    expect(() => parseDoctorArgs([], {})).toThrow(UsageError);
    expect(() => parseDoctorArgs(['--url', 'ftp://x'], {})).toThrow('--url ftp://x must be http:// or https://');
    expect(() => parseDoctorArgs(['--url'], {})).toThrow(UsageError);
  });

  it('redacts passwords from Redis URLs (with / + = or @ in them), reads host:port forms and Prometheus samples', () => {
    expect(redactRedisUrl('redis://:pw@h:6379/0')).toBe('redis://:***@h:6379/0');
    expect(redactRedisUrl('rediss://user:pw@h:6379')).toBe('rediss://user:***@h:6379');
    expect(redactRedisUrl('redis://:ab/cd+ef==@h:6379')).toBe('redis://:***@h:6379');
    expect(redactRedisUrl('redis://u:p@ss@h:6379')).toBe('redis://u:***@h:6379');
    expect(redactRedisUrl('redis-cluster://:x/y@c1:7000,c2:7000')).toBe('redis-cluster://:***@c1:7000,c2:7000');
    expect(redactRedisUrl('redis-sentinel://s1:26379,s2:26379/mymaster')).toBe('redis-sentinel://s1:26379,s2:26379/mymaster');
    expect(splitHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(splitHostPort('[::1]:50052')).toEqual({ host: '::1', port: 50052 });
    expect(splitHostPort('n1.iot-peers:0')).toBeUndefined();
    expect(splitHostPort('no-port')).toBeUndefined();
    const exposition =
      '# HELP iot_cluster_handoff_oldest_seconds x\n# TYPE iot_cluster_handoff_oldest_seconds gauge\niot_cluster_handoff_oldest_seconds 12.5\n';
    expect(sampleOf(exposition, 'iot_cluster_handoff_oldest_seconds')).toBe(12.5);
    expect(sampleOf(exposition, 'iot_node_ready')).toBeUndefined();
    expect(someOf(['a', 'b', 'c', 'd', 'e'])).toBe('a, b, c and 2 more');
  });
});

describe('the configuration check', () => {
  it('fails on what the node refuses at start besides loadConfig: ROLES without actors, OTEL_* it cannot honour', () => {
    expect(configurationCheck({ NODE_ID: 'n1' }).check.level).toBe('ok');
    expect(configurationCheck({ NODE_ID: 'n1' }).check.finding).toContain('tracing off');
    const roles = configurationCheck({ NODE_ID: 'n1', ROLES: 'edge' }).check;
    expect([roles.level, roles.finding]).toEqual(['fail', expect.stringContaining('ROLES must include actors')]);
    const otel = configurationCheck({
      NODE_ID: 'n1',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    }).check;
    expect([otel.level, otel.finding]).toEqual(['fail', expect.stringContaining('OTEL_EXPORTER_OTLP_PROTOCOL=grpc')]);
  });
});

describe('doctor and a REDIS_URL without scheme://', () => {
  it.each([
    [':hunter2-secret@redis:6379', '***@redis:6379'],
    ['redis:/u:hunter2-secret@h', '***@h'],
  ])('never prints the password of %s, in the configuration line or the redis line', async (url, shown) => {
    // Unparseable: the client is never created, so nothing is dialled.
    const results = await runDoctor({ env: { NODE_ID: 'n1', REDIS_URL: url }, redisUrl: url, url: undefined, token: undefined });
    expect(JSON.stringify(results)).not.toContain('hunter2');
    expect(formatText(results)).not.toContain('hunter2');
    const byName = (name: string) => results.find((r) => r.check === name);
    expect(byName('configuration')).toMatchObject({
      level: 'fail',
      finding: expect.stringContaining(`REDIS_URL=${shown}: must start with`),
    });
    expect(byName('redis')).toMatchObject({
      level: 'fail',
      finding: expect.stringContaining(`cannot reach Redis at ${shown}: must start with`),
    });
  });
});
