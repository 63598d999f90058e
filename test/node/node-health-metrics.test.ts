/** Node health gauges: read from their sources at every scrape. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { RingNode } from '../../cluster/cluster-types.ts';
import { RING_NODE_STATES, registerNodeHealthMetrics } from '../../node/node-health-metrics.ts';

async function value(registry: Registry, name: string): Promise<number | undefined> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
}

/** `iot_cluster_ring_nodes` as `state → members`. */
async function ringNodes(registry: Registry): Promise<Record<string, number>> {
  const values = (await registry.getSingleMetric('iot_cluster_ring_nodes')?.get())?.values ?? [];
  return Object.fromEntries(values.map((v) => [String(v.labels.state), v.value]));
}

describe('registerNodeHealthMetrics', () => {
  it('reports iot_node_ready and iot_cluster_in_ring as their sources answer at each scrape', async () => {
    const registry = new Registry();
    const state = { ready: false, inRing: false };
    registerNodeHealthMetrics(registry, { ready: () => state.ready, inRing: () => state.inRing, ringNodes: () => [] });
    expect(await value(registry, 'iot_node_ready')).toBe(0);
    expect(await value(registry, 'iot_cluster_in_ring')).toBe(0);

    state.ready = true;
    expect(await value(registry, 'iot_node_ready')).toBe(1);
    expect(await value(registry, 'iot_cluster_in_ring')).toBe(0);
    state.inRing = true;
    expect(await value(registry, 'iot_cluster_in_ring')).toBe(1);

    // Draining: not ready any more, still listed until it leaves.
    state.ready = false;
    const text = await registry.metrics();
    expect(text).toMatch(/^iot_node_ready 0$/m);
    expect(text).toMatch(/^iot_cluster_in_ring 1$/m);
  });

  it('counts the ring members by state at each scrape, every state at 0 when none is in it', async () => {
    const registry = new Registry();
    let nodes: Pick<RingNode, 'state'>[] = [];
    registerNodeHealthMetrics(registry, { ready: () => true, inRing: () => true, ringNodes: () => nodes });
    expect(RING_NODE_STATES).toEqual(['active', 'draining']);
    expect(await ringNodes(registry)).toEqual({ active: 0, draining: 0 });

    nodes = [{ state: 'active' }, { state: 'active' }, { state: 'draining' }, { state: 'active' }];
    expect(await ringNodes(registry)).toEqual({ active: 3, draining: 1 });
    // A node died: the coordinator took it out of the ring; the gauge follows at the next scrape.
    nodes = [{ state: 'active' }, { state: 'active' }];
    const text = await registry.metrics();
    expect(text).toMatch(/^iot_cluster_ring_nodes\{state="active"\} 2$/m);
    expect(text).toMatch(/^iot_cluster_ring_nodes\{state="draining"\} 0$/m);
  });

  it('keeps the state label bounded: a state it does not know (a newer ring document) is not exported', async () => {
    const registry = new Registry();
    const nodes = [{ state: 'active' }, { state: 'joining' }] as unknown as Pick<RingNode, 'state'>[];
    registerNodeHealthMetrics(registry, { ready: () => true, inRing: () => true, ringNodes: () => nodes });
    expect(await ringNodes(registry)).toEqual({ active: 1, draining: 0 });
  });
});
