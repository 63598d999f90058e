/** A tiny seeded PRNG (mulberry32) for property-style tests that must replay exactly. */

/** Returns a generator of floats in [0, 1), fully determined by the 32-bit `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n) drawn from `rand`. */
export const randomInt = (rand: () => number, n: number): number => Math.floor(rand() * n);

/** A random element of a non-empty array. */
export function pick<T>(rand: () => number, xs: readonly T[]): T {
  if (xs.length === 0) throw new Error('pick from an empty array');
  return xs[randomInt(rand, xs.length)] as T;
}

/** A new array with the elements of `xs` in a random order (Fisher–Yates). */
export function shuffle<T>(rand: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rand, i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
