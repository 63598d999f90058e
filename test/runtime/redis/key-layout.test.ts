import { describe, expect, it } from 'vitest';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { KeyLayout } from '../../../runtime/redis/key-layout.ts';

/** CRC16/XMODEM (poly 0x1021, init 0), the checksum Redis Cluster hashes keys with. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key: the hash tag (first non-empty `{...}`) if any, else the whole key. */
function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % 16384;
}

const hashTag = (key: string): string | undefined => /\{([^}]+)\}/.exec(key)?.[1];

describe('slotOf (the test helper)', () => {
  it('matches the Redis Cluster specification', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    expect(slotOf('foo{}{bar}')).toBe(slotOf('foo{}{bar}')); // empty tag: the whole key is hashed
    expect(slotOf('foo{}{bar}')).not.toBe(slotOf('bar'));
  });
});

describe('KeyLayout', () => {
  const SHARDS = 1024;
  const actors = ['home:h1', 'device:h1:lamp', 'hub:h1:hub-1', 'device:h-2:motion{1}', 'device:h.3:a:b:c', 'home:H_99'];

  it("puts an actor's journal and snapshot and its shard's fence, lease and reminder index in one slot", () => {
    const keys = new KeyLayout('iot');
    const shardOf = shardOfActor(SHARDS);
    for (const id of actors) {
      const shard = shardOf(id);
      const own = [keys.journal(shard, id), keys.snapshot(shard, id), keys.fence(shard), keys.lease(shard), keys.reminders(shard)];
      expect(new Set(own.map(hashTag)), id).toEqual(new Set([`iot:${shard}`]));
      expect(new Set(own.map(slotOf)), id).toEqual(new Set([slotOf(keys.fence(shard))]));
    }
  });

  it('keeps a home, its devices and its hubs in one slot', () => {
    const keys = new KeyLayout('iot');
    const shardOf = shardOfActor(SHARDS);
    const family = ['home:h42', 'device:h42:d1', 'device:h42:d2', 'hub:h42:hub-1'];
    const slots = family.map((id) => slotOf(keys.journal(shardOf(id), id)));
    expect(new Set(slots).size).toBe(1);
  });

  it('spreads shards over many slots', () => {
    const keys = new KeyLayout('iot');
    const slots = new Set(Array.from({ length: SHARDS }, (_, s) => slotOf(keys.fence(s))));
    expect(slots.size).toBeGreaterThan(SHARDS * 0.9);
  });

  it('names the cluster in every key, so clusters can share a Redis', () => {
    for (const cluster of ['iot', 'staging-eu', 'iot2']) {
      const keys = new KeyLayout(cluster);
      const all = [
        keys.shardTag(7),
        keys.fence(7),
        keys.lease(7),
        keys.journal(7, 'home:h1'),
        keys.snapshot(7, 'home:h1'),
        keys.meta(),
        keys.hubCredential('ab'.repeat(32)),
        keys.appToken('cd'.repeat(32)),
      ];
      for (const key of all) expect(key.includes(cluster), key).toBe(true);
      // Another cluster's keys never collide with these, even when one name prefixes the other.
      const other = new KeyLayout(`${cluster}x`);
      expect(other.fence(7)).not.toBe(keys.fence(7));
      expect(other.meta()).not.toBe(keys.meta());
    }
  });

  it('matches every key of its cluster and none of another with the `everything` patterns', () => {
    const keys = new KeyLayout('iot');
    const other = new KeyLayout('iot2');
    const matches = (key: string, layout: KeyLayout): boolean =>
      layout.everything().some((p) => new RegExp(`^${p.replace(/[{}]/g, '\\$&').replace('*', '.*')}$`).test(key));
    for (const key of [keys.fence(1), keys.journal(1, 'home:h'), keys.meta(), keys.appToken('x')]) {
      expect(matches(key, keys), key).toBe(true);
      expect(matches(key, other), key).toBe(false);
    }
  });
});
