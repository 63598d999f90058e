/**
 * The actor-layer scenario's `host` layers: the runtime's ActorHost with the counter behaviour,
 * over as many shards as production uses (ids hashed as cluster/shard-of.ts places them). Imported
 * dynamically by mailboxes.ts, after the bare-dispatch hook when the layer asks for it.
 */
import { Registry } from 'prom-client';
import { shardOfActor } from '../../../cluster/shard-of.ts';
import { ActorHost } from '../../../runtime/actor-host.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { MemoryStore } from '../../../runtime/memory-store.ts';
import type { Result } from '../../../runtime/result.ts';
import { counterBehavior, HOST_SHARDS, type ActorLayer, type CounterMsg } from './mailboxes.ts';

const unwrap = (r: Result<unknown>): number => {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as number;
};

export class HostLayer implements ActorLayer {
  // Counter ids are `counter:c{i}`: each actor is its own "home", spread over every shard.
  private readonly host = new ActorHost({
    behaviors: [counterBehavior],
    store: new MemoryStore(),
    logger: silentLogger,
    registry: new Registry(),
    shardOf: shardOfActor(HOST_SHARDS),
  });
  tell(id: string, msg: CounterMsg): void {
    const r = this.host.tell(id, msg);
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  }
  async ask(id: string, msg: CounterMsg): Promise<number> {
    return unwrap(await this.host.ask(id, msg));
  }
  get resident(): number {
    return this.host.residentCount;
  }
  async close(): Promise<void> {
    this.host.evict(() => true);
    await this.host.close();
  }
}
