/** The benchmark runner's command line: flags, defaults, and clear messages for anything wrong (the runner exits 2). */
import { parseArgs } from 'node:util';

export const SCENARIOS = [
  'ingest',
  'latency',
  'http',
  'activation',
  'actor',
  'forwarding',
  'resize',
  'failover',
  'journal-encoding',
  'timers',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const USAGE = `usage: npm run bench -- [--scenario NAME[,NAME…]|all] [--duration S] [--hubs N] [--rate R] [--nodes N] [--kills K] [--out DIR] [--smoke] [--tracing]
       npm run bench -- --compare A.json B.json [--out DIR]

  --scenario  ${SCENARIOS.join(' | ')} | all (default all; several: comma-separated, run in the order above)
  --duration  seconds per measured phase (default 10; smoke 0.5)
  --hubs      simulated hubs (homes); default: each scenario's own (ingest 20, latency 200, resize/failover 30, timers 10,000 homes)
  --rate      reports/s in total for fixed-rate phases; default: each scenario's own (latency 1k, 5k and 20k; ingest 20k; forwarding/resize/failover 2k)
  --nodes     cluster size for forwarding (default 2), resize (N → N+1) and failover (N nodes, one killed at a time) (default 3)
  --kills     failover: SIGKILLs in one run, each followed by a replacement node joining (default 5; smoke 1)
  --out       directory for bench-<timestamp>.json and .html (default bench/results)
  --smoke     every scenario for about a second with tiny loads: checks the harness end to end, no timing gates
  --tracing   ingest with OpenTelemetry tracing on in its nodes (OTLP/protobuf to a local sink that discards; OTEL_TRACES_SAMPLER
              and the other OTEL_* variables of this shell apply): compare with a run without it
  --compare   print two runs' figures side by side with the change in %, and write compare-<timestamp>.html`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type Flag = 'duration' | 'hubs' | 'rate' | 'nodes';

export type Command =
  | { readonly mode: 'help' }
  | { readonly mode: 'compare'; readonly a: string; readonly b: string; readonly out: string }
  | {
      readonly mode: 'run';
      readonly scenarios: readonly ScenarioName[];
      readonly duration: number;
      readonly hubs: number;
      readonly rate: number;
      readonly nodes: number;
      readonly out: string;
      readonly smoke: boolean;
      /** Nodes of the ingest scenario run with tracing on (exporting to a discarding sink). */
      readonly tracing: boolean;
      /** `--kills`: SIGKILLs in the failover scenario (undefined: the scenario's default). */
      readonly kills: number | undefined;
      readonly explicit: ReadonlySet<Flag>;
    };

function number(flag: string, raw: string, opts: { integer?: boolean; min: number; max: number }): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} ${raw}: not a number`);
  if (opts.integer && !Number.isInteger(n)) throw new UsageError(`--${flag} ${raw}: must be a whole number`);
  if (n < opts.min || n > opts.max) throw new UsageError(`--${flag} ${raw}: must be between ${opts.min} and ${opts.max}`);
  return n;
}

/** Parses the arguments after `npm run bench --`; throws `UsageError` naming what is wrong. */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        scenario: { type: 'string' },
        duration: { type: 'string' },
        hubs: { type: 'string' },
        rate: { type: 'string' },
        nodes: { type: 'string' },
        kills: { type: 'string' },
        out: { type: 'string' },
        smoke: { type: 'boolean' },
        tracing: { type: 'boolean' },
        compare: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { mode: 'help' };
  const out = v.out ?? 'bench/results';
  if (out.trim() === '') throw new UsageError('--out needs a directory');

  if (v.compare !== undefined) {
    if (positionals.length !== 1)
      throw new UsageError(`--compare takes two run files: --compare A.json B.json (got ${positionals.length + 1})`);
    const runFlags = (['scenario', 'duration', 'hubs', 'rate', 'nodes', 'kills', 'smoke', 'tracing'] as const).filter(
      (f) => v[f] !== undefined,
    );
    if (runFlags.length > 0) throw new UsageError(`--compare does not run scenarios: drop --${runFlags.join(', --')}`);
    return { mode: 'compare', a: v.compare, b: positionals[0]!, out };
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]} (flags start with --)`);

  const names = (v.scenario ?? 'all')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new UsageError('--scenario needs a name');
  for (const s of names) {
    if (s !== 'all' && !(SCENARIOS as readonly string[]).includes(s))
      throw new UsageError(`--scenario ${s}: unknown (known: ${SCENARIOS.join(', ')}, all)`);
  }
  const scenarios = names.includes('all') ? [...SCENARIOS] : SCENARIOS.filter((s) => names.includes(s));
  const smoke = v.smoke ?? false;
  const explicit = new Set<Flag>((['duration', 'hubs', 'rate', 'nodes'] as const).filter((f) => v[f] !== undefined));
  const duration = v.duration === undefined ? (smoke ? 0.5 : 10) : number('duration', v.duration, { min: 0.1, max: 3600 });
  const hubs = v.hubs === undefined ? (smoke ? 2 : 20) : number('hubs', v.hubs, { integer: true, min: 1, max: 100_000 });
  const rate = v.rate === undefined ? (smoke ? 300 : 20_000) : number('rate', v.rate, { min: 1, max: 10_000_000 });
  const nodes = v.nodes === undefined ? 3 : number('nodes', v.nodes, { integer: true, min: 1, max: 32 });
  const kills = v.kills === undefined ? undefined : number('kills', v.kills, { integer: true, min: 1, max: 100 });
  if (scenarios.includes('failover') && nodes < 2) throw new UsageError(`--nodes ${nodes}: failover kills one node and needs at least 2`);
  return { mode: 'run', scenarios, duration, hubs, rate, nodes, out, smoke, tracing: v.tracing ?? false, kills, explicit };
}
