import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError } from '../../bench/harness/cli-args.ts';
import { changePct, compareRuns, direction, renderCompareHtml, verdict } from '../../bench/harness/compare.ts';
import { formatCompareTable } from '../../bench/harness/text-report.ts';
import type { Machine } from '../../bench/harness/machine.ts';
import { asRun, RunFileError, type BenchRun } from '../../bench/harness/run-record.ts';
import type { ScenarioResult } from '../../bench/harness/scenario.ts';

const machine: Machine = {
  cpus: 2,
  model: 'Test CPU',
  mhz: 0,
  memoryBytes: 2 ** 33,
  freeMemoryBytes: 2 ** 32,
  os: 'Linux',
  arch: 'x64',
  hostname: 'h',
  node: 'v20',
  loadavg: [0, 0, 0],
};

function run(results: ScenarioResult[], commit = 'a'.repeat(40)): BenchRun {
  return {
    kind: 'iot-bench-run',
    format: 1,
    startedAt: '2026-11-25T00:00:00.000Z',
    finishedAt: '2026-11-25T00:01:00.000Z',
    machine,
    versions: { dependencies: {}, devDependencies: {} },
    git: { commit },
    params: { scenarios: results.map((r) => r.scenario), duration: 5, hubs: 20, rate: 20_000, nodes: 3, smoke: false, explicit: [] },
    results,
    failures: [],
  };
}

const lat = (name: string, p99: number) => ({ name, count: 100, p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 2, max: p99 * 3 });

describe('compare: two runs side by side', () => {
  it('computes the change in % and calls it better or worse by unit (rates up, times down, others neither)', () => {
    expect(changePct(100, 150)).toBe(50);
    expect(changePct(200, 150)).toBe(-25);
    expect(changePct(0, 5)).toBeNull();
    expect(changePct(null, 5)).toBeNull();
    expect(direction('reports/s')).toBe(1);
    expect(direction('ms')).toBe(-1);
    expect(direction('bytes')).toBe(-1);
    expect(direction('shards')).toBe(0);
    expect(verdict('reports/s', 10)).toBe(1);
    expect(verdict('ms', 10)).toBe(-1);
    expect(verdict('ms', -10)).toBe(1);
    expect(verdict('ms', 1)).toBe(0); // within noise
    expect(verdict('shards', 50)).toBe(0);
  });

  it('matches figures and latency percentiles by scenario and name, keeping those only one run has', () => {
    const a = run([
      {
        scenario: 'ingest',
        figures: [
          { name: 'durable ingest', value: 60_000, unit: 'reports/s' },
          { name: 'gone in B', value: 1, unit: 'ms' },
        ],
        latencies: [lat('ack', 20)],
      },
    ]);
    const b = run([
      {
        scenario: 'ingest',
        figures: [
          { name: 'durable ingest', value: 90_000, unit: 'reports/s' },
          { name: 'new in B', value: 2, unit: 'ms' },
        ],
        latencies: [lat('ack', 10)],
      },
    ]);
    const rows = compareRuns(a, b);
    const by = new Map(rows.map((r) => [r.name, r]));
    expect(by.get('durable ingest')).toMatchObject({ scenario: 'ingest', a: 60_000, b: 90_000, changePct: 50, verdict: 1 });
    expect(by.get('ack p99')).toMatchObject({ unit: 'ms', a: 20, b: 10, changePct: -50, verdict: 1 });
    expect(by.get('ack max')).toMatchObject({ a: 60, b: 30 });
    expect(by.get('gone in B')).toMatchObject({ a: 1, b: null, changePct: null, verdict: 0 });
    expect(by.get('new in B')).toMatchObject({ a: null, b: 2 });
    expect(rows.map((r) => r.name).indexOf('new in B')).toBe(rows.length - 1);
  });

  it('compares the ratios to same-run baselines too, better in the direction of the figure', () => {
    const fig = (value: number, base: number, unit: string) => ({
      name: 'f',
      value,
      unit,
      baseline: { name: 'raw', value: base },
      ratio: value / base,
    });
    const up = compareRuns(
      run([{ scenario: 's', figures: [fig(50, 100, 'req/s')] }]),
      run([{ scenario: 's', figures: [fig(80, 100, 'req/s')] }]),
    );
    expect(up.find((r) => r.name === 'f ÷ raw')).toMatchObject({ unit: 'ratio', a: 0.5, b: 0.8, verdict: 1 });
    const down = compareRuns(run([{ scenario: 's', figures: [fig(4, 2, 'ms')] }]), run([{ scenario: 's', figures: [fig(6, 2, 'ms')] }]));
    expect(down.find((r) => r.name === 'f ÷ raw')).toMatchObject({ a: 2, b: 3, verdict: -1 });
  });

  it('treats null (NaN written as JSON) values as missing', () => {
    const a = asRun(JSON.parse(JSON.stringify(run([{ scenario: 's', figures: [{ name: 'f', value: Number.NaN, unit: 'ms' }] }]))));
    const rows = compareRuns(a, run([{ scenario: 's', figures: [{ name: 'f', value: 3, unit: 'ms' }] }]));
    expect(rows[0]).toMatchObject({ a: null, b: 3, changePct: null });
  });

  it('prints a table and writes a self-contained HTML page', () => {
    const a = run([{ scenario: 'latency', figures: [{ name: 'p99 <at> 20k', value: 12, unit: 'ms' }], latencies: [lat('command', 12)] }]);
    const b = run(
      [{ scenario: 'latency', figures: [{ name: 'p99 <at> 20k', value: 9, unit: 'ms' }], latencies: [lat('command', 9)] }],
      'b'.repeat(40),
    );
    const rows = compareRuns(a, b);
    const text = formatCompareTable(rows);
    expect(text).toMatch(/latency\s+p99 <at> 20k\s+ms\s+12\s+9\s+-25\.0%\s+better/);
    const html = renderCompareHtml(a, b, rows, ['a.json', 'b.json']);
    expect(html).toContain('<svg');
    expect(html).toContain('p99 &lt;at&gt; 20k');
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it('refuses documents that are not runs, saying why', () => {
    expect(() => asRun({ results: [] }, 'x.json')).toThrow(RunFileError);
    expect(() => asRun({ kind: 'iot-bench-run' }, 'x.json')).toThrow(/no "results"/);
    expect(() => asRun({ kind: 'iot-bench-run', results: [{ figures: [] }] }, 'x.json')).toThrow(/results\[0\]/);
  });
});

describe('bench command line', () => {
  it('defaults to every scenario, keeps the order, and knows which flags were given', () => {
    const all = parseCommand([]);
    expect(all).toMatchObject({
      mode: 'run',
      scenarios: ['ingest', 'latency', 'http', 'activation', 'actor', 'forwarding', 'resize', 'failover', 'journal-encoding', 'timers'],
      smoke: false,
      duration: 10,
    });
    const some = parseCommand(['--scenario', 'failover,ingest', '--rate', '5000', '--smoke']);
    expect(some).toMatchObject({ mode: 'run', scenarios: ['ingest', 'failover'], rate: 5000, smoke: true, duration: 0.5 });
    expect(some.mode === 'run' && [...some.explicit]).toEqual(['rate']);
    expect(parseCommand(['--compare', 'a.json', 'b.json'])).toEqual({ mode: 'compare', a: 'a.json', b: 'b.json', out: 'bench/results' });
    expect(all).toMatchObject({ tracing: false });
    expect(parseCommand(['--scenario', 'ingest', '--tracing'])).toMatchObject({ mode: 'run', scenarios: ['ingest'], tracing: true });
    // --kills: the failover scenario's SIGKILLs; absent, the scenario decides (5, 1 in smoke runs).
    expect(all).toMatchObject({ kills: undefined });
    expect(parseCommand(['--scenario', 'failover', '--kills', '3'])).toMatchObject({ mode: 'run', scenarios: ['failover'], kills: 3 });
  });

  it('rejects bad flags with a message naming them', () => {
    const bad: [string[], RegExp][] = [
      [['--scenario', 'nope'], /--scenario nope: unknown/],
      [['--duration', 'abc'], /--duration abc: not a number/],
      [['--hubs', '2.5'], /--hubs 2.5: must be a whole number/],
      [['--rate', '0'], /--rate 0: must be between/],
      [['--nodes', '1', '--scenario', 'failover'], /needs at least 2/],
      [['--compare', 'a.json'], /two run files/],
      [['--compare', 'a.json', 'b.json', '--smoke'], /does not run scenarios/],
      [['--compare', 'a.json', 'b.json', '--tracing'], /does not run scenarios: drop --tracing/],
      [['--compare', 'a.json', 'b.json', '--kills', '2'], /does not run scenarios: drop --kills/],
      [['--kills', '0'], /--kills 0: must be between 1 and 100/],
      [['--kills', '2.5'], /--kills 2.5: must be a whole number/],
      [['--bogus'], /bogus/],
      [['stray'], /unexpected argument stray/],
    ];
    for (const [args, message] of bad) expect(() => parseCommand(args), args.join(' ')).toThrow(message);
    expect(() => parseCommand(['--hubs', '0'])).toThrow(UsageError);
  });
});
