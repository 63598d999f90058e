import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditLimits,
  compareEntryIds,
  outcomeOf,
  type AuditLimits,
  type AuditLog,
  type AuditRecord,
} from '../../../edge-api/audit/audit-log.ts';
import { DEFAULT_MEMORY_AUDIT_LIMITS, MemoryAuditLog } from '../../../edge-api/audit/memory-audit-log.ts';
import { RedisAuditLog } from '../../../edge-api/audit/redis-audit-log.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';
import { startTestRedis, type TestRedis } from '../../../tools/process/redis-server.ts';
import { RedisClients } from '../../support/redis-node.ts';

let redis: TestRedis;
const clients = new RedisClients(() => redis.url);
let suite = 0;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  clients.disconnectAll();
  await redis.stop();
});

/** A record at `at` epoch ms by `who`, about `homeId` (none: a cluster-wide action), answered `status`. */
function record(at: number, who: string, homeId?: string, status = 201): AuditRecord {
  return {
    at,
    time: new Date(at).toISOString(),
    node: 'n1',
    who,
    action: homeId === undefined ? 'tokens.post' : 'homes.put',
    method: homeId === undefined ? 'POST' : 'PUT',
    route: homeId === undefined ? '/v1/tokens' : '/v1/homes/:homeId',
    target: homeId === undefined ? {} : { homeId },
    status,
    outcome: outcomeOf(status),
    ...(status === 403 ? { code: 'forbidden' } : {}),
  };
}

const factories: [string, (limits?: Partial<AuditLimits>) => Promise<AuditLog>][] = [
  ['MemoryAuditLog', async (limits) => new MemoryAuditLog(limits)],
  [
    'RedisAuditLog',
    async (limits) =>
      new RedisAuditLog({
        client: await clients.connect(),
        keys: new KeyLayout(`${redis.cluster}a${suite++}`),
        registry: new Registry(),
        logger: silentLogger,
        ...(limits ? { limits } : {}),
      }),
  ],
];

describe.each(factories)('%s', (_name, open) => {
  it('reads back what was appended, newest first, with ids that order the log', async () => {
    const log = await open();
    await log.append(record(1_000, 'admin', 'h1'));
    await log.append(record(2_000, 'tok_a', 'h1'));
    await log.append(record(3_000, 'admin'));
    await log.settled();
    const page = await log.read({ limit: 10 });
    expect(page.nextCursor).toBeNull();
    expect(page.items.map((e) => [e.at, e.who])).toEqual([
      [3_000, 'admin'],
      [2_000, 'tok_a'],
      [1_000, 'admin'],
    ]);
    expect(page.items[1]).toMatchObject({ ...record(2_000, 'tok_a', 'h1'), id: expect.stringMatching(/^\d+-\d+$/) });
    const ids = page.items.map((e) => e.id);
    expect([...ids].sort(compareEntryIds).reverse()).toEqual(ids);
  });

  it("keeps a home's entries in its own log as well as the cluster's", async () => {
    const log = await open();
    await log.append(record(1_000, 'admin', 'h1'));
    await log.append(record(1_001, 'admin', 'h2'));
    await log.append(record(1_002, 'tok_b', 'h1'));
    await log.append(record(1_003, 'admin'));
    await log.settled();
    expect((await log.read({ homeId: 'h1', limit: 10 })).items.map((e) => e.at)).toEqual([1_002, 1_000]);
    expect((await log.read({ homeId: 'h2', limit: 10 })).items.map((e) => e.at)).toEqual([1_001]);
    expect((await log.read({ homeId: 'h3', limit: 10 })).items).toEqual([]);
    expect((await log.read({ limit: 10 })).items).toHaveLength(4);
  });

  it('pages with a cursor until the last page, which says so', async () => {
    const log = await open();
    for (let i = 0; i < 7; i++) await log.append(record(10_000 + i, `tok_${i}`, 'h1'));
    await log.settled();
    for (const homeId of [undefined, 'h1']) {
      const seen: number[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThan(4);
        const page = await log.read({ limit: 3, ...(homeId ? { homeId } : {}), ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((e) => e.at));
        if (page.nextCursor === null) break;
        expect(page.items).toHaveLength(3);
        cursor = page.nextCursor;
      }
      expect(seen).toEqual([10_006, 10_005, 10_004, 10_003, 10_002, 10_001, 10_000]);
    }
    // A page that ends exactly at the oldest entry says it is the last.
    const exact = await log.read({ limit: 7 });
    expect(exact.items).toHaveLength(7);
    expect(exact.nextCursor).toBeNull();
  });

  it('stops at since (epoch ms of the append, inclusive), also across pages', async () => {
    const log = await open();
    // Appended one at a time, each in a later millisecond: the log (Redis: the server's clock)
    // stamps each entry's id with the time it took it.
    for (let i = 0; i < 5; i++) {
      await log.append(record(Date.now(), `tok_${i}`, 'h1'));
      await log.settled();
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const all = (await log.read({ limit: 10 })).items;
    const msOf = (id: string): number => Number(id.split('-')[0]);
    expect(new Set(all.map((e) => msOf(e.id))).size).toBe(5);
    const since = msOf(all[2]!.id);
    const expected = all.filter((e) => msOf(e.id) >= since).map((e) => e.who);
    expect(expected).toEqual(['tok_4', 'tok_3', 'tok_2']);
    expect((await log.read({ sinceMs: since, limit: 10 })).items.map((e) => e.who)).toEqual(expected);
    const first = await log.read({ homeId: 'h1', sinceMs: since, limit: 2 });
    expect(first.items.map((e) => e.who)).toEqual(expected.slice(0, 2));
    const rest = await log.read({ homeId: 'h1', sinceMs: since, limit: 10, cursor: first.nextCursor! });
    expect(rest.items.map((e) => e.who)).toEqual(expected.slice(2));
    expect(rest.nextCursor).toBeNull();
    expect((await log.read({ sinceMs: msOf(all[0]!.id) + 1, limit: 10 })).items).toEqual([]);
  });

  it('answers a read below the first possible id (cursor 0-0) with an empty last page', async () => {
    const log = await open();
    await log.append(record(1_000, 'admin', 'h1'));
    await log.settled();
    for (const homeId of [undefined, 'h1', 'h2']) {
      expect(await log.read({ limit: 5, cursor: '0-0', ...(homeId ? { homeId } : {}) })).toEqual({ items: [], nextCursor: null });
    }
    expect(await log.read({ limit: 5, cursor: '0-00' })).toEqual({ items: [], nextCursor: null });
  });

  it("puts a 403 in the cluster's log only, never in the log of the home it named", async () => {
    const log = await open();
    await log.append(record(1_000, 'tok_x', 'junk', 403));
    await log.append(record(1_001, 'tok_x', 'h1', 403));
    await log.append(record(1_002, 'tok_x', 'h1', 404));
    await log.settled();
    expect((await log.read({ limit: 10 })).items.map((e) => [e.target.homeId, e.status])).toEqual([
      ['h1', 404],
      ['h1', 403],
      ['junk', 403],
    ]);
    expect((await log.read({ homeId: 'junk', limit: 10 })).items).toEqual([]);
    expect((await log.read({ homeId: 'h1', limit: 10 })).items.map((e) => e.status)).toEqual([404]);
  });

  it("forgets a deleted home's log, entries appended just before included, and keeps them in the cluster's", async () => {
    const log = await open();
    await log.append(record(1_000, 'admin', 'h1'));
    await log.append(record(1_001, 'admin', 'h2'));
    await log.append(record(1_002, 'admin', 'h1'));
    log.forgetHome('h1');
    log.forgetHome('never-written');
    await log.settled();
    expect((await log.read({ homeId: 'h1', limit: 10 })).items).toEqual([]);
    expect((await log.read({ homeId: 'h2', limit: 10 })).items).toHaveLength(1);
    expect((await log.read({ limit: 10 })).items).toHaveLength(3);
    await log.append(record(1_003, 'admin', 'h1'));
    await log.settled();
    expect((await log.read({ homeId: 'h1', limit: 10 })).items.map((e) => e.at)).toEqual([1_003]);
  });

  it("keeps about the newest clusterMaxLen entries, and homeMaxLen of each home's", async () => {
    const log = await open({ clusterMaxLen: 20, homeMaxLen: 3 });
    for (let i = 0; i < 1_000; i++) await log.append(record(20_000 + i, 'admin', i % 2 === 0 ? 'even' : 'odd'));
    await log.settled();
    const all = (await log.read({ limit: 500 })).items;
    // Trimming is approximate (whole Redis stream nodes of 100 entries, a tenth of the cap in memory).
    expect(all.length).toBeGreaterThanOrEqual(20);
    expect(all.length).toBeLessThanOrEqual(200);
    expect(all[0]!.at).toBe(20_999);
    const odd = (await log.read({ homeId: 'odd', limit: 500 })).items;
    expect(odd.length).toBeGreaterThanOrEqual(3);
    expect(odd.length).toBeLessThanOrEqual(200);
    expect(odd[0]!.at).toBe(20_999);
  });
});

describe('MemoryAuditLog', () => {
  it('keeps ids growing when the clock steps back', async () => {
    const log = new MemoryAuditLog();
    await log.append(record(5_000, 'admin'));
    await log.append(record(4_000, 'admin'));
    await log.append(record(4_000, 'admin'));
    const ids = (await log.read({ limit: 10 })).items.map((e) => e.id);
    expect(ids).toEqual(['5000-2', '5000-1', '5000-0']);
  });

  it('pages with a cursor through many entries taken in the same millisecond', async () => {
    const log = new MemoryAuditLog();
    for (let i = 0; i < 25; i++) await log.append(record(7_000, `tok_${i}`, 'h1'));
    await log.append(record(7_001, 'admin', 'h1'));
    for (const homeId of [undefined, 'h1']) {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThan(7);
        const page = await log.read({ limit: 4, ...(homeId ? { homeId } : {}), ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((e) => e.who));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(['admin', ...Array.from({ length: 25 }, (_, i) => `tok_${24 - i}`)]);
    }
    // since is the millisecond: all 25 of 7 000 are at or after it, none after 7 000.
    expect((await log.read({ sinceMs: 7_000, limit: 50 })).items).toHaveLength(26);
    expect((await log.read({ sinceMs: 7_001, limit: 50 })).items.map((e) => e.who)).toEqual(['admin']);
  });

  it('defaults to a small log (10 000 entries, 1 000 per home, 1 000 homes) and keeps at most maxHomes homes', async () => {
    expect(DEFAULT_MEMORY_AUDIT_LIMITS).toEqual({ clusterMaxLen: 10_000, homeMaxLen: 1_000, homeTtlMs: 0, maxHomes: 1_000 });
    const big = new MemoryAuditLog();
    for (let i = 0; i < 12_000; i++) await big.append(record(i, 'admin'));
    // Trimmed to about the newest 10 000 (a tenth more at most): the oldest thousand are gone.
    expect((await big.read({ limit: 500, cursor: '1000-0' })).items).toEqual([]);
    expect((await big.read({ limit: 500 })).items[0]!.at).toBe(11_999);
    const log = new MemoryAuditLog({ maxHomes: 3 });
    for (const home of ['a', 'b', 'c', 'd', 'b']) await log.append(record(1_000, 'admin', home));
    const kept = [];
    for (const home of ['a', 'b', 'c', 'd']) if ((await log.read({ homeId: home, limit: 5 })).items.length > 0) kept.push(home);
    expect(kept).toEqual(['b', 'c', 'd']);
    expect(() => new MemoryAuditLog({ maxHomes: 0 })).toThrow(/maxHomes/);
  });

  it('drops the logs of the homes written least recently once all homes together pass clusterMaxLen', async () => {
    const log = new MemoryAuditLog({ clusterMaxLen: 10, homeMaxLen: 10 });
    for (let i = 0; i < 5; i++) await log.append(record(1_000 + i, 'admin', 'old'));
    for (let i = 0; i < 5; i++) await log.append(record(2_000 + i, 'admin', 'warm'));
    await log.append(record(2_500, 'admin', 'old')); // old is now written more recently than warm
    for (let i = 0; i < 3; i++) await log.append(record(3_000 + i, 'admin', 'new'));
    expect((await log.read({ homeId: 'warm', limit: 50 })).items).toEqual([]);
    expect((await log.read({ homeId: 'old', limit: 50 })).items).toHaveLength(6);
    expect((await log.read({ homeId: 'new', limit: 50 })).items).toHaveLength(3);
  });
});

describe('RedisAuditLog', () => {
  async function open(cluster = `${redis.cluster}r${suite++}`, extra: { maxInFlight?: number } = {}) {
    const client = await clients.connect();
    const keys = new KeyLayout(cluster);
    const registry = new Registry();
    const log = new RedisAuditLog({ client, keys, registry, logger: silentLogger, limits: { homeTtlMs: 60_000 }, ...extra });
    const appends = async (result: string) =>
      (await registry.getSingleMetric('iot_audit_appends_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
    return { client, keys, log, appends };
  }

  it("writes the cluster's stream and the home's stream under the cluster's name; the home's expires", async () => {
    const { client, keys, log, appends } = await open();
    await log.append(record(1_000, 'admin', 'h1'));
    await log.append(record(1_001, 'admin'));
    await log.settled();
    expect(keys.auditLog()).toBe(`${keys.cluster}:audit`);
    expect(keys.homeAuditLog('h1')).toBe(`${keys.cluster}:audit:home:h1`);
    expect(await client.xlen(keys.auditLog())).toBe(2);
    expect(await client.xlen(keys.homeAuditLog('h1'))).toBe(1);
    const ttl = await client.pttl(keys.homeAuditLog('h1'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await client.pttl(keys.auditLog())).toBe(-1);
    expect(await appends('ok')).toBe(2);
  });

  it('creates no key for a home named only by refused 403s, and removes the key of a forgotten home', async () => {
    const { client, keys, log } = await open();
    for (let i = 0; i < 20; i++) await log.append(record(1_000 + i, 'tok_x', `junk-${i}`, 403));
    await log.append(record(2_000, 'admin', 'h1'));
    await log.settled();
    expect((await client.keys(`${keys.cluster}:audit:home:*`)).sort()).toEqual([keys.homeAuditLog('h1')]);
    expect(await client.xlen(keys.auditLog())).toBe(21);
    log.forgetHome('h1');
    await log.settled();
    expect(await client.keys(`${keys.cluster}:audit:home:*`)).toEqual([]);
  });

  it('is read from another connection (another node)', async () => {
    const a = await open();
    const b = await open(a.keys.cluster);
    await a.log.append(record(1_000, 'tok_x', 'h9'));
    expect((await b.log.read({ homeId: 'h9', limit: 5 })).items).toEqual([{ ...record(1_000, 'tok_x', 'h9'), id: expect.any(String) }]);
  });

  it('counts a failed append and never throws while Redis is away; reads reject', async () => {
    const own = await startTestRedis();
    const client = new RedisClients(() => own.url);
    try {
      const registry = new Registry();
      const log = new RedisAuditLog({ client: await client.connect(), keys: new KeyLayout(own.cluster), registry, logger: silentLogger });
      own.kill();
      // Resolves (never rejects) once the write failed: a request is never failed for it.
      await expect(log.append(record(1_000, 'admin', 'h1'))).resolves.toBeUndefined();
      const values = (await registry.getSingleMetric('iot_audit_appends_total')!.get()).values;
      expect(values.find((v) => v.labels.result === 'failed')?.value).toBe(1);
      await expect(log.read({ limit: 1 })).rejects.toThrow();
    } finally {
      client.disconnectAll();
      await own.stop();
    }
  });

  it('drops (and counts) appends beyond maxInFlight instead of queueing them', async () => {
    const { log, appends } = await open(undefined, { maxInFlight: 2 });
    // Issued together (as concurrent requests would), not one after another.
    await Promise.all([0, 1, 2, 3, 4].map((i) => log.append(record(1_000 + i, 'admin'))));
    expect(await appends('dropped')).toBe(3);
    expect(await appends('ok')).toBe(2);
    expect((await log.read({ limit: 10 })).items).toHaveLength(2);
  });
});

describe('audit limits and outcomes', () => {
  it('refuses limits that would not bound the log, naming them', () => {
    expect(() => auditLimits({ clusterMaxLen: 0 })).toThrow(/clusterMaxLen/);
    expect(() => auditLimits({ homeMaxLen: 1.5 })).toThrow(/homeMaxLen/);
    expect(() => auditLimits({ homeTtlMs: -1 })).toThrow(/homeTtlMs/);
    expect(auditLimits({ homeTtlMs: 0 })).toMatchObject({ homeTtlMs: 0, clusterMaxLen: 100_000, homeMaxLen: 1_000 });
  });

  it('calls 2xx succeeded, 4xx refused and 5xx failed', () => {
    expect([200, 201, 204, 304, 400, 403, 409, 500, 503].map(outcomeOf)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
      'refused',
      'refused',
      'refused',
      'failed',
      'failed',
    ]);
  });
});
