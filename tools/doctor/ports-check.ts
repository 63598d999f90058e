/** Doctor's `ports` check: every address a node registered (HTTP, hub gRPC, peer) accepts a TCP connection. */
import { connect } from 'node:net';
import { WILDCARD_HOSTS } from '../../node/config.ts';
import { fail, ok, someOf, warn, type CheckResult } from './check-result.ts';
import { CALL_TIMEOUT_MS } from './deadline.ts';

/** One address to try: which node registered it, for what, and `host:port` (`[v6]:port` for IPv6). */
export interface PortTarget {
  readonly node: string;
  readonly kind: 'http' | 'grpc' | 'peer';
  readonly address: string;
}

/** `host:port` → its parts; undefined when it is not one. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port > 0 && port < 65536 ? { host: (m[1] ?? m[2])!, port } : undefined;
}

/** Resolves undefined when `host:port` accepts a connection within `timeoutMs`, else the reason. */
export function tryConnect(host: string, port: number, timeoutMs = CALL_TIMEOUT_MS): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (problem: string | undefined): void => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** Tries every target at once (each bounded by its own timeout) and sums them up in one line. */
export async function portsCheck(targets: readonly PortTarget[]): Promise<CheckResult> {
  if (targets.length === 0) return ok('ports', 'no registered address to try');
  const problems = await Promise.all(
    targets.map(async (t) => {
      const hp = splitHostPort(t.address);
      if (!hp) return { t, problem: 'not a host:port', wildcard: false };
      if (WILDCARD_HOSTS.has(hp.host)) return { t, problem: 'a wildcard address other nodes cannot dial', wildcard: true };
      return { t, problem: await tryConnect(hp.host, hp.port), wildcard: false };
    }),
  );
  const describe = ({ t, problem }: { t: PortTarget; problem: string | undefined }): string =>
    `${t.node} ${t.kind} ${t.address} (${problem})`;
  const refused = problems.filter((p) => p.problem !== undefined && !p.wildcard);
  const wildcard = problems.filter((p) => p.wildcard);
  if (refused.length > 0)
    return fail(
      'ports',
      `${refused.length}/${targets.length} registered addresses refuse connections: ${someOf(refused.map(describe))}`,
      'the node is down or the port is not reachable from here (firewall, Service, ADVERTISE_HOST): check that node',
    );
  if (wildcard.length > 0)
    return warn('ports', `registered ${someOf(wildcard.map(describe))}`, 'set ADVERTISE_HOST to the name other nodes reach this one at');
  const n = targets.length;
  return ok(
    'ports',
    `${n} registered address${n === 1 ? ' accepts' : 'es accept'} connections (${someOf([...new Set(targets.map((t) => t.node))], 5)})`,
  );
}
