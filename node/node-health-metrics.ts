/** Node health as gauges read at scrape time: ready (what /readyz answers), member of the ring, and the ring's members by state, for alerts and dashboards. */
import { Gauge, type Registry } from 'prom-client';
import type { RingNode, RingNodeState } from '../cluster/cluster-types.ts';

export interface NodeHealthSources {
  /** Whether the node is ready: the same answer as `GET /readyz`. */
  readonly ready: () => boolean;
  /**
   * Whether the ring this node follows lists it. A node without Redis is the whole cluster on
   * its own: always true there.
   */
  readonly inRing: () => boolean;
  /**
   * The members of the ring this node follows (none before it has read a ring). A node without
   * Redis is the whole cluster on its own: one active member, itself.
   */
  readonly ringNodes: () => readonly Pick<RingNode, 'state'>[];
}

// A record (not a list) so that a state added to RingNodeState fails to compile here until it is listed.
const STATES: Readonly<Record<RingNodeState, true>> = { active: true, draining: true };

/** Every value of the `state` label of `iot_cluster_ring_nodes`: each is exported, at 0 when no member is in it. */
export const RING_NODE_STATES = Object.keys(STATES) as readonly RingNodeState[];

/**
 * Registers `iot_node_ready` and `iot_cluster_in_ring` (1 or 0) and `iot_cluster_ring_nodes{state}`
 * on `registry`, each read from `sources` when scraped: a value that is never stale and costs
 * nothing between scrapes.
 *
 * The ring's size is what lets an alert see a dead node: a dead node exports nothing (and under
 * Kubernetes discovery its `up` series goes with its pod), but every live node reports the ring it
 * follows, so fewer active members than live nodes, or no live node at all, is visible.
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
  new Gauge({
    name: 'iot_cluster_ring_nodes',
    help:
      'Members of the ring this node follows, by state: active (owns shards), draining (handing its shards off before it leaves); ' +
      '0 for both before a ring exists; 1 active without REDIS_URL (the node alone)',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<RingNodeState, number>(RING_NODE_STATES.map((s) => [s, 0]));
      // Only the known states: the label stays bounded whatever a ring document read from Redis holds.
      for (const n of sources.ringNodes()) if (counts.has(n.state)) counts.set(n.state, counts.get(n.state)! + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
}
