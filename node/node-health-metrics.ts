/** Node health as gauges read at scrape time: ready (what /readyz answers) and member of the ring, for alerts and dashboards. */
import { Gauge, type Registry } from 'prom-client';

export interface NodeHealthSources {
  /** Whether the node is ready: the same answer as `GET /readyz`. */
  readonly ready: () => boolean;
  /**
   * Whether the ring this node follows lists it. A node without Redis is the whole cluster on
   * its own: always true there.
   */
  readonly inRing: () => boolean;
}

/**
 * Registers `iot_node_ready` and `iot_cluster_in_ring` (1 or 0) on `registry`, each read from
 * `sources` when scraped: a value that is never stale and costs nothing between scrapes.
 */
export function registerNodeHealthMetrics(registry: Registry, sources: NodeHealthSources): void {
  const registers = [registry];
  new Gauge({
    name: 'iot_node_ready',
    help: '1 when the node is ready to serve (GET /readyz answers 200: started, store healthy), else 0',
    registers,
    collect() {
      this.set(sources.ready() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'iot_cluster_in_ring',
    help: 'Whether the ring this node follows lists it (1, in any state, draining included; always 1 without REDIS_URL), else 0',
    registers,
    collect() {
      this.set(sources.inRing() ? 1 : 0);
    },
  });
}
