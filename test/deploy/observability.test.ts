/**
 * The Grafana dashboard and the Prometheus alert rules in deploy/: well formed, covering what ops
 * watch, and naming only metrics a running node (with Redis, every role) exposes in /metrics.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { externalToolMissing, skipWithout } from '../support/external-tool.ts';
import { loadConfig } from '../../node/config.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { ReplicaWait } from '../../runtime/redis/replica-wait.ts';
import { startTestRedis, type TestRedis } from '../../tools/process/redis-server.ts';
import { ALERT_SCENARIOS } from './alert-scenarios.ts';
import { DEPLOY_DIR, readDeployFile } from './deploy-files.ts';
import { counterFunctionUses, histogramBase, labelUses, metricNames, unbalanced } from './promql-names.ts';

interface Target {
  readonly refId?: string;
  readonly expr?: string;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { readonly query?: string };
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}
interface AlertRule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleFile {
  readonly groups: readonly { readonly name: string; readonly rules: readonly AlertRule[] }[];
}

const DASHBOARD_DIR = 'grafana/dashboards';
const dashboardFiles = readdirSync(join(DEPLOY_DIR, DASHBOARD_DIR)).filter((f) => f.endsWith('.json'));
const dashboards: { file: string; dashboard: Dashboard }[] = dashboardFiles.map((file) => ({
  file,
  dashboard: JSON.parse(readDeployFile(join(DASHBOARD_DIR, file))) as Dashboard,
}));
const runtime = dashboards.find((d) => d.file === 'iot-runtime.json')?.dashboard;
const rules = parse(readDeployFile('prometheus/alerts.yml')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is AlertRule & { alert: string } => r.alert !== undefined);

/** Every panel, rows' nested panels included. */
const panelsOf = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryOf = (v: Variable): string => (typeof v.query === 'string' ? v.query : (v.query?.query ?? ''));

/** Every PromQL expression of the dashboards and the alert rules, with where it is (`dashboard iot-runtime.json › Panel title`, `alert IotX`). */
function expressions(): { expr: string; where: string }[] {
  const all: { expr: string; where: string }[] = [];
  for (const { file, dashboard } of dashboards) {
    for (const p of panelsOf(dashboard))
      for (const t of p.targets ?? []) all.push({ expr: t.expr ?? '', where: `dashboard ${file} › ${p.title}` });
    for (const v of dashboard.templating.list)
      if (v.type === 'query') all.push({ expr: queryOf(v), where: `dashboard ${file} › variable ${v.name}` });
  }
  for (const r of alerts) all.push({ expr: r.expr, where: `alert ${r.alert}` });
  return all;
}

/** Metric name → where it is named. */
function namedMetrics(): Map<string, string[]> {
  const named = new Map<string, string[]>();
  for (const { expr, where } of expressions()) for (const name of metricNames(expr)) named.set(name, [...(named.get(name) ?? []), where]);
  return named;
}

/** Series Prometheus makes itself for each target, never in a node's /metrics. */
const SCRAPE_SERIES = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

/** `# TYPE name type` lines of a Prometheus text exposition. */
function typesOf(exposition: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
  return types;
}

/** The named metrics `types` lacks (a histogram's `_bucket`/`_sum`/`_count` count as the histogram). */
function missingFrom(types: Map<string, string>, named: Map<string, string[]>): string[] {
  const missing: string[] = [];
  for (const [name, where] of named) {
    if (SCRAPE_SERIES.has(name) || types.has(name)) continue;
    const base = histogramBase(name);
    if (base !== undefined && (types.get(base) === 'histogram' || types.get(base) === 'summary')) continue;
    missing.push(`${name} (${[...new Set(where)].join('; ')})`);
  }
  return missing;
}

/** What a series named in PromQL is on a node: its exposition type, whether it is a histogram's or summary's own series, and its labels. */
interface SeriesShape {
  readonly type: string;
  /** `x_bucket`, `x_sum` or `x_count` of a histogram or summary `x`: a counter in all but name. */
  readonly histogramSeries: boolean;
  readonly labels: ReadonlySet<string>;
}

/** Labels Prometheus attaches to every scraped series (the target's), which no metric declares. */
const TARGET_LABELS = new Set(['instance', 'job']);

/** The label names a prom-client metric was declared with (`le` and `quantile` are not among them). */
function declaredLabels(metric: object): readonly string[] {
  // prom-client keeps the configuration's labelNames on the metric; its typings do not say so.
  const names = (metric as { readonly labelNames?: unknown }).labelNames;
  if (!Array.isArray(names)) throw new Error('prom-client metric without labelNames: cannot check the labels deploy/ names');
  return names as string[];
}

/** How `name` exists on a node, read from its registry (labels) and its exposition (types); undefined when it does not. */
function shapeOn(registry: Registry, types: Map<string, string>): (name: string) => SeriesShape | undefined {
  return (name) => {
    if (SCRAPE_SERIES.has(name)) return { type: 'gauge', histogramSeries: false, labels: new Set() };
    const own = registry.getSingleMetric(name);
    if (own) return { type: types.get(name) ?? 'untyped', histogramSeries: false, labels: new Set(declaredLabels(own)) };
    const base = histogramBase(name);
    const parent = base === undefined ? undefined : registry.getSingleMetric(base);
    const type = base === undefined ? undefined : types.get(base);
    if (!parent || (type !== 'histogram' && type !== 'summary')) return undefined;
    const labels = new Set(declaredLabels(parent));
    if (type === 'histogram' && name.endsWith('_bucket')) labels.add('le');
    return { type, histogramSeries: true, labels };
  };
}

/**
 * What the expressions get wrong about the series they read: a label matched or aggregated by
 * that the metric does not have (the scrape's target labels aside), and rate/irate/increase of
 * something that is not a counter or a histogram's series. A metric `shape` does not know is
 * left to missingFrom.
 */
function shapeProblems(exprs: readonly { expr: string; where: string }[], shape: (name: string) => SeriesShape | undefined): string[] {
  const problems: string[] = [];
  for (const { expr, where } of exprs) {
    for (const use of labelUses(expr)) {
      const s = shape(use.metric);
      if (s && !TARGET_LABELS.has(use.label) && !s.labels.has(use.label)) {
        const has = s.labels.size === 0 ? 'none' : [...s.labels].join(', ');
        problems.push(`${where}: ${use.metric} has no label ${use.label} (${use.clause}; it has ${has})`);
      }
    }
    for (const use of counterFunctionUses(expr)) {
      const s = shape(use.metric);
      if (s && s.type !== 'counter' && !s.histogramSeries) problems.push(`${where}: ${use.fn}() of ${use.metric}, a ${s.type}`);
    }
  }
  return problems;
}

const DURATION = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/;

describe('metricNames (PromQL)', () => {
  it.each([
    ['iot_node_ready == 0', ['iot_node_ready']],
    ['up{job="iot"} == 0', ['up']],
    [
      'histogram_quantile(0.99, sum by (le, instance) (rate(iot_hub_ack_latency_seconds_bucket{instance=~"$node"}[$__rate_interval]))) > 0.5',
      ['iot_hub_ack_latency_seconds_bucket'],
    ],
    ['sum(rate(a_total[5m] offset 1h)) by (route) / ignoring(status) group_left(x) b_total', ['a_total', 'b_total']],
    ['max by (instance, peer) (iot_peer_breaker_state) == 2 and on(instance) iot_node_ready', ['iot_peer_breaker_state', 'iot_node_ready']],
    ['sum by (route, status) (rate(x_total{status=~"[45]..", route!="/a(b)"}[1m:10s]))', ['x_total']],
    ['increase(c_total[10m]) > 5e3 unless bool d', ['c_total', 'd']],
    ['label_values(iot_node_ready, instance)', ['iot_node_ready']],
    ['label_values(instance)', []],
    ['vector(1) + time()', []],
  ])('reads the metrics of %s', (expr, names) => {
    expect(metricNames(expr)).toEqual(names);
  });

  it('reads the labels an expression expects of its metrics: matchers, and by/without of what is aggregated', () => {
    expect(labelUses('sum by (instance, peer) (rate(a_total{outcome="x(y)", kind!~"[a,b]"}[5m]) or rate(b_total[5m])) > 0')).toEqual([
      { metric: 'a_total', label: 'outcome', clause: 'matcher' },
      { metric: 'a_total', label: 'kind', clause: 'matcher' },
      { metric: 'a_total', label: 'instance', clause: 'by' },
      { metric: 'a_total', label: 'peer', clause: 'by' },
      { metric: 'b_total', label: 'instance', clause: 'by' },
      { metric: 'b_total', label: 'peer', clause: 'by' },
    ]);
    // The clause after the aggregated expression; nested aggregations; a comparison with another metric outside.
    expect(labelUses('sum(rate(c_total[1m])) without (route) > on(instance) max by (le) (d_bucket)')).toEqual([
      { metric: 'c_total', label: 'route', clause: 'without' },
      { metric: 'd_bucket', label: 'le', clause: 'by' },
    ]);
    expect(labelUses('histogram_quantile(0.99, sum by (le, kind) (rate(e_bucket{instance=~"$node"}[$__rate_interval])))')).toEqual([
      { metric: 'e_bucket', label: 'instance', clause: 'matcher' },
      { metric: 'e_bucket', label: 'le', clause: 'by' },
      { metric: 'e_bucket', label: 'kind', clause: 'by' },
    ]);
    expect(labelUses('max(g{state="active"}) < count(up{job="iot"} == 1)')).toEqual([
      { metric: 'g', label: 'state', clause: 'matcher' },
      { metric: 'up', label: 'job', clause: 'matcher' },
    ]);
  });

  it('reads what rate, irate and increase are applied to', () => {
    expect(
      counterFunctionUses('count_over_time((sum by (i) (increase(a_total[2m])) > 0)[30m:2m]) + irate(b_bucket{x="rate(c)"}[1m]) / g'),
    ).toEqual([
      { fn: 'increase', metric: 'a_total' },
      { fn: 'irate', metric: 'b_bucket' },
    ]);
    expect(counterFunctionUses('max_over_time(g[1h]) + delta(h[5m])')).toEqual([]);
  });

  it('finds unbalanced brackets', () => {
    expect(unbalanced('sum(rate(x[5m]))')).toBeUndefined();
    expect(unbalanced('x{a="}"}')).toBeUndefined();
    expect(unbalanced('sum(rate(x[5m])')).toBe('unclosed (');
    expect(unbalanced('x[5m)')).toBe('unexpected )');
  });
});

describe('deploy/grafana/dashboards', () => {
  it('holds the runtime dashboard, and every dashboard has its own uid', () => {
    expect(runtime, 'deploy/grafana/dashboards/iot-runtime.json').toBeDefined();
    const uids = dashboards.map((d) => d.dashboard.uid);
    expect(uids.every((u) => typeof u === 'string' && /^[a-zA-Z0-9_-]{1,40}$/.test(u))).toBe(true);
    expect(new Set(uids).size).toBe(uids.length);
  });

  it.each(dashboards)('$file: a data source variable, a node variable, and a Prometheus query in every panel', ({ dashboard }) => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const vars = dashboard.templating.list;
    expect(vars.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(queryOf(vars.find((v) => v.name === 'node')!)).toMatch(/^label_values\(\w+, instance\)$/);
    const panels = panelsOf(dashboard);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const problems: string[] = [];
    for (const p of panels.filter((p) => p.type !== 'row')) {
      const targets = p.targets ?? [];
      if (targets.length === 0) problems.push(`${p.title}: no target`);
      if (p.datasource?.uid !== '${datasource}') problems.push(`${p.title}: data source is not \${datasource}`);
      if (new Set(targets.map((t) => t.refId)).size !== targets.length) problems.push(`${p.title}: refIds repeat`);
      for (const t of targets) {
        const expr = t.expr ?? '';
        if (metricNames(expr).length === 0) problems.push(`${p.title} ${t.refId}: no metric in "${expr}"`);
        const bad = unbalanced(expr);
        if (bad) problems.push(`${p.title} ${t.refId}: ${bad} in "${expr}"`);
        if (!expr.includes('$node')) problems.push(`${p.title} ${t.refId}: not filtered by the node variable`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('shows what ops watch: ingest, acks, actors, persistence, fencing, handoffs, breakers, HTTP, rules, commands, timers, readiness, the ring and its members', () => {
    const shown = new Set(panelsOf(runtime!).flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr ?? ''))));
    const wanted = [
      'iot_hub_reports_total',
      'iot_hub_ack_latency_seconds_bucket',
      'iot_actor_resident',
      'iot_persist_seconds_bucket',
      'iot_persist_write_failures_total',
      'iot_persist_fence_rejections_total',
      'iot_cluster_handoffs_in_flight',
      'iot_cluster_handoff_oldest_seconds',
      'iot_peer_breaker_state',
      'iot_http_requests_total',
      'iot_http_request_duration_seconds_bucket',
      'iot_rule_runs_total',
      'iot_commands_finished_total',
      'iot_reminder_lateness_seconds_bucket',
      'iot_node_ready',
      'iot_cluster_in_ring',
      'iot_cluster_ring_nodes',
      'up',
    ];
    expect(wanted.filter((m) => !shown.has(m))).toEqual([]);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it('gives every alert a unique name, a well-formed expression, a for duration, a severity, a summary and a description', () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    const names = alerts.map((a) => a.alert);
    expect(new Set(names).size).toBe(names.length);
    const problems: string[] = [];
    for (const a of alerts) {
      if (metricNames(a.expr).length === 0) problems.push(`${a.alert}: no metric in its expression`);
      const bad = unbalanced(a.expr);
      if (bad) problems.push(`${a.alert}: ${bad}`);
      if (a.for === undefined || !DURATION.test(a.for)) problems.push(`${a.alert}: for is ${a.for}`);
      if (!['critical', 'warning', 'info'].includes(a.labels?.severity ?? '')) problems.push(`${a.alert}: severity ${a.labels?.severity}`);
      if (!a.annotations?.summary?.trim()) problems.push(`${a.alert}: no summary`);
      if ((a.annotations?.description?.trim().length ?? 0) < 80) problems.push(`${a.alert}: the description must say what to do`);
    }
    expect(problems).toEqual([]);
  });

  it('alerts on a node down, not ready or out of the ring, a ring short of members, failing or fenced writes, refused peer requests, a stuck handoff and slow acks', () => {
    const metricsAlerted = new Set(alerts.flatMap((a) => metricNames(a.expr)));
    for (const m of [
      'up',
      'iot_node_ready',
      'iot_cluster_in_ring',
      'iot_cluster_ring_nodes',
      'iot_persist_write_failures_total',
      'iot_persist_seconds_count',
      'iot_persist_fence_rejections_total',
      'iot_peer_asks_total',
      'iot_peer_sends_total',
      'iot_cluster_handoff_oldest_seconds',
      'iot_hub_ack_latency_seconds_bucket',
    ]) {
      expect(metricsAlerted, m).toContain(m);
    }
  });

  it('names the scrape job deploy/prometheus/prometheus.yml defines, which loads these rules', () => {
    const scrape = parse(readDeployFile('prometheus/prometheus.yml')) as {
      rule_files?: string[];
      scrape_configs: { job_name: string }[];
    };
    expect(scrape.rule_files?.some((f) => f.endsWith('/alerts.yml') || f === 'alerts.yml')).toBe(true);
    const jobs = new Set(scrape.scrape_configs.map((c) => c.job_name));
    const named = alerts.flatMap((a) => [...a.expr.matchAll(/\bjob\s*=\s*"([^"]+)"/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((j) => !jobs.has(j))).toEqual([]);
  });

  // promtool (Prometheus' own rule checker, from Debian's prometheus package: `.ci/run` unpacks it
  // when missing) checks the rules' syntax and evaluates the scenarios below with Prometheus' engine.
  const promtoolMissing = externalToolMissing(
    'promtool',
    ['--version'],
    "run .ci/run, or unpack it from Debian's prometheus package (apt-get download prometheus; dpkg -x) into PATH",
  );
  const noPromtool = skipWithout(promtoolMissing);
  it.skipIf(noPromtool)('passes promtool check rules', () => {
    if (promtoolMissing) expect.fail(promtoolMissing);
    expect(() => execFileSync('promtool', ['check', 'rules', join(DEPLOY_DIR, 'prometheus/alerts.yml')], { stdio: 'pipe' })).not.toThrow();
  });

  // The scenarios the thresholds are for, evaluated by Prometheus' own engine. The rules are
  // copied without annotations: promtool compares those too, and the descriptions are prose.
  it.skipIf(noPromtool)('fires in the scenarios it is meant for and stays quiet in the others (promtool test rules)', () => {
    if (promtoolMissing) expect.fail(promtoolMissing);
    const dir = mkdtempSync(join(tmpdir(), 'iot-alerts-'));
    try {
      const bare = { groups: rules.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _, ...r }) => r) })) };
      writeFileSync(join(dir, 'alerts.yml'), stringify(bare));
      writeFileSync(join(dir, 'tests.yml'), stringify({ rule_files: ['alerts.yml'], evaluation_interval: '15s', tests: ALERT_SCENARIOS }));
      const run = spawnSync('promtool', ['test', 'rules', join(dir, 'tests.yml')], { encoding: 'utf8' });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every metric the dashboards and alerts name exists on a running node', () => {
  let redis: TestRedis;
  let node: RunningNode;
  let exposition: string;
  /** The node's registry, with the metrics only a node with REDIS_WAIT_REPLICAS > 0 has (registered as that node registers them). */
  let registry: Registry;

  beforeAll(async () => {
    redis = await startTestRedis();
    node = await startNode(
      loadConfig({
        NODE_ID: 'observability-test',
        REDIS_URL: redis.url,
        CLUSTER: redis.cluster,
        HOST: '127.0.0.1',
        HTTP_PORT: '0',
        GRPC_PORT: '0',
        PEER_PORT: '0',
        METRICS_PORT: '0',
        SHARDS: '8',
        ADMIN_TOKEN: 'admin-observability-test',
      }),
      { logger: silentLogger, shutdownGraceMs: 200 },
    );
    const res = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    // iot_redis_replica_wait_* exist only with REDIS_WAIT_REPLICAS > 0, which needs a Redis replica:
    // their ReplicaWait registers them here, on a registry of its own, merged with the node's.
    const replicaWait = new Registry();
    new ReplicaWait(
      () => {
        throw new Error('not used');
      },
      { replicas: 1, timeoutMs: 1_000 },
      replicaWait,
      silentLogger,
    );
    registry = Registry.merge([node.registry, replicaWait]);
    exposition = `${await res.text()}\n${await replicaWait.metrics()}`;
  });

  afterAll(async () => {
    await node?.close();
    await redis?.stop();
  });

  it('exposes a # TYPE line for each of them', () => {
    const named = namedMetrics();
    expect(named.size).toBeGreaterThan(20);
    const missing = missingFrom(typesOf(exposition), named);
    expect(missing, `metrics named in deploy/ but absent from /metrics:\n${missing.join('\n')}`).toEqual([]);
  });

  it('matches and aggregates only by labels the metrics have, and takes rates only of counters and histogram series', () => {
    const problems = shapeProblems(expressions(), shapeOn(registry, typesOf(exposition)));
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('names a label a metric lacks, and a rate of a gauge', () => {
    const shape = shapeOn(registry, typesOf(exposition));
    expect(shape('iot_peer_asks_total')).toMatchObject({ type: 'counter', labels: new Set(['peer', 'outcome']) });
    expect(shape('iot_persist_seconds_bucket')).toMatchObject({ type: 'histogram', histogramSeries: true, labels: new Set(['le']) });
    expect(shape('iot_persist_seconds_count')).toMatchObject({ histogramSeries: true, labels: new Set() });
    expect(shape('iot_nope')).toBeUndefined();
    expect(
      shapeProblems(
        [
          { expr: 'sum by (instance, peer) (rate(iot_peer_asks_total{outcome="rejected", kind="tell"}[5m]))', where: 'a' },
          { expr: 'max by (state) (iot_cluster_in_ring) > 0', where: 'b' },
          { expr: 'sum by (le) (rate(iot_persist_seconds_count[5m])) + increase(iot_node_ready[5m])', where: 'c' },
          { expr: 'histogram_quantile(0.9, sum by (le, instance) (rate(iot_persist_seconds_bucket{job="iot"}[5m])))', where: 'd' },
          { expr: 'up{job="iot", pod="x"} == 1', where: 'e' },
        ],
        shape,
      ),
    ).toEqual([
      'a: iot_peer_asks_total has no label kind (matcher; it has peer, outcome)',
      'b: iot_cluster_in_ring has no label state (by; it has none)',
      'c: iot_persist_seconds_count has no label le (by; it has none)',
      'c: increase() of iot_node_ready, a gauge',
      'e: up has no label pod (matcher; it has none)',
    ]);
  });

  it('reports the node ready, in the ring and the ring with one active member, with every rule outcome and command status at 0 before any event', () => {
    expect(exposition).toMatch(/^iot_node_ready 1$/m);
    expect(exposition).toMatch(/^iot_cluster_in_ring 1$/m);
    expect(exposition).toMatch(/^iot_cluster_ring_nodes\{state="active"\} 1$/m);
    expect(exposition).toMatch(/^iot_cluster_ring_nodes\{state="draining"\} 0$/m);
    expect(exposition).toMatch(/^iot_cluster_handoff_oldest_seconds \d/m);
    expect(exposition).toMatch(/^iot_rule_runs_total\{outcome="budget_exhausted"\} 0$/m);
    expect(exposition).toMatch(/^iot_commands_finished_total\{status="expired"\} 0$/m);
  });

  it('names a missing metric with where it is used', () => {
    const named = new Map([
      ['iot_nope_total', ['alert IotNope']],
      ['iot_node_ready_bucket', ['dashboard x › y']],
    ]);
    expect(missingFrom(typesOf(exposition), named)).toEqual(['iot_nope_total (alert IotNope)', 'iot_node_ready_bucket (dashboard x › y)']);
  });
});

describe('node health metrics without Redis', () => {
  it('reports a memory node ready, in the ring and its one active member (it is the whole cluster)', async () => {
    const node = await startNode(
      loadConfig({ NODE_ID: 'observability-memory', HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', METRICS_PORT: '0' }),
      {
        logger: silentLogger,
        shutdownGraceMs: 200,
      },
    );
    try {
      const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
      expect(text).toMatch(/^iot_node_ready 1$/m);
      expect(text).toMatch(/^iot_cluster_in_ring 1$/m);
      expect(text).toMatch(/^iot_cluster_ring_nodes\{state="active"\} 1$/m);
      expect((await fetch(`http://127.0.0.1:${node.httpPort}/readyz`)).status).toBe(200);
    } finally {
      await node.close();
    }
  });
});
