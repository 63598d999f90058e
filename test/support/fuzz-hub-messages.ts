/**
 * fast-check arbitraries of hub messages: well-typed HubMessages with arbitrary field values
 * (odd ids and device lists, seqs and ts_ms over the whole 64-bit range, hostile attribute maps,
 * command results for any id), raw bytes, and mutations of valid encodings.
 */
import fc from 'fast-check';
import { encodeFuzzMessage, type FuzzDevice, type FuzzHubMessage, type FuzzReport, type FuzzValue, type Wide } from './fuzz-hub-stream.ts';
import { hostileNumber, hostileString, PROTO_KEYS } from './fuzz-values.ts';

/** The hub a fuzzed stream authenticates as, and ids of another home it may name. */
export interface HubIdentity {
  readonly homeId: string;
  readonly hubId: string;
  readonly devices: readonly FuzzDevice[];
  /** A home and hub the credential is not for (the bystander's). */
  readonly foreign: { readonly homeId: string; readonly hubId: string };
  /** Ids of commands the app issued to this hub's devices, so that command results reach a real command. */
  readonly commandIds: readonly string[];
}

const U64_MAX = 2n ** 64n - 1n;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** seqs: small increasing ones mostly, and zero, 2^53 ± 1, the 64-bit maximum, anything. */
const seq: fc.Arbitrary<Wide> = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 1n, max: 1_000n }) },
  { weight: 1, arbitrary: fc.constantFrom(0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, U64_MAX) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: U64_MAX }) },
);

/** ts_ms: now-ish mostly, and negative, zero, the int64 extremes, anything. */
const tsMs: fc.Arbitrary<Wide> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 1_600_000_000_000n, max: 1_900_000_000_000n }) },
  { weight: 1, arbitrary: fc.constantFrom(-5n, 0n, -1n, I64_MIN, I64_MAX, 2n ** 53n, 8_640_000_000_000_001n) },
  { weight: 1, arbitrary: fc.bigInt({ min: I64_MIN, max: I64_MAX }) },
);

const value: fc.Arbitrary<FuzzValue> = fc.oneof(
  hostileNumber.map((number) => ({ number })),
  fc.boolean().map((flag) => ({ flag })),
  hostileString(5_000).map((text) => ({ text })),
  fc.constant({}),
);

const attributeKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('on', 'brightness', 'motion', 'illuminance', 'temperature') },
  { weight: 2, arbitrary: fc.constantFrom(...PROTO_KEYS) },
  { weight: 2, arbitrary: hostileString(300) },
);

function deviceId(identity: HubIdentity): fc.Arbitrary<string> {
  const own = identity.devices.map((d) => d.device_id);
  return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...own) }, { weight: 1, arbitrary: hostileString(300) });
}

function report(identity: HubIdentity): fc.Arbitrary<FuzzReport> {
  return fc.record(
    {
      seq,
      device_id: deviceId(identity),
      ts_ms: tsMs,
      attributes: fc.dictionary(attributeKey, value, { maxKeys: 6 }),
      event: fc.oneof(fc.constantFrom('motion_detected', 'double'), hostileString(300)),
    },
    { requiredKeys: ['seq', 'device_id', 'ts_ms', 'attributes'] },
  );
}

const device: fc.Arbitrary<FuzzDevice> = fc.record({
  device_id: hostileString(300),
  type: fc.oneof(fc.constantFrom('light', 'thermometer'), hostileString(300)),
  capabilities: fc.array(fc.oneof(fc.constantFrom('on', 'brightness'), hostileString(100)), { maxLength: 5 }),
});

/** A hello: mostly the credential's own, sometimes naming another hub or home, odd ids, odd or too many devices. */
export function hello(identity: HubIdentity): fc.Arbitrary<FuzzHubMessage> {
  const ids = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ hub_id: identity.hubId, home_id: identity.homeId }) },
    { weight: 1, arbitrary: fc.constant({ hub_id: identity.foreign.hubId, home_id: identity.foreign.homeId }) },
    {
      weight: 1,
      arbitrary: fc.record({ hub_id: hostileString(300), home_id: fc.oneof(fc.constant(identity.homeId), hostileString(300)) }),
    },
  );
  const devices = fc.oneof(
    { weight: 5, arbitrary: fc.constant(identity.devices) },
    { weight: 2, arbitrary: fc.array(device, { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constant([...identity.devices, ...identity.devices]) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 990, max: 1_010 })
        .map((n) => Array.from({ length: n }, (_, i) => ({ device_id: `d${i}`, type: 'light', capabilities: ['on'] }))),
    },
  );
  return fc
    .record({ ids, firmware: hostileString(500), devices })
    .map(({ ids: i, firmware, devices: d }) => ({ hello: { ...i, firmware, devices: d } }));
}

/** A message after the hello: report batches (up to past a small credit window), command results, pings, empty ones. */
export function afterHello(identity: HubIdentity, maxBatch: number): fc.Arbitrary<FuzzHubMessage> {
  const ownDevice = fc.constantFrom(...identity.devices.map((d) => d.device_id));
  const commandId = fc.oneof(
    fc.constantFrom(...identity.commandIds),
    fc.tuple(ownDevice, hostileString(200)).map(([d, k]) => `${d}~${k}`),
    fc.tuple(hostileString(100), hostileString(100)).map(([d, k]) => `${d}~${k}`),
    hostileString(300),
  );
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(report(identity), { maxLength: 4 }).map((items) => ({ reports: { items } })) },
    {
      weight: 1,
      arbitrary: fc
        .array(report(identity), { minLength: Math.max(0, maxBatch - 6), maxLength: maxBatch })
        .map((items) => ({ reports: { items } })),
    },
    {
      // Past any sane message size limit (the fuzz nodes take 64 KiB).
      weight: 1,
      arbitrary: fc.tuple(report(identity), fc.integer({ min: 1, max: 100_000 })).map(([r, n]) => ({
        reports: { items: [{ ...r, attributes: { note: { text: 'x'.repeat(n) } } }] },
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ command_id: commandId, ok: fc.boolean(), error: hostileString(3_000) })
        .map((command_result) => ({ command_result })),
    },
    { weight: 1, arbitrary: fc.constantFrom<FuzzHubMessage>({ ping: {} }, { empty: true }) },
    { weight: 1, arbitrary: hello(identity) },
  );
}

/** Bytes: random, a valid encoding with bytes flipped, cut short or followed by another message (a protobuf merge). */
export function rawBytes(identity: HubIdentity): fc.Arbitrary<FuzzHubMessage> {
  const valid = fc.oneof(hello(identity), afterHello(identity, 4)).map(encodeFuzzMessage);
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((raw) => ({ raw })),
    fc
      .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
      .map(([bytes, flips]) => {
        const raw = new Uint8Array(bytes);
        for (const [at, b] of flips) if (raw.length > 0) raw[at % raw.length] = b;
        return { raw };
      }),
    fc
      .tuple(valid, fc.nat())
      .map(([bytes, cut]) => ({ raw: new Uint8Array(bytes.subarray(0, bytes.length === 0 ? 0 : cut % bytes.length)) })),
    fc.tuple(valid, valid).map(([a, b]) => ({ raw: new Uint8Array(Buffer.concat([a, b])) })),
  );
}

/** What one fuzzed stream does: how it authenticates, then its messages in order. */
export interface StreamScript {
  /** `valid`: the hub's secret; `none`: no metadata; else this `authorization` verbatim. */
  readonly auth: 'valid' | 'none' | { readonly authorization: string };
  readonly messages: readonly FuzzHubMessage[];
}

/** grpc metadata values: printable ASCII (grpc-js refuses anything else before it is sent). */
const metadataValue: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 }),
  fc.constantFrom('Bearer', 'Bearer ', 'bearer hub_x', 'Basic abc', 'Bearer ' + 'k'.repeat(5_000)),
);

/** Scripts: mostly the hub's own secret and a hello first; `rawShare` of the later messages as raw bytes. */
export function streamScript(identity: HubIdentity, maxBatch: number, rawShare: number): fc.Arbitrary<StreamScript> {
  const typedWeight = Math.round((1 - rawShare) * 10);
  const later = fc.oneof(
    ...[
      { weight: typedWeight, arbitrary: afterHello(identity, maxBatch) },
      { weight: 10 - typedWeight, arbitrary: rawBytes(identity) },
    ].filter((w) => w.weight > 0),
  );
  const first = fc.oneof({ weight: 6, arbitrary: hello(identity) }, { weight: 1, arbitrary: later });
  return fc.record({
    auth: fc.oneof(
      { weight: 8, arbitrary: fc.constant('valid' as const) },
      { weight: 1, arbitrary: fc.constant('none' as const) },
      { weight: 1, arbitrary: metadataValue.map((authorization) => ({ authorization })) },
    ),
    // Now and then no first message at all: the stream half-closes before any hello.
    messages: fc
      .tuple(fc.option(first, { freq: 12, nil: undefined }), fc.array(later, { maxLength: 5 }))
      .map(([f, rest]) => (f === undefined ? [] : [f, ...rest])),
  });
}
