import { execFileSync } from 'node:child_process';
import { trace } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorCell } from '../../runtime/actor-cell.ts';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
import { ShardWindow } from '../../runtime/shard-window.ts';
import {
  activeCarrier,
  carrierOf,
  contextOf,
  runInSpan,
  runWithCarrier,
  SpanKind,
  startSpanFrom,
  tracingOn,
} from '../../runtime/tracing.ts';
import { GatedStore } from '../support/gated-store.ts';
import { parentOf, startInMemoryTracing, type InMemoryTracing, spyOnTracingApi } from '../support/in-memory-tracing.ts';
import { counterBehavior, counterTellOf } from './counter-behavior.ts';

const hosts: ActorHost[] = [];
let tracing: InMemoryTracing | undefined;

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
  await tracing?.stop();
  tracing = undefined;
  vi.restoreAllMocks();
});

/** A host of counters `counter:<shard>:<name>`; `relay` tells another counter, `add` has an effect that leaves the shard. */
function makeHost(store: MemoryStore | GatedStore = new MemoryStore()) {
  const effects: { from: string; effects: readonly unknown[]; carrier: string | undefined }[] = [];
  const host = new ActorHost({
    behaviors: [counterBehavior],
    store,
    logger: silentLogger,
    registry: new Registry(),
    shardOf: (id) => Number(id.split(':')[1]),
    tellOf: counterTellOf,
    // What an effect sends continues the step's trace: the dispatcher sees the step's span active.
    onEffects: (from, e) => effects.push({ from, effects: e, carrier: tracingOn ? activeCarrier() : undefined }),
  });
  hosts.push(host);
  return { host, effects };
}

const CARRIER = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;

describe('tracing helpers', () => {
  it('round-trips a sampled span context through a traceparent carrier', () => {
    tracing = startInMemoryTracing();
    const span = startSpanFrom(undefined, 'root', SpanKind.INTERNAL, {});
    const carrier = carrierOf(span)!;
    expect(carrier).toMatch(CARRIER);
    const restored = trace.getSpanContext(contextOf(carrier))!;
    expect(restored).toMatchObject({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, isRemote: true });
    const child = startSpanFrom(carrier, 'child', SpanKind.INTERNAL, {});
    child.end();
    span.end();
    expect(tracing.span('child').spanContext().traceId).toBe(span.spanContext().traceId);
    expect(parentOf(tracing.span('child'))).toBe(span.spanContext().spanId);
  });

  it('treats a malformed or all-zero carrier as no parent (a peer cannot make a span fail)', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      '00-00000000000000000000000000000000-0000000000000001-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
    ]) {
      expect(trace.getSpanContext(contextOf(bad)), String(bad)).toBeUndefined();
    }
  });

  it('refuses a carrier that is not exactly 55 characters before running the regex (a peer may send megabytes)', () => {
    const exec = vi.spyOn(RegExp.prototype, 'exec');
    const valid = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    for (const bad of [valid + '0'.repeat(1_000_000), valid.slice(1), ` ${valid}`, valid + '-']) {
      expect(trace.getSpanContext(contextOf(bad))).toBeUndefined();
    }
    expect(exec).not.toHaveBeenCalled();
    expect(trace.getSpanContext(contextOf(valid))).toMatchObject({ spanId: 'b7ad6b7169203331' });
  });

  it('carries only sampled contexts: an unsampled parent gives no carrier', () => {
    const unsampled = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0 });
    expect(carrierOf(unsampled)).toBeUndefined();
  });

  it('runWithCarrier sets the carrier context, and the root context without one (no leftover context leaks in)', () => {
    tracing = startInMemoryTracing();
    const outer = startSpanFrom(undefined, 'outer', SpanKind.INTERNAL, {});
    const inner = startSpanFrom(undefined, 'inner', SpanKind.INTERNAL, {});
    runInSpan(outer, () => {
      expect(activeCarrier()).toBe(carrierOf(outer));
      expect(runWithCarrier(carrierOf(inner), activeCarrier)).toBe(carrierOf(inner));
      expect(runWithCarrier(undefined, activeCarrier)).toBeUndefined();
    });
  });
});

describe('ActorHost with tracing on', () => {
  it('gives a traced ask a step span under the caller, and the steps it causes spans under it, with the ids and kinds', async () => {
    tracing = startInMemoryTracing();
    const { host, effects } = makeHost();
    const root = startSpanFrom(undefined, 'caller', SpanKind.SERVER, {});
    // a relays to b (same shard: same turn, same window); b's add has an effect that leaves the shard.
    const reply = await runInSpan(root, () => host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 2 }));
    root.end();
    expect(reply).toEqual({ ok: true, value: 2 });
    await vi.waitFor(() => expect(tracing!.spans().map((s) => s.name)).toContain('step counter add'));
    const relay = tracing.span('step counter relay');
    const add = tracing.span('step counter add');
    expect(relay.attributes).toEqual({ 'iot.actor.id': 'counter:1:a', 'iot.actor.kind': 'counter', 'iot.message.kind': 'relay' });
    expect(add.attributes).toMatchObject({ 'iot.actor.id': 'counter:1:b', 'iot.message.kind': 'add' });
    expect(parentOf(relay)).toBe(root.spanContext().spanId);
    expect(parentOf(add)).toBe(relay.spanContext().spanId);
    for (const s of [relay, add]) expect(s.spanContext().traceId).toBe(root.spanContext().traceId);
    // The add's effect ran (after the window) in the add step's context.
    await vi.waitFor(() => expect(effects.map((e) => e.from)).toContain('counter:1:b'));
    expect(effects.find((e) => e.from === 'counter:1:b')!.carrier).toBe(`00-${add.spanContext().traceId}-${add.spanContext().spanId}-01`);
  });

  it('carries the trace through the outbox to an actor of another shard', async () => {
    tracing = startInMemoryTracing();
    const { host } = makeHost();
    const root = startSpanFrom(undefined, 'caller', SpanKind.SERVER, {});
    expect(await runInSpan(root, () => host.ask('counter:1:a', { type: 'relay', to: 'counter:2:d', n: 4 }))).toEqual({
      ok: true,
      value: 4,
    });
    const t = tracing;
    await vi.waitFor(() => expect(t.spans().map((s) => s.name)).toContain('step counter add'));
    const add = t.span('step counter add');
    expect(add.attributes['iot.actor.id']).toBe('counter:2:d');
    expect(parentOf(add)).toBe(t.span('step counter relay').spanContext().spanId);
  });

  it('ends a step span when its window is durable, not before', async () => {
    tracing = startInMemoryTracing();
    const store = new GatedStore();
    const { host } = makeHost(store);
    store.hold();
    const root = startSpanFrom(undefined, 'caller', SpanKind.SERVER, {});
    const reply = runInSpan(root, () => host.ask('counter:1:a', { type: 'add', n: 1 }));
    await vi.waitFor(() => expect(store.waiting).toBeGreaterThan(0));
    expect(tracing.spans().map((s) => s.name)).not.toContain('step counter add');
    store.release();
    expect(await reply).toEqual({ ok: true, value: 1 });
    expect(tracing.span('step counter add').status.code).toBe(0);
  });

  it('ends a step span with an error when the step fails after its reducer (a throw outside it)', async () => {
    tracing = startInMemoryTracing();
    const { host } = makeHost();
    vi.spyOn(ShardWindow.prototype, 'add').mockImplementationOnce(() => {
      throw new Error('window add failed');
    });
    const root = startSpanFrom(undefined, 'caller', SpanKind.SERVER, {});
    // The step is lost with the throw (the actor re-reads its state): the ask times out.
    expect(await runInSpan(root, () => host.ask('counter:1:a', { type: 'add', n: 1 }, 300))).toMatchObject({
      ok: false,
      error: { code: 'timeout' },
    });
    const step = tracing.span('step counter add');
    expect(step.status).toEqual({ code: 2, message: 'step failed outside the reducer' });
    expect(parentOf(step)).toBe(root.spanContext().spanId);
  });

  it('keeps one caller’s trace out of an untraced message handled in the same shard turn', async () => {
    tracing = startInMemoryTracing();
    const { host, effects } = makeHost();
    const root = startSpanFrom(undefined, 'caller', SpanKind.SERVER, {});
    // Same tick, same shard: a's ask in a span, b's and c's outside any; one drain runs all three
    // (in the context of whoever scheduled it: a's caller).
    const a = runInSpan(root, () => host.ask('counter:1:a', { type: 'add', n: 1 }));
    const b = host.ask('counter:1:b', { type: 'relay', to: 'counter:2:x', n: 5 });
    const c = host.ask('counter:1:c', { type: 'add', n: 2 });
    expect(await Promise.all([a, b, c])).toEqual([
      { ok: true, value: 1 },
      { ok: true, value: 5 },
      { ok: true, value: 2 },
    ]);
    // x applies b's message from b's outbox; its effect ran too.
    await vi.waitFor(() => expect(effects.map((e) => e.from).sort()).toEqual(['counter:1:a', 'counter:1:c', 'counter:2:x']));
    const t = tracing;
    const stepOfA = t.span('step counter add');
    expect(stepOfA.attributes['iot.actor.id']).toBe('counter:1:a');
    // Only a's step is traced: b's relay, x's add and c's add start no span and carry nothing.
    expect(
      t
        .spans()
        .filter((s) => s.name.startsWith('step '))
        .map((s) => s.attributes['iot.actor.id']),
    ).toEqual(['counter:1:a']);
    expect(effects.find((e) => e.from === 'counter:1:a')!.carrier).toBe(
      `00-${stepOfA.spanContext().traceId}-${stepOfA.spanContext().spanId}-01`,
    );
    for (const from of ['counter:1:c', 'counter:2:x']) expect(effects.find((e) => e.from === from)!.carrier, from).toBeUndefined();
  });

  it('starts no span for a message that carries no trace (a caller outside any span)', async () => {
    tracing = startInMemoryTracing();
    const { host, effects } = makeHost();
    expect(await host.ask('counter:1:a', { type: 'add', n: 1 })).toEqual({ ok: true, value: 1 });
    await vi.waitFor(() => expect(effects).toHaveLength(1));
    expect(tracing.spans()).toEqual([]);
    expect(effects[0]!.carrier).toBeUndefined();
  });
});

describe('ActorHost with tracing off', () => {
  it('never touches the OpenTelemetry API: the switch is off and no context is read, set or propagated', async () => {
    expect(tracingOn).toBe(false);
    const spies = spyOnTracingApi();
    const { host, effects } = makeHost();
    expect(await host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 2 })).toEqual({ ok: true, value: 2 });
    expect(await host.ask('counter:1:b', { type: 'get' })).toEqual({ ok: true, value: 2 });
    await vi.waitFor(() => expect(effects).toHaveLength(1));
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe('envelopes', () => {
  const KEYS = ['msg', 'reply', 'deadline', 'attempts', 'cause', 'holds', 'sender', 'senderSeq', 'trace'];

  for (const on of [false, true]) {
    it(`have one shape (the same keys in the same order) whatever sent them, tracing ${on ? 'on' : 'off'}`, async () => {
      if (on) tracing = startInMemoryTracing();
      const enqueued = vi.spyOn(ActorCell.prototype, 'enqueue'); // calls through
      const { host, effects } = makeHost();
      const root = on ? startSpanFrom(undefined, 'caller', SpanKind.SERVER, {}) : undefined;
      const send = async (): Promise<void> => {
        expect(host.tell('counter:1:a', { type: 'add', n: 1 })).toEqual({ ok: true, value: undefined });
        expect(host.deliver('counter:1:a', { type: 'add', n: 1 })).toEqual({ ok: true, value: undefined });
        // Same shard (a local send within the window) and another shard (outbox, then its acknowledgement).
        await host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 1 });
        await host.ask('counter:1:a', { type: 'relay', to: 'counter:2:c', n: 1 });
        // A wake-up reminder coming due.
        await host.ask('counter:1:d', { type: 'alarm', at: Date.now() + 20 });
      };
      await (root ? runInSpan(root, send) : send());
      await vi.waitFor(async () => expect(await host.ask('counter:1:d', { type: 'rings' })).toEqual({ ok: true, value: 1 }));
      await vi.waitFor(() => expect(effects.map((e) => e.from)).toContain('counter:2:c'));
      const shapes = new Set(enqueued.mock.calls.map(([env]) => Object.keys(env).join(',')));
      expect(enqueued.mock.calls.length).toBeGreaterThan(8);
      expect([...shapes]).toEqual([KEYS.join(',')]);
    });
  }
});

describe('where OpenTelemetry is imported', () => {
  it('imports the SDK (statically or dynamically) only in node/tracing-sdk.ts (and tests): the rest of the code sees the API alone', () => {
    const listed = execFileSync(
      'git',
      ['grep', '--untracked', '-l', '-E', "(from |import\\()'@opentelemetry/(sdk|exporter|resources|core|semantic)", '--', '*.ts'],
      {
        cwd: new URL('../..', import.meta.url),
        encoding: 'utf8',
      },
    );
    const offenders = listed.split('\n').filter((f) => f !== '' && f !== 'node/tracing-sdk.ts' && !f.startsWith('test/'));
    expect(offenders).toEqual([]);
  });
});
