/**
 * `npm run bench -- --scenario ingest|latency|http|activation|actor|forwarding|resize|failover|journal-encoding|timers|all …`: runs
 * the chosen scenarios in order against real node processes, with the load in processes of its
 * own, and writes `<out>/bench-<timestamp>.json` (machine, versions, git commit, parameters,
 * results) and a self-contained `<out>/bench-<timestamp>.html`; prints a summary table.
 * `npm run bench` builds first and runs this as `dist/bench/run.js`: the nodes and load processes
 * it starts then run compiled JavaScript too, never tsx.
 * `--compare A.json B.json` shows two runs side by side instead. Exit codes: 0 ok, 1 a scenario
 * threw, 2 bad usage.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { OWN_FLAVOUR } from '../tools/process/script-entry.ts';
import { parseCommand, USAGE, UsageError, type Command, type ScenarioName } from './harness/cli-args.ts';
import { compareRuns, renderCompareHtml } from './harness/compare.ts';
import { describeGit, describeMachine, describeVersions, machineLine } from './harness/machine.ts';
import { progressBars } from './harness/progress.ts';
import { renderRunHtml } from './harness/report-html.ts';
import { fileStamp, loadRun, RunFileError, type BenchRun } from './harness/run-record.ts';
import type { Figure, Scenario, ScenarioContext, ScenarioResult } from './harness/scenario.ts';
import { formatCompareTable, formatSummary } from './harness/text-report.ts';
import { activationScenario } from './scenarios/activation.ts';
import { actorLayerScenario } from './scenarios/actor-layer.ts';
import { failoverScenario } from './scenarios/failover.ts';
import { forwardingScenario } from './scenarios/forwarding.ts';
import { httpScenario } from './scenarios/http.ts';
import { ingestScenario } from './scenarios/ingest.ts';
import { journalEncodingScenario } from './scenarios/journal-encoding.ts';
import { latencyScenario } from './scenarios/latency.ts';
import { resizeScenario } from './scenarios/resize.ts';
import { timersScenario } from './scenarios/timers.ts';

const SCENARIOS: Record<ScenarioName, Scenario> = {
  ingest: ingestScenario,
  latency: latencyScenario,
  http: httpScenario,
  activation: activationScenario,
  actor: actorLayerScenario,
  forwarding: forwardingScenario,
  resize: resizeScenario,
  failover: failoverScenario,
  'journal-encoding': journalEncodingScenario,
  timers: timersScenario,
};

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function compare(cmd: Extract<Command, { mode: 'compare' }>): number {
  const a = loadRun(cmd.a);
  const b = loadRun(cmd.b);
  const rows = compareRuns(a, b);
  out(`A ${cmd.a}: ${a.startedAt}, git ${a.git.commit?.slice(0, 12) ?? 'unknown'}, ${machineLine(a.machine)}`);
  out(`B ${cmd.b}: ${b.startedAt}, git ${b.git.commit?.slice(0, 12) ?? 'unknown'}, ${machineLine(b.machine)}`);
  if (a.params.smoke || b.params.smoke) out('note: a smoke run is compared: its timings mean nothing');
  if (machineLine(a.machine) !== machineLine(b.machine))
    out('note: the runs are from different machines: compare the ratios to the same-run baselines');
  out('');
  out(formatCompareTable(rows));
  mkdirSync(cmd.out, { recursive: true });
  const file = join(cmd.out, `compare-${fileStamp(new Date())}.html`);
  writeFileSync(file, renderCompareHtml(a, b, rows, [basename(cmd.a), basename(cmd.b)]));
  out(`\nwritten ${resolve(file)}`);
  return 0;
}

/** Checks what a scenario returned, so that a broken one fails here rather than in the report. */
function checkResult(name: string, r: ScenarioResult): void {
  if (typeof r !== 'object' || r === null || !Array.isArray(r.figures)) throw new Error(`scenario ${name} returned no figures`);
  for (const f of r.figures as readonly Partial<Figure>[])
    if (typeof f.name !== 'string' || typeof f.unit !== 'string') throw new Error(`scenario ${name}: a figure without name or unit`);
}

async function runScenarios(cmd: Extract<Command, { mode: 'run' }>): Promise<number> {
  const started = new Date();
  const machine = describeMachine();
  const progress = progressBars(Boolean(process.stderr.isTTY) && !cmd.smoke);
  const ctx: ScenarioContext = {
    duration: cmd.duration,
    hubs: cmd.hubs,
    rate: cmd.rate,
    nodes: cmd.nodes,
    smoke: cmd.smoke,
    tracing: cmd.tracing,
    ...(cmd.kills === undefined ? {} : { kills: cmd.kills }),
    explicit: cmd.explicit,
    progress,
    log: out,
  };
  out(`bench ${cmd.smoke ? '(smoke) ' : ''}on ${machineLine(machine)}: ${cmd.scenarios.join(', ')}`);
  if (cmd.tracing) out('tracing: on in the ingest nodes (OTLP to a local discarding sink)');
  // Nodes and load processes run the flavour of this process (tools/process/script-entry.ts).
  out(
    OWN_FLAVOUR === 'compiled'
      ? 'code: compiled JavaScript (dist/) in every process'
      : "code: TypeScript sources under tsx in every process: figures include tsx's wrappers (npm run bench runs the compiled build)",
  );
  const results: ScenarioResult[] = [];
  const failures: { scenario: string; error: string }[] = [];
  for (const name of cmd.scenarios) {
    const scenario = SCENARIOS[name];
    out(`\n▶ ${name}: ${scenario.description}`);
    const t0 = performance.now();
    const loadBefore = loadavg()[0]!;
    try {
      const r = await scenario.run(ctx);
      checkResult(name, r);
      // Other work on the machine skews every figure: say how busy it was.
      const load = `machine load average (1 min) ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after (${machine.cpus} CPUs)`;
      results.push({ ...r, notes: [...(r.notes ?? []), load] });
      out(`✓ ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failures.push({ scenario: name, error });
      out(`✗ ${name} failed after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${error}`);
    }
  }
  const run: BenchRun = {
    kind: 'iot-bench-run',
    format: 1,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine,
    versions: describeVersions(),
    git: describeGit(),
    params: {
      scenarios: cmd.scenarios,
      duration: cmd.duration,
      hubs: cmd.hubs,
      rate: cmd.rate,
      nodes: cmd.nodes,
      smoke: cmd.smoke,
      ...(cmd.kills === undefined ? {} : { kills: cmd.kills }),
      explicit: [...cmd.explicit],
    },
    results,
    failures,
  };
  mkdirSync(cmd.out, { recursive: true });
  const stem = join(cmd.out, `bench-${fileStamp(started)}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(`${stem}.html`, renderRunHtml(run));
  out(`\n${formatSummary(run)}\n`);
  out(`written ${resolve(`${stem}.json`)}`);
  out(`written ${resolve(`${stem}.html`)}`);
  return failures.length > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  let cmd: Command;
  try {
    cmd = parseCommand(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (cmd.mode === 'help') {
    out(USAGE);
    return 0;
  }
  if (cmd.mode === 'compare') {
    try {
      return compare(cmd);
    } catch (err) {
      if (!(err instanceof RunFileError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
  }
  return runScenarios(cmd);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
