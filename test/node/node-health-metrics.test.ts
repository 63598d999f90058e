/** Node health gauges: read from their sources at every scrape, 1 or 0. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerNodeHealthMetrics } from '../../node/node-health-metrics.ts';

async function value(registry: Registry, name: string): Promise<number | undefined> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
}

describe('registerNodeHealthMetrics', () => {
  it('reports iot_node_ready and iot_cluster_in_ring as their sources answer at each scrape', async () => {
    const registry = new Registry();
    const state = { ready: false, inRing: false };
    registerNodeHealthMetrics(registry, { ready: () => state.ready, inRing: () => state.inRing });
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
});
