/** `npm run ring -- status | plan <change> | add <id> [--weight w] | drain <id> | remove <id> | reweight <id> <w> | wait`: the ops CLI over the admin API (`--wait` ends in 0 = served or 1 = stuck, with what to do). */
import { parseArgs } from 'node:util';

/** Default seconds `--wait` waits for a change to finish before it gives up (`--timeout`). */
const DEFAULT_TIMEOUT_S = 120;
/** Default seconds without any progress (pending, done, epoch, holdings unchanged) before `--wait` gives up (`--stall`). */
const DEFAULT_STALL_S = 30;
/**
 * Seconds a node that is down may still hold shards in the ring before `--wait` gives up (or `--stall`
 * if shorter): `alive: false` means its heartbeat already expired, and the other nodes take such a
 * node out of the ring within about a second or two.
 */
const DEAD_GRACE_S = 10;
const POLL_MS = 500;

const USAGE = `usage: npm run ring -- <command> [--url http://127.0.0.1:8080] [--token T]
  status                     the ring epoch, nodes, shards owned, handoffs in flight
  plan add|drain|remove <id> [--weight w]   dry run: which shards would move where
  add <id> [--weight w]      add a node (it must be running with AUTO_JOIN=false, or be new)
  drain <id>                 hand a node's shards off (it stays in the ring, owning nothing)
  remove <id>                take a node out of the ring
  reweight <id> <w>          change a node's weight (0 < w <= 16; the active weights add up to 256 at most)
  wait                       wait until every moved shard is served (a change already applied)
  --wait                     after a change, wait until every moved shard is served
  --timeout <s>              give up waiting after s seconds (default ${DEFAULT_TIMEOUT_S}; the change stays applied)
  --stall <s>                give up when nothing moved for s seconds (default ${DEFAULT_STALL_S})
Waiting exits 0 once every moved shard is served, 1 with what is stuck and what to do.
The admin token comes from --token or $ADMIN_TOKEN.`;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function changeOf(verb: string | undefined, id: string | undefined, weight: string | undefined, rest: string[]): Record<string, unknown> {
  if (!id) fail(`${verb ?? 'a change'} needs a node id\n${USAGE}`);
  switch (verb) {
    case 'add': {
      const w = weight === undefined ? 1 : Number(weight);
      if (!(w > 0)) fail(`--weight ${weight} must be a positive number`);
      return { add: [{ id, weight: w }] };
    }
    case 'drain':
      return { drain: [id] };
    case 'remove':
      return { remove: [id] };
    case 'reweight': {
      const w = Number(rest[0]);
      if (!(w > 0)) fail(`reweight needs a positive weight, got ${rest[0]}`);
      return { weights: { [id]: w } };
    }
    default:
      return fail(`unknown change ${verb}\n${USAGE}`);
  }
}

/** What `GET /v1/admin/cluster` answers (cluster/cluster-admin.ts ClusterStatus), as far as waiting reads it. */
interface Status {
  readonly epoch: number;
  readonly nodes: readonly {
    readonly id: string;
    readonly state: string;
    readonly alive: boolean;
    readonly shardsAssigned: number;
    readonly shardsOwned: number;
  }[];
  readonly handoffs: { readonly pending: number; readonly done: number; readonly inFlight: boolean };
}

const clock = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;
const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

/** Down (heartbeat expired) yet still in the ring with shards to serve or hand off: nothing moves its shards until it is taken out. */
const deadHolders = (s: Status): Status['nodes'] =>
  s.nodes.filter((n) => !n.alive && n.state !== 'left' && (n.shardsAssigned > 0 || n.state === 'draining'));

/**
 * Polls the status until no handoff is in flight. Gives up (exit 1, one message: what is stuck,
 * since when, what to do) after `timeoutMs`, after `stallMs` without progress, or when a node that
 * is down still holds shards in the ring for min(DEAD_GRACE_S, stall).
 */
async function waitUntilServed(status: () => Promise<Status>, timeoutMs: number, stallMs: number): Promise<void> {
  const started = Date.now();
  let lastProgress = started;
  let lastKey = '';
  let lastLine = '';
  const deadSince = new Map<string, number>();
  for (;;) {
    const s = await status();
    if (!s.handoffs.inFlight) return void process.stdout.write('done: every moved shard is served\n');
    const now = Date.now();
    const key = JSON.stringify([s.epoch, s.handoffs.pending, s.handoffs.done, s.nodes.map((n) => [n.id, n.alive, n.shardsOwned])]);
    if (key !== lastKey) [lastKey, lastProgress] = [key, now];
    const dead = deadHolders(s);
    for (const id of deadSince.keys()) if (!dead.some((n) => n.id === id)) deadSince.delete(id);
    for (const n of dead) if (!deadSince.has(n.id)) deadSince.set(n.id, now);
    const deadTooLong = dead.filter((n) => now - deadSince.get(n.id)! >= Math.min(DEAD_GRACE_S * 1000, stallMs));
    const why =
      deadTooLong.length > 0
        ? `a node that holds shards is down`
        : now - lastProgress >= stallMs
          ? `nothing moved for ${seconds(now - lastProgress)}`
          : now - started >= timeoutMs
            ? `still moving after --timeout ${timeoutMs / 1000} s`
            : undefined;
    if (why) fail(stuckMessage(s, why, started, lastProgress, deadSince), 1);
    const line = `moving… ${s.handoffs.pending} handoffs pending${dead.length ? ` (down: ${dead.map((n) => n.id).join(', ')})` : ''}`;
    if (line !== lastLine) process.stdout.write(`${(lastLine = line)}\n`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function stuckMessage(s: Status, why: string, started: number, lastProgress: number, deadSince: ReadonlyMap<string, number>): string {
  const dead = deadHolders(s);
  const moving = s.nodes.filter((n) => n.alive && n.state !== 'left' && n.shardsOwned !== n.shardsAssigned);
  const lines = [
    `ring: the resize did not finish: ${why} (waiting since ${clock(started)}, last progress ${clock(lastProgress)}).`,
    `  epoch ${s.epoch}: ${s.handoffs.pending} handoffs pending, ${s.handoffs.done} done.`,
  ];
  for (const n of moving)
    lines.push(`  ${n.id} (alive, ${n.state}) holds ${n.shardsOwned} of the ${n.shardsAssigned} shards the ring gives it.`);
  for (const n of dead)
    lines.push(
      `  ${n.id} is down since ${clock(deadSince.get(n.id)!)} or earlier, still ${n.state} in the ring ${n.shardsAssigned > 0 ? `with ${n.shardsAssigned} shards assigned` : '(the shards it hands off wait for it)'}.`,
    );
  lines.push('The change stays applied. What to do:');
  if (dead.length > 0) {
    const ids = dead.map((n) => n.id).join(', ');
    lines.push(
      `  - ${ids}: a node that holds shards is down. Its heartbeat expired (HEARTBEAT_TTL_MS), so the other nodes should take it out of the ring and serve its shards within seconds; they did not.`,
      `    Run \`npm run doctor\`, check the logs of ${ids} and of the live nodes, or take it out yourself: ${dead.map((n) => `\`npm run ring -- remove ${n.id}\``).join(', ')}.`,
    );
  } else if (why.startsWith('still moving')) {
    lines.push('  - shards are still moving: keep waiting with `npm run ring -- wait --timeout <s>`, or watch `npm run ring -- status`.');
  } else {
    lines.push(
      '  - the handoffs stopped moving: run `npm run doctor` (the oldest handoff and the nodes that report it), check the logs of the nodes above',
      '    (a handoff waits for the old owner to release the shard or for its lease to lapse), then `npm run ring -- wait` to wait again.',
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      token: { type: 'string' },
      weight: { type: 'string' },
      wait: { type: 'boolean' },
      timeout: { type: 'string' },
      stall: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command) return void process.stdout.write(`${USAGE}\n`);
  const token = values.token ?? process.env.ADMIN_TOKEN;
  if (!token) fail(`the admin token is needed: --token or ADMIN_TOKEN\n${USAGE}`);
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${values.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }).catch((err: unknown) => fail(`cannot reach ${values.url}: ${(err as Error).message}`, 1));
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) fail(`HTTP ${res.status}: ${JSON.stringify(json)}`, 1);
    return json;
  };
  const print = (x: unknown): void => void process.stdout.write(`${JSON.stringify(x, null, 2)}\n`);

  if (command === 'status') {
    // `owners` names the owner of every shard (1,024 lines by default): the nodes' counts say the same in a few.
    const { owners: _owners, ...status } = await call('GET', '/v1/admin/cluster');
    return print(status);
  }
  if (command === 'plan') return print(await call('POST', '/v1/admin/ring/plan', changeOf(args[0], args[1], values.weight, args.slice(2))));
  const timeoutS = Number(values.timeout ?? DEFAULT_TIMEOUT_S);
  const stallS = Number(values.stall ?? DEFAULT_STALL_S);
  if (!(timeoutS > 0)) fail(`--timeout ${values.timeout} must be a positive number of seconds`);
  if (!(stallS > 0)) fail(`--stall ${values.stall} must be a positive number of seconds`);
  const wait = (): Promise<void> =>
    waitUntilServed(async () => (await call('GET', '/v1/admin/cluster')) as unknown as Status, timeoutS * 1000, stallS * 1000);
  if (command === 'wait') return wait();
  const applied = await call('POST', '/v1/admin/ring', changeOf(command, args[0], values.weight, args.slice(1)));
  print(applied);
  if (values.wait) await wait();
}

main().catch((err: unknown) => fail(`ring: ${err instanceof Error ? err.message : String(err)}`, 1));
