/**
 * Every environment variable the node's configuration reads, as the README's configuration table
 * shows them: loadConfig takes its names from here and a test renders the README table from it, so
 * the code, the list and the documentation cannot drift apart.
 */

export interface ConfigVariable {
  /** Variable names of the row, e.g. ['PEER_TLS_CERT','PEER_TLS_KEY','PEER_TLS_CA']. */
  readonly names: readonly string[];
  /** As the README shows it: '8080', 'unset', 'host name', '`iot`'. */
  readonly default: string;
  /** One README cell (Markdown, no `|`). */
  readonly meaning: string;
}

/** The rows of the README's configuration table, in its order. */
export const CONFIG_VARIABLES = [
  {
    names: ['NODE_ID'],
    default: 'host name',
    meaning: "this node's id",
  },
  {
    names: ['HTTP_PORT'],
    default: '8080',
    meaning: 'HTTP edge (`0` = a free port, printed at start)',
  },
  {
    names: ['GRPC_PORT'],
    default: '50051',
    meaning: 'hub ingress (`0` = a free port, printed at start)',
  },
  {
    names: ['PEER_PORT'],
    default: '50052',
    meaning: 'node-to-node gRPC (cluster members: `REDIS_URL` set)',
  },
  {
    names: ['HOST'],
    default: '127.0.0.1',
    meaning: 'address to bind',
  },
  {
    names: ['ADVERTISE_HOST'],
    default: 'unset',
    meaning:
      'host others reach this node at, in the addresses it registers with the cluster and prints at start; unset = the bind address (`HOST`, `PEER_HOST` for the peer port), or the host name when that is `0.0.0.0` or `::`. Set it where the host name does not resolve for the others (Kubernetes: `$(NODE_ID).iot-peers`)',
  },
  {
    names: ['REDIS_URL'],
    default: 'unset',
    meaning:
      "durable store: `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS), `redis-sentinel://[user:password@]host:port,host:port/<master>[?sentinelPassword=…]` (Sentinel; the credentials are the master's, `sentinelPassword` the Sentinels' own), `redis-cluster://[user:password@]host:port,host:port` (Redis Cluster); write `@` and `%` in a password as `%40` and `%25`; no other query string; unset = memory (not durable)",
  },
  {
    names: ['CLUSTER'],
    default: '`iot`',
    meaning: 'cluster name, prefix of every Redis key',
  },
  {
    names: ['ADMIN_TOKEN'],
    default: 'generated',
    meaning: 'admin bearer token (at least 16 characters)',
  },
  {
    names: ['ROLES'],
    default: '`ingress,edge,actors`',
    meaning: 'roles this node runs (`actors` is required: every node hosts its share of the shards)',
  },
  {
    names: ['LOG_LEVEL'],
    default: '`info`',
    meaning: "pino level of the components' lines (the start, token, shutdown and fatal lines print at any level); see [Logs](#logs)",
  },
  {
    names: ['ACCESS_LOG'],
    default: '`true`',
    meaning:
      'one log line per HTTP request (method, route, status, duration, token id; never the token), at `info` whatever `LOG_LEVEL` (probes and `/metrics` answered 2xx at `debug`); `false` = none',
  },
  {
    names: ['AUTO_JOIN'],
    default: '`true`',
    meaning: 'join the ring at start and drain out on SIGTERM; `false` = wait for `npm run ring -- add <id>`',
  },
  {
    names: ['DRAIN_TIMEOUT_MS'],
    default: '40000',
    meaning:
      "milliseconds SIGTERM waits for the drain (handing this node's shards to the others) before it stops it, logs an error and shuts down anyway (releasing the leases it still holds; the ring may list it until the other nodes take it out, or `npm run ring -- remove <id>` does); the shutdown after the drain may take up to 60 s more (see [Logs](#logs)): keep `terminationGracePeriodSeconds` above both plus 10 s",
  },
  {
    names: ['HEARTBEAT_TTL_MS'],
    default: '2000',
    meaning:
      "milliseconds a node's heartbeat lives in Redis without a refresh (refreshed every fifth of it): a node killed without a goodbye is taken out of the ring and its shards served elsewhere about this long after its last refresh; a node that could not refresh it for this long stops serving its shards first. 500 to 300000; shard leases last 15 s or this plus 10 s if longer. Every node of a cluster must use the same value",
  },
  {
    names: ['REDIS_WAIT_REPLICAS'],
    default: '0',
    meaning:
      'replicas every durable write must reach (Redis `WAIT`) before hub reports are acked: `1` keeps an acked report through the loss of the Redis master, at a cost in ingest (see [Redis replicas](#redis-replicas)); `0` = the master alone',
  },
  {
    names: ['REDIS_WAIT_TIMEOUT_MS'],
    default: '1000',
    meaning:
      'milliseconds a window waits for `REDIS_WAIT_REPLICAS` replicas; fewer in time = the window fails, its reports are not acked (hubs re-send them)',
  },
  {
    names: ['EVENT_LOG_LENGTH'],
    default: '200',
    meaning:
      "events kept per home for apps that resume with `Last-Event-ID` (a capped log written with the step: in Redis, the home's stream)",
  },
  {
    names: ['EVENT_LOG_TTL_MS'],
    default: '3600000',
    meaning: "milliseconds a home's event log is kept after its last event",
  },
  {
    names: ['HUB_WINDOW'],
    default: '1000',
    meaning: 'credit window: reports a hub may have sent and not had acked',
  },
  {
    names: ['MAX_BODY_BYTES'],
    default: '65536',
    meaning: 'largest HTTP body (`413` above it)',
  },
  {
    names: ['MAX_HUB_MESSAGE_BYTES'],
    default: '1048576',
    meaning: 'largest gRPC message from a hub (`RESOURCE_EXHAUSTED` above it)',
  },
  {
    names: ['PASSIVATE_AFTER_MS'],
    default: '300000',
    meaning: 'idle time before an actor is snapshotted and stopped',
  },
  {
    names: ['SHARDS'],
    default: '1024',
    meaning: 'shards of a new cluster (stored with it in Redis; an existing cluster keeps its count)',
  },
  {
    names: ['RATE_LIMIT_PER_TOKEN'],
    default: '50',
    meaning:
      'HTTP requests per second per app token (`429` with `Retry-After` above it); with `REDIS_URL` for the whole cluster, see [Rate limits](#rate-limits)',
  },
  {
    names: ['RATE_LIMIT_PER_HOME'],
    default: '100',
    meaning: 'HTTP requests per second per home; with `REDIS_URL` for the whole cluster',
  },
  {
    names: ['RATE_LIMIT_BURST'],
    default: '100',
    meaning: 'bucket size of both rate limits',
  },
  {
    names: ['RATE_LIMIT_REDIS_TIMEOUT_MS'],
    default: '250',
    meaning:
      'milliseconds after which a rate-limit grant from Redis counts as a failure (its requests still wait for it); three failures in a row make the node decide with its own buckets (logged, counted in `iot_http_rate_limit_fallback_total`) until Redis answers again; see [Rate limits](#rate-limits)',
  },
  {
    names: ['PEER_HOST'],
    default: '127.0.0.1',
    meaning:
      'address the node-to-node port binds (separate from `HOST`, so the public edges never expose it by accident); see [Security](#security)',
  },
  {
    names: ['PEER_SECRET'],
    default: 'unset',
    meaning:
      "cluster secret for peer streams (at least 32 characters, the same on every node); unset = a secret generated once and kept in the cluster's Redis",
  },
  {
    names: ['PEER_TLS_CERT', 'PEER_TLS_KEY', 'PEER_TLS_CA'],
    default: 'unset',
    meaning: "mutual TLS between nodes (PEM paths; the CA is the cluster's)",
  },
  {
    names: ['HUB_TLS_CERT', 'HUB_TLS_KEY', 'HUB_TLS_CA'],
    default: 'unset',
    meaning: 'TLS for the hub ingress; with `HUB_TLS_CA` hubs must present a client certificate signed by it',
  },
  {
    names: ['HTTP_TLS_CERT', 'HTTP_TLS_KEY', 'HTTP_TLS_CA'],
    default: 'unset',
    meaning: 'HTTPS for the edge; with `HTTP_TLS_CA` clients must present a certificate signed by it',
  },
  {
    names: ['METRICS_PORT'],
    default: 'unset',
    meaning:
      'serve `/metrics` without authentication on `METRICS_HOST:METRICS_PORT` (and not on `HTTP_PORT`); unset = `/metrics` on `HTTP_PORT` for the admin token only',
  },
  {
    names: ['METRICS_HOST'],
    default: '127.0.0.1',
    meaning:
      'address of the metrics port (plaintext, unauthenticated: a warning at start when not loopback); needs `METRICS_PORT`, which must differ from the other ports in use',
  },
  {
    names: ['HUB_HELLO_TIMEOUT_MS'],
    default: '10000',
    meaning: 'a hub stream that has not sent `hello` by then is ended',
  },
  {
    names: ['HUB_IDLE_MS'],
    default: '300000',
    meaning: 'a hub connection without an open stream for this long is closed',
  },
  {
    names: ['HUB_MAX_CONNECTIONS'],
    default: '20000',
    meaning: 'hub connections one node holds; past it new ones are refused',
  },
  {
    names: ['HUB_OUTBOUND_QUEUE'],
    default: '1000',
    meaning:
      'acks and errors waiting for a hub that is not reading; past it its stream ends with `RESOURCE_EXHAUSTED` (commands and desired deltas may wait up to this plus 101 per device of its hello; a stream that drains nothing for 10 s while messages wait ends too)',
  },
  {
    names: ['SSE_MAX_PER_TOKEN'],
    default: '16',
    meaning: 'open event streams per app token (per node)',
  },
  {
    names: ['SSE_MAX_PER_HOME'],
    default: '64',
    meaning: 'open event streams per home (per node)',
  },
] as const satisfies readonly ConfigVariable[];

/** A variable loadConfig may read: its readers take this type, so a name missing from the list does not compile. */
export type ConfigVariableName = (typeof CONFIG_VARIABLES)[number]['names'][number];

/** Every variable name loadConfig reads. */
export const CONFIG_VARIABLE_NAMES: ReadonlySet<string> = new Set(CONFIG_VARIABLES.flatMap((v): readonly string[] => v.names));
