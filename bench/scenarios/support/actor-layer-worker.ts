/**
 * Worker for the actor-layer scenario (a child process per layer, started with `--expose-gc`):
 *  - `throughput`: tell rounds to `actors` counters (each round `perActor` messages to every
 *    actor, then wait until the reducer has handled them all) for `seconds`, then `askLanes`
 *    concurrent ask loops for `seconds`; messages/s for both.
 *  - `memory`: `n` actors spawned (one ask each), heap and RSS delta ÷ n.
 */
import { runAsWorker, toParent, workerInput } from '../../harness/worker-process.ts';
import { bareDispatches } from './bare-dispatch.ts';
import { counterBehavior, createLayer, progress, type CounterMsg, type LayerKind } from './mailboxes.ts';
import { forEachBounded, perItem, sampleMemory } from './memory.ts';

export interface ThroughputInput {
  readonly mode: 'throughput';
  readonly layer: LayerKind;
  readonly actors: number;
  readonly perActor: number;
  readonly askLanes: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface ThroughputOutput {
  readonly layer: LayerKind;
  readonly tellPerSec: number;
  readonly askPerSec: number;
  readonly tellMessages: number;
  readonly askMessages: number;
}

export interface LayerMemoryInput {
  readonly mode: 'memory';
  readonly layer: LayerKind;
  readonly n: number;
  readonly warmup: number;
}

export interface LayerMemoryOutput {
  readonly layer: LayerKind;
  readonly n: number;
  readonly heapPerActor: number;
  readonly rssPerActor: number;
  readonly resident: number;
}

const MSG: CounterMsg = { type: 'add', by: 1 };

async function throughput(input: ThroughputInput): Promise<ThroughputOutput> {
  const layer = await createLayer(input.layer);
  const ids = Array.from({ length: input.actors }, (_, i) => `counter:c${i}`);

  const tellFor = async (seconds: number): Promise<number> => {
    const start = progress.handled;
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    while (performance.now() < until) {
      const done = new Promise<void>((resolve) => {
        progress.waitFor = progress.handled + ids.length * input.perActor;
        progress.wake = resolve;
      });
      for (let k = 0; k < input.perActor; k++) for (const id of ids) layer.tell(id, MSG);
      await done;
    }
    return (progress.handled - start) / ((performance.now() - t0) / 1000);
  };

  const askFor = async (seconds: number): Promise<{ perSec: number; n: number }> => {
    let n = 0;
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    const lane = async (l: number): Promise<void> => {
      for (let i = l; performance.now() < until; i += input.askLanes) {
        await layer.ask(ids[i % ids.length]!, MSG);
        n++;
      }
    };
    await Promise.all(Array.from({ length: input.askLanes }, (_, l) => lane(l)));
    return { perSec: n / ((performance.now() - t0) / 1000), n };
  };

  // Warm-up (activation of every actor, JIT) for both patterns, then the measured phases.
  await tellFor(input.warmupSeconds);
  await askFor(input.warmupSeconds);
  toParent({ type: 'progress', done: 1, total: 3, label: `${input.layer}: tell` });
  const h0 = progress.handled;
  const tellPerSec = await tellFor(input.seconds);
  const tellMessages = progress.handled - h0;
  toParent({ type: 'progress', done: 2, total: 3, label: `${input.layer}: ask` });
  const ask = await askFor(input.seconds);
  toParent({ type: 'progress', done: 3, total: 3, label: `${input.layer}: done` });
  if (layer.resident !== ids.length) throw new Error(`${input.layer}: ${layer.resident} actors resident, expected ${ids.length}`);
  if (input.layer === 'host-bare-dispatch' && bareDispatches() === 0) throw new Error('host-bare-dispatch: nact was not replaced');
  await layer.close();
  return { layer: input.layer, tellPerSec, askPerSec: ask.perSec, tellMessages, askMessages: ask.n };
}

async function memory(input: LayerMemoryInput): Promise<LayerMemoryOutput> {
  const layer = await createLayer(input.layer);
  const spawn = async (i: number): Promise<void> => {
    await layer.ask(`counter:m${i}`, MSG);
  };
  await forEachBounded(input.n, input.n + input.warmup, 256, spawn);
  const before = await sampleMemory();
  const every = Math.max(1, Math.floor(input.n / 20));
  await forEachBounded(0, input.n, 256, spawn, (done) => {
    if (done % every === 0) toParent({ type: 'progress', done, total: input.n, label: `${input.layer}: spawning` });
  });
  const after = await sampleMemory();
  const resident = layer.resident - input.warmup;
  if (input.layer === 'host-bare-dispatch' && bareDispatches() === 0) throw new Error('host-bare-dispatch: nact was not replaced');
  const per = perItem(before, after, input.n);
  await layer.close();
  return { layer: input.layer, n: input.n, heapPerActor: per.heap, rssPerActor: per.rss, resident };
}

void counterBehavior; // the reducer every layer runs (imported for its module side: one shared `progress`)

runAsWorker(async () => {
  const input = workerInput<ThroughputInput | LayerMemoryInput>();
  return input.mode === 'throughput' ? throughput(input) : memory(input);
});
