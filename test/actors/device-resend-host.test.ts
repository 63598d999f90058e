/**
 * The delivery check of `sent` commands through the real actor host (memory store): a send lost
 * after the step that marked the command `sent` was durable (dropped from the node's queue, or
 * lost with the node that owned the device's shard) is sent again by the device's durable wake-up,
 * on this host or on the shard's next owner, which loads the reminder at takeover.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deviceActorId } from '../../actors/actor-id.ts';
import { deviceBehavior } from '../../actors/device.ts';
import { COMMAND_LIMITS, type CommandRecord } from '../../actors/device-state.ts';
import type { DomainEffect } from '../../actors/types.ts';
import { ActorHost } from '../../runtime/actor-host.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { MemoryStore } from '../../runtime/memory-store.ts';

const LAMP = deviceActorId('h1', 'lamp');
const SHARD = 0; // the memory store keeps one shard unless told otherwise
/** Generous: the check comes resendAfterMs after the send; a loaded 2-core machine may add seconds. */
const WAIT_MS = COMMAND_LIMITS.resendAfterMs + 12_000;

const hosts: ActorHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/** A host whose hub.command effects are recorded with the time they ran, and dropped while `drop` says so. */
function start(store: MemoryStore, sent: { id: string; at: number }[], drop: () => boolean = () => false): ActorHost {
  const host = new ActorHost({
    behaviors: [deviceBehavior],
    store,
    logger: silentLogger,
    registry: new Registry(),
    onEffects: (_id, es) => {
      for (const e of es as DomainEffect[]) if (e.type === 'hub.command' && !drop()) sent.push({ id: e.command.commandId, at: Date.now() });
    },
  });
  hosts.push(host);
  return host;
}

async function value<T>(host: ActorHost, msg: unknown): Promise<T> {
  const r = await host.ask(LAMP, msg);
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true, value: { ok: true } });
  return (r as { value: { value: T } }).value.value;
}

/** The lamp attached to hub1, whose stream is open, and command `id` issued: it is `sent`. */
async function sentCommand(host: ActorHost, id: string): Promise<number> {
  await value(host, { type: 'device.attach', hubId: 'hub1', deviceType: 'light', capabilities: ['on'] });
  await value(host, { type: 'hub.connection', online: true, hubId: 'hub1' });
  const issued = Date.now();
  const cmd = await value<CommandRecord>(host, {
    type: 'command.issue',
    commandId: id,
    name: 'set',
    params: { on: true },
    ttlMs: 60_000,
    depth: 0,
    source: { kind: 'app' },
  });
  expect(cmd.status).toBe('sent');
  return issued;
}

describe('a sent command whose send was lost, on the actor host', () => {
  it('is sent again by the device’s wake-up when the first send never left the node', async () => {
    const store = new MemoryStore();
    const sent: { id: string; at: number }[] = [];
    let dropping = true;
    const host = start(store, sent, () => dropping);
    await host.takeShard(SHARD);
    const issued = await sentCommand(host, 'lamp~c1');
    dropping = false; // the first send is lost (dropped from the node's queue); what follows goes through
    await vi.waitFor(() => expect(sent.map((s) => s.id)).toEqual(['lamp~c1']), { timeout: WAIT_MS, interval: 50 });
    console.log(`lost send: sent again ${sent[0]!.at - issued} ms after the issue (check after ${COMMAND_LIMITS.resendAfterMs} ms)`);
    expect(sent[0]!.at - issued).toBeGreaterThanOrEqual(COMMAND_LIMITS.resendAfterMs - 50);
    // The hub's result ends the checks: no wake-up is left, nothing is sent again.
    const done = await value<CommandRecord>(host, { type: 'command.result', commandId: 'lamp~c1', ok: true });
    expect(done.status).toBe('succeeded');
    await vi.waitFor(() => expect(host.pendingReminders).toBe(0));
  }, 30_000);

  it('is sent again by the shard’s next owner, from the reminder it loads at takeover, when the owner died after the step', async () => {
    const store = new MemoryStore();
    const lost: { id: string; at: number }[] = [];
    const dying = start(store, lost); // what it sends is lost with it (recorded here, never delivered)
    await dying.takeShard(SHARD);
    const issued = await sentCommand(dying, 'lamp~c2');
    // The owner dies: nothing of it runs any more (its shard's reminders do not fire there).
    dying.dropShard(SHARD);
    const died = Date.now();
    const sent: { id: string; at: number }[] = [];
    const next = start(store, sent);
    await next.takeShard(SHARD);
    expect(next.pendingReminders).toBe(1); // the device's wake-up, loaded from the store
    await vi.waitFor(() => expect(sent.map((s) => s.id)).toEqual(['lamp~c2']), { timeout: WAIT_MS, interval: 50 });
    console.log(
      `takeover: sent again by the next owner ${sent[0]!.at - died} ms after the owner died, ${sent[0]!.at - issued} ms after the issue`,
    );
    // The new owner serves the device from the stored state: the command is still `sent`, once.
    const cmd = await value<CommandRecord>(next, { type: 'command.get', commandId: 'lamp~c2' });
    expect(cmd).toMatchObject({ status: 'sent' });
    await value(next, { type: 'command.result', commandId: 'lamp~c2', ok: true });
    await vi.waitFor(() => expect(next.pendingReminders).toBe(0));
    expect(lost.map((s) => s.id)).toEqual(['lamp~c2']); // the first send, lost with the owner
  }, 30_000);
});
