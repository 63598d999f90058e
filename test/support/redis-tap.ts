/**
 * A transparent TCP proxy in front of a Redis server that records every command its clients send
 * (as RESP arrays of strings) before forwarding it unchanged. Tests point a node's REDIS_URL at
 * it to see exactly which commands reached Redis, e.g. that a window's script call was sent.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** One command a client sent through the tap: its arguments, the command name first. */
export interface TappedCommand {
  readonly connection: number;
  readonly argv: readonly string[];
}

export interface RedisTap {
  /** `redis://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  /** Every command forwarded so far, in the order each connection sent them. */
  readonly commands: readonly TappedCommand[];
  /** Connections from clients to the proxy that are open now. */
  readonly openConnections: number;
  /**
   * The address (`host:port`) Redis sees for the tap's side of `connection` (as in `CLIENT LIST`'s
   * `addr`), once that connection to Redis is up.
   */
  redisSideAddress(connection: number): string | undefined;
  close(): Promise<void>;
}

/**
 * Parses the complete RESP arrays at the start of `buf` (clients send only arrays of bulk
 * strings) and returns them with the number of bytes they took; an incomplete tail is left.
 */
function parseCommands(buf: Buffer): { commands: string[][]; used: number } {
  const commands: string[][] = [];
  let pos = 0;
  const line = (from: number): { text: string; next: number } | undefined => {
    const end = buf.indexOf('\r\n', from);
    return end < 0 ? undefined : { text: buf.toString('latin1', from, end), next: end + 2 };
  };
  outer: while (pos < buf.length) {
    const head = line(pos);
    if (!head) break;
    if (!head.text.startsWith('*')) throw new Error(`redis tap: a client sent ${JSON.stringify(head.text)}, not a RESP array`);
    const count = Number(head.text.slice(1));
    const argv: string[] = [];
    let at = head.next;
    for (let i = 0; i < count; i++) {
      const len = line(at);
      if (!len) break outer;
      const n = Number(len.text.slice(1));
      if (buf.length < len.next + n + 2) break outer;
      argv.push(buf.toString('utf8', len.next, len.next + n));
      at = len.next + n + 2;
    }
    commands.push(argv);
    pos = at;
  }
  return { commands, used: pos };
}

/** Starts a tap on a free port in front of `upstreamUrl` (`redis://host:port`). */
export async function startRedisTap(upstreamUrl: string): Promise<RedisTap> {
  const upstream = new URL(upstreamUrl);
  const commands: TappedCommand[] = [];
  const sockets = new Set<Socket>();
  const addresses = new Map<number, string>();
  let connections = 0;
  let open = 0;
  const server: Server = createServer((client) => {
    const id = ++connections;
    open++;
    const redis = connect(Number(upstream.port), upstream.hostname, () => addresses.set(id, `${redis.localAddress}:${redis.localPort}`));
    sockets.add(client).add(redis);
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      // Recorded before it is forwarded: a command is in `commands` once Redis may have it.
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const { commands: parsed, used } = parseCommands(pending);
      for (const argv of parsed) commands.push({ connection: id, argv });
      pending = pending.subarray(used);
      redis.write(chunk);
    });
    redis.on('data', (chunk: Buffer) => client.write(chunk));
    // Either side gone: the other is closed too, as if the client's own socket had been closed.
    const closeBoth = (): void => {
      client.destroy();
      redis.destroy();
    };
    client.on('close', () => {
      open--;
      sockets.delete(client);
      closeBoth();
    });
    redis.on('close', () => {
      sockets.delete(redis);
      closeBoth();
    });
    client.on('error', closeBoth);
    redis.on('error', closeBoth);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    commands,
    get openConnections() {
      return open;
    },
    redisSideAddress: (connection) => addresses.get(connection),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
