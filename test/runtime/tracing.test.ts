import { execFileSync } from 'node:child_process';
import { context, propagation, trace } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';
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
import { parentOf, startInMemoryTracing, type InMemoryTracing } from '../support/in-memory-tracing.ts';
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
    const spies = [
      vi.spyOn(context, 'active'),
      vi.spyOn(context, 'with'),
      vi.spyOn(trace, 'getSpan'),
      vi.spyOn(trace, 'getTracer'),
      vi.spyOn(propagation, 'inject'),
      vi.spyOn(propagation, 'extract'),
    ];
    const { host, effects } = makeHost();
    expect(await host.ask('counter:1:a', { type: 'relay', to: 'counter:1:b', n: 2 })).toEqual({ ok: true, value: 2 });
    expect(await host.ask('counter:1:b', { type: 'get' })).toEqual({ ok: true, value: 2 });
    await vi.waitFor(() => expect(effects).toHaveLength(1));
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe('where OpenTelemetry is imported', () => {
  it('imports the SDK only in node/tracing-sdk.ts (and tests): the rest of the code sees the API alone', () => {
    const listed = execFileSync(
      'git',
      ['grep', '--untracked', '-l', '-E', "from '@opentelemetry/(sdk|exporter|resources|core|semantic)", '--', '*.ts'],
      {
        cwd: new URL('../..', import.meta.url),
        encoding: 'utf8',
      },
    );
    const offenders = listed.split('\n').filter((f) => f !== '' && f !== 'node/tracing-sdk.ts' && !f.startsWith('test/'));
    expect(offenders).toEqual([]);
  });
});
