/** `npm run hub:sim -- --hubs 10 --rate 50`: provisions homes over HTTP and streams realistic hub traffic over gRPC. */
import { parseArgs } from 'node:util';
import { provisionHomes } from './provision.ts';
import { SimHub } from './sim-hub.ts';

const USAGE = `usage: npm run hub:sim -- [--hubs 10] [--rate 50] [--batch 10] [--duration 0]
       [--http http://127.0.0.1:8080] [--grpc 127.0.0.1:50051] [--admin-token T]
  --hubs      simulated hubs, one home each
  --rate      reports per second per hub
  --batch     reports per gRPC message
  --duration  seconds to run (0 = until Ctrl-C)
  --admin-token  the node's admin token (default: $ADMIN_TOKEN)`;

function positive(name: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    process.stderr.write(`--${name}=${raw} must be a ${allowZero ? 'non-negative' : 'positive'} number\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hubs: { type: 'string' },
      rate: { type: 'string' },
      batch: { type: 'string' },
      duration: { type: 'string' },
      http: { type: 'string', default: 'http://127.0.0.1:8080' },
      grpc: { type: 'string', default: '127.0.0.1:50051' },
      'admin-token': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const hubs = Math.floor(positive('hubs', values.hubs, 10));
  const rate = positive('rate', values.rate, 50);
  const batch = Math.floor(positive('batch', values.batch, 10));
  const duration = positive('duration', values.duration, 0, true);
  const adminToken = values['admin-token'] ?? process.env.ADMIN_TOKEN;
  if (!adminToken) {
    process.stderr.write(`the admin token is needed to provision homes: pass --admin-token or set ADMIN_TOKEN\n${USAGE}\n`);
    process.exit(2);
  }

  const prefix = `sim-${Date.now().toString(36)}`;
  process.stdout.write(`provisioning ${hubs} homes (${prefix}-*) through ${values.http}\n`);
  const provisioned = await provisionHomes(values.http, adminToken, prefix, hubs);
  let seed = 42;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  // A message every `batch` reports' worth of time: the hub batches what its devices reported meanwhile.
  const flushMs = Math.max(5, (1000 * batch) / rate);
  const sims = provisioned.map(
    (p) =>
      new SimHub({
        address: () => values.grpc,
        ...p,
        ratePerSec: rate,
        batch,
        flushMs,
        rand,
        sharedChannel: true,
        onError: (m) => process.stderr.write(`${m}\n`),
      }),
  );
  for (const s of sims) s.hub.start();
  process.stdout.write(`streaming ${rate} reports/s from each of ${hubs} hubs to ${values.grpc}; Ctrl-C stops\n`);

  const started = Date.now();
  const sum = (f: (s: SimHub) => number): number => sims.reduce((a, s) => a + f(s), 0);
  const line = (): string => {
    const acked = sum((s) => s.acked);
    const secs = (Date.now() - started) / 1000;
    const meanAck = acked > 0 ? (sum((s) => s.ackLatencySumMs) / acked).toFixed(1) : '-';
    const reconnects = sum((s) => s.hub.streams.length - 1);
    return (
      `${secs.toFixed(0)}s sent=${sum((s) => s.sent)} acked=${acked} (${(acked / secs).toFixed(0)}/s) mean-ack=${meanAck}ms ` +
      `commands=${sum((s) => s.commands)} (rules fired) errors=${sum((s) => s.errors)}${reconnects > 0 ? ` reconnects=${reconnects}` : ''}`
    );
  };
  const progress = setInterval(() => process.stdout.write(`${line()}\n`), 2_000);
  const finish = (): void => {
    clearInterval(progress);
    for (const s of sims) s.hub.stop();
    process.stdout.write(`done: ${line()}\n`);
    process.exit(0);
  };
  process.on('SIGINT', finish);
  process.on('SIGTERM', finish);
  if (duration > 0) setTimeout(finish, duration * 1000);
}

main().catch((err: unknown) => {
  process.stderr.write(`hub simulator failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
