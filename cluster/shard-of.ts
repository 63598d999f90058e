/** Placement's first step: which shard a home (and so each of its actors) belongs to. */

/** FNV-1a over UTF-16 code units, then the murmur3 finalizer so every output bit is well mixed. */
export function mixHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** `shard = mixHash(homeId) mod shardCount`; a home, its devices and hubs share it. */
export const shardOfHome = (homeId: string, shardCount: number): number => mixHash(homeId) % shardCount;

/**
 * The home id inside an actor id (`device:{homeId}:{deviceId}` → homeId). Every actor id is
 * `<kind>:<homeId>[:...]` and home ids contain no `:`.
 */
export function homeOfActor(actorId: string): string {
  const first = actorId.indexOf(':');
  const second = actorId.indexOf(':', first + 1);
  return second < 0 ? actorId.slice(first + 1) : actorId.slice(first + 1, second);
}

/** The shard function the store and the ring use for actor ids. */
export const shardOfActor =
  (shardCount: number) =>
  (actorId: string): number =>
    shardOfHome(homeOfActor(actorId), shardCount);
