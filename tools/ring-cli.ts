/** `npm run ring -- status | plan <change> | add <id> [--weight w] | drain <id> | remove <id> | reweight <id> <w>`: the ops CLI over the admin API. */
import { parseArgs } from 'node:util';

const USAGE = `usage: npm run ring -- <command> [--url http://127.0.0.1:8080] [--token T]
  status                     the ring epoch, nodes, shards owned, handoffs in flight
  plan add|drain|remove <id> [--weight w]   dry run: which shards would move where
  add <id> [--weight w]      add a node (it must be running with AUTO_JOIN=false, or be new)
  drain <id>                 hand a node's shards off (it stays in the ring, owning nothing)
  remove <id>                take a node out of the ring
  reweight <id> <w>          change a node's weight (0 < w <= 16; the active weights add up to 256 at most)
  --wait                     after a change, wait until every moved shard is served
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

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      token: { type: 'string' },
      weight: { type: 'string' },
      wait: { type: 'boolean' },
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
  const applied = await call('POST', '/v1/admin/ring', changeOf(command, args[0], values.weight, args.slice(1)));
  print(applied);
  if (values.wait) {
    for (;;) {
      const status = (await call('GET', '/v1/admin/cluster')) as { handoffs: { inFlight: boolean; pending: number } };
      if (!status.handoffs.inFlight) break;
      process.stdout.write(`moving… ${status.handoffs.pending} handoffs pending\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
    process.stdout.write('done: every moved shard is served\n');
  }
}

main().catch((err: unknown) => fail(`ring: ${err instanceof Error ? err.message : String(err)}`, 1));
