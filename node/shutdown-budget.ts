/**
 * What a node's shutdown may take after the drain (DRAIN_TIMEOUT_MS), step by step as
 * `startNode`'s `close` and `main` run them: main bounds the shutdown by the drain plus this, and a
 * deployment's grace period (Kubernetes `terminationGracePeriodSeconds`, compose
 * `stop_grace_period`) must exceed both, or the node is killed without its last line.
 */
import { PEER_CLIENT_CLOSE_GRACE_MS } from '../cluster/peer-client.ts';
import { PEER_SERVER_SHUTDOWN_GRACE_MS } from '../cluster/peer-server.ts';
import { HUB_INGRESS_SHUTDOWN_GRACE_MS } from '../edge-api/hub-ingress/hub-ingress.ts';
import { REDIS_COMMAND_TIMEOUT_MS } from './redis-backend.ts';
import { HTTP_SHUTDOWN_GRACE_MS } from './start-node.ts';
import { DEFAULT_SHUTDOWN_BUDGET_MS as TRACING_SHUTDOWN_BUDGET_MS } from './tracing-sdk.ts';

/** One step of the shutdown after the drain, and the most it may take (milliseconds). */
export interface ShutdownStep {
  readonly step: string;
  readonly ms: number;
}

/**
 * The steps in the order they run, one after the other; steps that run together count once, at
 * the longest of them. A Redis round trip counts at the client's command timeout: the worst case
 * is a Redis that still accepts commands and never answers (a Redis that is down fails them at once).
 */
export const SHUTDOWN_STEPS_AFTER_DRAIN: readonly ShutdownStep[] = [
  {
    step: 'hub streams, HTTP requests and the metrics server end (together)',
    ms: Math.max(HUB_INGRESS_SHUTDOWN_GRACE_MS, HTTP_SHUTDOWN_GRACE_MS),
  },
  { step: "the actors' last snapshots are written (every shard's window together)", ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the handoff progress report is deleted', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the ring subscription ends', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the heartbeat refresh in flight settles', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the heartbeat is deleted', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the peer server lets in-flight asks be answered', ms: PEER_SERVER_SHUTDOWN_GRACE_MS },
  { step: 'the peer clients end their streams (together)', ms: PEER_CLIENT_CLOSE_GRACE_MS },
  { step: 'the last audit entries land', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'store writes in flight settle', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the shard leases are released (together)', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the Redis connection quits', ms: REDIS_COMMAND_TIMEOUT_MS },
  { step: 'the tracing exporter flushes the last spans', ms: TRACING_SHUTDOWN_BUDGET_MS },
];

/** Milliseconds the shutdown may take after the drain: the sum of SHUTDOWN_STEPS_AFTER_DRAIN. */
export const SHUTDOWN_AFTER_DRAIN_MS: number = SHUTDOWN_STEPS_AFTER_DRAIN.reduce((sum, s) => sum + s.ms, 0);
