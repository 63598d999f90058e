/**
 * fast-check arbitraries for fuzzing the node's edges: hostile strings and numbers, JSON with
 * prototype keys and deep nesting, and mutations of valid bodies (which reach deeper than random
 * JSON, since most random JSON is refused at the first field). Plus the seed and run count of a
 * fuzz run.
 */
import fc from 'fast-check';

/**
 * Seed and runs per property: fixed for CI (a failure replays exactly); `FUZZ_SEED` and
 * `FUZZ_RUNS` hunt with other seeds locally. fast-check prints the seed and path of a failure.
 */
export function fuzzSettings(defaultSeed: number, defaultRuns: number): { seed: number; numRuns: number } {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : defaultSeed;
  const numRuns = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : defaultRuns;
  if (!Number.isInteger(seed) || !Number.isInteger(numRuns) || numRuns < 1) throw new Error('FUZZ_SEED and FUZZ_RUNS must be integers');
  return { seed, numRuns };
}

/** Keys that reach an object's prototype or shadow its methods when code assigns them naively. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'toJSON'] as const;

/** Strings that broke parsers somewhere: empty, dots, percent signs, NUL, lone surrogates, case-folding letters, over-long ids. */
const ODD_STRINGS = [
  '',
  ' ',
  '.',
  '..',
  '~',
  '~~',
  ':',
  '/',
  '%',
  '%zz',
  '%C0%AF',
  '\u0000',
  '\uD800',
  '\uDFFF',
  '🙂',
  'ﬀ',
  'İ',
  '\u202E',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  'a'.repeat(64),
  'a'.repeat(65),
  'a'.repeat(128),
  'a'.repeat(129),
  'a'.repeat(193),
  ...PROTO_KEYS,
];

/** Any string a client could send: ascii, full unicode (lone surrogates too), odd constants, long runs. */
export function hostileString(maxLength = 2_000): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
    { weight: 3, arbitrary: fc.constantFrom(...ODD_STRINGS) },
    { weight: 1, arbitrary: fc.integer({ min: 65, max: maxLength }).map((n) => 'x'.repeat(n)) },
  );
}

/** Numbers at the edges: huge, tiny, negative zero, past 2^53, fractions, and any double (NaN and ±Infinity serialize as null). */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    -1,
    1,
    0.5,
    1e308,
    -1e308,
    5e-324,
    1e21,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 53),
    20_000,
    1e6,
    1e9,
    1e15,
  ),
);

const key: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 2, arbitrary: fc.constantFrom(...PROTO_KEYS) },
  { weight: 1, arbitrary: hostileString(200) },
);

/**
 * Objects that throw when code turns them into a string or number (`${x}`, String(x), x + '',
 * x > 0): JSON.parse gives them own `toString` / `valueOf` keys that are not functions.
 */
export const POISON_OBJECTS: readonly unknown[] = [
  { toString: false },
  { toString: null, valueOf: null },
  { valueOf: 1, toString: 'x' },
  [{ toString: false }],
  { toJSON: false },
  { constructor: { prototype: { polluted: true } } },
];

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.boolean() },
  { weight: 3, arbitrary: hostileNumber },
  { weight: 4, arbitrary: hostileString() },
  { weight: 1, arbitrary: fc.constantFrom(...POISON_OBJECTS) },
);

/** JSON values with prototype keys, edge numbers and odd strings, a few levels deep. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; array: unknown[]; object: Record<string, unknown> }>(
  (tie) => ({
    value: fc.oneof({ depthSize: 'small', maxDepth: 5 }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 5 }),
    object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  }),
).value;

/** A value nested `depth` levels deep in arrays (`wrapKey` undefined) or in objects under `wrapKey`. */
export function nested(depth: number, inner: unknown, wrapKey: string | undefined): unknown {
  let v = inner;
  for (let i = 0; i < depth; i++) v = wrapKey === undefined ? [v] : { [wrapKey]: v };
  return v;
}

/**
 * Very deep values (thousands of levels: enough to overflow a naive recursive walk on the node)
 * travel through the test as a short marker string that `expandDeep` turns into JSON text when
 * the body is written: the test's own recursion (fast-check's printing and shrinking,
 * structuredClone) never sees them.
 */
const DEEP_MARKER = /"⟦deep (\d+) (\S+)⟧"/g;

/** The marker of a value nested `depth` levels under `wrapKey` (`[]`: in arrays) around a `1`. */
const deepMarker = (depth: number, wrapKey: string): string => `⟦deep ${depth} ${wrapKey}⟧`;

/** JSON text with every deep marker (as a JSON string) replaced by the deep value it stands for. */
export function expandDeep(json: string): string {
  return json.replace(DEEP_MARKER, (_, d: string, k: string) => {
    const depth = Number(d);
    return k === '[]' ? '['.repeat(depth) + '1' + ']'.repeat(depth) : `{${JSON.stringify(k)}:`.repeat(depth) + '1' + '}'.repeat(depth);
  });
}

const WRAP_KEYS = ['[]', 'a', 'condition', 'conditions', 'desired', '__proto__'];

/** Deeply nested JSON values: in arrays, in objects under one key, or under a field a schema recurses into. */
export const deepJson: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .record({ depth: fc.integer({ min: 20, max: 200 }), key: fc.constantFrom(...WRAP_KEYS), inner: leaf })
    .map(({ depth, key: k, inner }) => nested(depth, inner, k === '[]' ? undefined : k)),
  fc.tuple(fc.integer({ min: 1_000, max: 8_000 }), fc.constantFrom(...WRAP_KEYS)).map(([depth, k]) => deepMarker(depth, k)),
);

/**
 * Body texts no serializer would write: truncated JSON, numbers past double range, BOMs,
 * duplicate and prototype keys, deep brackets, NUL bytes, JSON that is not an object.
 */
export const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '{',
    '}',
    '[]',
    'null',
    'true',
    '0',
    '"x"',
    '{"a":}',
    '{"a":1,}',
    "{'a':1}",
    '\uFEFF{}',
    '{}\u0000',
    '{"desired":{"on":1e400}}',
    '{"weights":{"n1":1e400}}',
    '{"ttlMs":123456789012345678901234567890}',
    '{"name":"set","name":"off"}',
    '{"__proto__":{"admin":true}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '{"desired":{"__proto__":{"on":true}}}',
  ),
  fc.integer({ min: 1, max: 30_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 10_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.json({ maxDepth: 4 }).map((t) => t.slice(0, Math.max(0, t.length - 1))),
  fc.json({ maxDepth: 4, stringUnit: 'binary' }),
);

type Path = readonly (string | number)[];

/** Every path to a value inside `v` (the root included). */
export function pathsOf(v: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...at, i])));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

/** One edit of a valid body: replace the value at a path, delete it, or add a key next to it. */
export type Mutation =
  | { readonly op: 'replace'; readonly path: Path; readonly value: unknown }
  | { readonly op: 'delete'; readonly path: Path }
  | { readonly op: 'add'; readonly path: Path; readonly key: string; readonly value: unknown };

/** Own data property, even for `__proto__` (an assignment would set the prototype instead). */
function define(target: Record<string | number, unknown>, k: string | number, value: unknown): void {
  Object.defineProperty(target, k, { value, enumerable: true, writable: true, configurable: true });
}

/** `template` (deep-copied) with `m` applied. */
export function mutate(template: unknown, m: Mutation): unknown {
  const root: unknown = structuredClone(template);
  if (m.path.length === 0) {
    if (m.op === 'replace') return m.value;
    if (m.op === 'delete') return undefined;
  }
  const parentPath = m.op === 'add' ? m.path : m.path.slice(0, -1);
  let parent = root as Record<string | number, unknown>;
  for (const k of parentPath) {
    // A second edit may name a path the first one removed: it then changes nothing.
    if (typeof parent !== 'object' || parent === null) return root;
    parent = parent[k] as Record<string | number, unknown>;
  }
  if (typeof parent !== 'object' || parent === null) return root;
  if (m.op === 'add') {
    if (typeof parent === 'object' && parent !== null && !Array.isArray(parent)) define(parent, m.key, m.value);
    else if (Array.isArray(parent)) parent.push(m.value);
    return root;
  }
  const last = m.path[m.path.length - 1]!;
  if (m.op === 'replace') define(parent, last, m.value);
  else if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete parent[last];
  return root;
}

/** Edits of `template`: replacements by hostile or deep values, deletions, and added (often prototype) keys. */
export function mutationOf(template: unknown): fc.Arbitrary<Mutation> {
  const paths = pathsOf(template);
  const path = fc.constantFrom(...paths);
  const value = fc.oneof({ weight: 6, arbitrary: hostileJson }, { weight: 1, arbitrary: deepJson });
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('replace' as const), path, value }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), path }) },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('add' as const), path, key, value }),
    },
  );
}

/** A valid body, or that body with one or two edits. */
export function nearValid(template: unknown): fc.Arbitrary<unknown> {
  const m = mutationOf(template);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(template) },
    { weight: 4, arbitrary: m.map((x) => mutate(template, x)) },
    { weight: 2, arbitrary: fc.tuple(m, m).map(([a, b]) => mutate(mutate(template, a), b)) },
  );
}
