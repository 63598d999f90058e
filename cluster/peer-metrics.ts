/** Peer transport metrics, created once per registry and shared by the server, the pool and its clients. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Peer metrics of both sides, created once per registry (several clients, the pool and the
 * server share one): prom-client refuses a name registered twice.
 */
export class PeerMetrics {
  /** Forwarded asks by peer and outcome: ok, error (the remote answered a failed Result), timeout, unavailable, rejected (breaker open). */
  readonly asks: Counter<'peer' | 'outcome'>;
  /** Forwarded one-way messages by peer, kind (tell, deliver, delivery) and outcome (sent, rejected). */
  readonly sends: Counter<'peer' | 'kind' | 'outcome'>;
  /** Seconds from a forwarded ask to its reply (or its deadline). */
  readonly askSeconds: Histogram<'peer'>;
  /** 0 closed, 1 half-open, 2 open. */
  readonly breaker: Gauge<'peer'>;
  readonly lateReplies: Counter<'peer'>;
  readonly streamOpens: Counter<'peer'>;
  /** Items the server handled by kind (ask, tell, delivery) and outcome: ok, error, malformed, threw; deliveries also refused, no_handler. */
  readonly served: Counter<'kind' | 'outcome'>;
  /** Inbound peer streams open on this node. */
  readonly inboundStreams: Gauge;
  /** Items per PeerBatch by role (client, server) and direction (sent, received). */
  readonly batchItems: Histogram<'role' | 'direction'>;
  /** Inbound peer streams refused before any message was read, by reason (peer-auth.ts `PeerAuthRefusal`). */
  readonly streamsRefused: Counter<'reason'>;
  /** Items an authenticated peer sent that this node refused (peer-message-guard.ts), by kind and reason. */
  readonly itemsRefused: Counter<'kind' | 'reason'>;
  /** 1 when the peer secret the cluster keeps in Redis is not the one this node holds (node/peer-secret-keeper.ts). */
  readonly secretMismatch: Gauge;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.asks = new Counter({
      name: 'iot_peer_asks_total',
      help: 'Asks forwarded to peer nodes, by peer and outcome',
      labelNames: ['peer', 'outcome'],
      registers,
    });
    this.sends = new Counter({
      name: 'iot_peer_sends_total',
      help: 'One-way messages forwarded to peer nodes, by peer, kind and outcome',
      labelNames: ['peer', 'kind', 'outcome'],
      registers,
    });
    this.askSeconds = new Histogram({
      name: 'iot_peer_ask_duration_seconds',
      help: 'Time from forwarding an ask to a peer to its reply or deadline',
      labelNames: ['peer'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.breaker = new Gauge({
      name: 'iot_peer_breaker_state',
      help: 'Circuit breaker per peer: 0 closed, 1 half-open, 2 open',
      labelNames: ['peer'],
      registers,
    });
    this.lateReplies = new Counter({
      name: 'iot_peer_late_replies_total',
      help: 'Replies that arrived after their ask had timed out (ignored)',
      labelNames: ['peer'],
      registers,
    });
    this.streamOpens = new Counter({
      name: 'iot_peer_stream_opens_total',
      help: 'Peer streams opened (first open and every reconnect)',
      labelNames: ['peer'],
      registers,
    });
    this.served = new Counter({
      name: 'iot_peer_served_total',
      help: 'Items received from peer nodes, by kind and outcome',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.inboundStreams = new Gauge({
      name: 'iot_peer_inbound_streams',
      help: 'Peer streams other nodes hold open to this node',
      registers,
    });
    this.batchItems = new Histogram({
      name: 'iot_peer_batch_items',
      help: 'Items per PeerBatch, by role and direction',
      labelNames: ['role', 'direction'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    this.streamsRefused = new Counter({
      name: 'iot_peer_streams_refused_total',
      help: 'Inbound peer streams refused before any message was read, by reason: unauthenticated, bad_mac, stale_time, replayed_nonce, tls',
      labelNames: ['reason'],
      registers,
    });
    this.itemsRefused = new Counter({
      name: 'iot_peer_items_refused_total',
      help: 'Items from authenticated peers refused by this node (not a message its actors accept, a reply sent to a server), by kind and reason',
      labelNames: ['kind', 'reason'],
      registers,
    });
    this.secretMismatch = new Gauge({
      name: 'iot_peer_secret_mismatch',
      help: "1 when the cluster's peer secret in Redis differs from the one this node authenticates with (the cluster is split): restore it",
      registers,
    });
  }

  private static readonly byRegistry = new WeakMap<Registry, PeerMetrics>();

  static of(registry: Registry): PeerMetrics {
    let m = PeerMetrics.byRegistry.get(registry);
    if (!m) {
      m = new PeerMetrics(registry);
      PeerMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}
