/** The pool of peer clients: one PeerClient per remote node, replaced when its address changes. */
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/logger.ts';
import type { BreakerConfig } from './circuit-breaker.ts';
import type { PeerAuthConfig } from './peer-auth.ts';
import { PeerClient } from './peer-client.ts';
import type { PeerLimits } from './peer-wire.ts';

export interface PeerPoolOptions {
  /** This node's id. */
  readonly nodeId: string;
  /** How this node proves membership to its peers. */
  readonly auth: PeerAuthConfig;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly breaker?: BreakerConfig;
  readonly limits?: Partial<PeerLimits>;
  /** A stream to a peer failed (not closed by this node): that node may be dead (ClusterNode.suspect). */
  readonly onStreamBroken?: (nodeId: string) => void;
}

/**
 * One PeerClient per remote node, created on first use from `addressOf` (the peer address from
 * membership). A node whose address changed gets a new client (the old one is closed); an
 * unknown node gets a client whose every call fails `unavailable`.
 */
export class PeerPool {
  private readonly clients = new Map<string, PeerClient>();
  private closed = false;

  constructor(
    private readonly addressOf: (nodeId: string) => string | undefined,
    private readonly options: PeerPoolOptions,
  ) {}

  get(nodeId: string): PeerClient {
    const address = this.closed ? undefined : this.addressOf(nodeId);
    const current = this.clients.get(nodeId);
    if (current && current.address === address) return current;
    if (current) void current.close();
    const client = new PeerClient(address, { ...this.options, peerId: nodeId });
    if (this.closed)
      void client.close(); // every call answers `stopping`
    else this.clients.set(nodeId, client);
    return client;
  }

  /** Closes every client (each sends what it has queued and waits briefly for in-flight replies). */
  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}
