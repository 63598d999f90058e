/**
 * `npm run bench -- --smoke --scenario all`: the harness end to end, compiled as `npm run bench`
 * runs it (dist/, built once here) — every scenario runs with tiny loads against real node
 * processes and load processes, and the run writes its JSON and HTML. Nothing here checks a timing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../bench/harness/cli-args.ts';
import { asRun } from '../../bench/harness/run-record.ts';
import type { Figure } from '../../bench/harness/scenario.ts';
import { buildCompiled } from '../../tools/process/compiled-build.ts';
import { DIST_DIR } from '../../tools/process/script-entry.ts';
import { runCompiledBench } from './support/run-compiled-bench.ts';
import { expectWellFormed } from './support/well-formed.ts';

// Every scenario's smoke took 147 s on a 2-core machine busy with other tests (load average 11): room for that.
const SMOKE_MS = 240_000;
const bench = (args: string[]): ReturnType<typeof runCompiledBench> => runCompiledBench(args, SMOKE_MS);

describe('bench runner (smoke: the harness works end to end; no timing is checked)', () => {
  // The bench measures compiled JavaScript: build dist/ as `npm run bench` does (incremental: quick when built).
  beforeAll(() => buildCompiled(), 240_000);

  it(
    'runs every scenario and writes a run JSON (machine, versions, commit, figures of each scenario) and a self-contained HTML report',
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
      try {
        const { code, text } = await bench(['--smoke', '--scenario', 'all', '--out', out]);
        expect(code, text).toBe(0);
        const files = readdirSync(out);
        const json = files.find((f) => /^bench-.*\.json$/.test(f));
        const html = files.find((f) => /^bench-.*\.html$/.test(f));
        expect(json, files.join(', ')).toBeDefined();
        expect(html, files.join(', ')).toBeDefined();

        const run = asRun(JSON.parse(readFileSync(join(out, json!), 'utf8')));
        expect(run.failures).toEqual([]);
        expect(run.params).toMatchObject({ smoke: true, scenarios: [...SCENARIOS] });
        expect(run.machine.cpus).toBeGreaterThan(0);
        expect(run.machine.node).toBe(process.version);
        expect(run.versions.dependencies).toHaveProperty('@grpc/grpc-js');
        expect(run.git.commit ?? run.git.error).toBeTruthy();
        // One result per scenario, in order, each with figures.
        expect(run.results).toHaveLength(SCENARIOS.length);
        for (const r of run.results) expect(r.figures.length, `${r.scenario} has no figures`).toBeGreaterThan(0);
        const byName = new Map(SCENARIOS.map((s, i) => [s, run.results[i]!]));
        // The scenarios of this harness: baselines and ratios, latencies, timelines and the counts that must be zero
        // (their values are the runtime's business — the e2e tests gate on them — not the harness's).
        // A figure has its ratio to its baseline unless the baseline measured 0 (a sub-second flood on a machine
        // this busy can end before its first ack): then there is nothing to divide by.
        const withRatio = (f: Figure | undefined): unknown => (f?.baseline?.value === 0 ? { ...f, ratio: 0 } : f);
        const ingest = byName.get('ingest')!;
        expect(withRatio(ingest.figures.find((f) => f.target?.includes('100,000')))).toMatchObject({
          baseline: { name: expect.stringContaining('echo') },
          ratio: expect.any(Number),
        });
        expect(ingest.figures.some((f) => f.baseline?.name.includes('ioredis'))).toBe(true);
        // A sub-second smoke run may see no rule fire (motion is random): the command summary must exist, acks must have samples.
        const latency = byName.get('latency')!.latencies ?? [];
        expect(latency.some((l) => l.name.includes('command'))).toBe(true);
        expect(latency.some((l) => l.name.includes('ack') && l.count > 0)).toBe(true);
        // Forwarding: the hub on the owner and the forwarded one, each with ack samples, and their difference.
        const forwarding = byName.get('forwarding')!;
        expect(forwarding.latencies?.map((l) => l.count > 0)).toEqual([true, true]);
        expect(forwarding.figures.find((f) => f.name.includes('p50, hub on a node that does not own'))).toMatchObject({
          ratio: expect.any(Number),
        });
        for (const name of ['resize', 'failover'] as const) {
          const r = byName.get(name)!;
          expect(
            r.series?.some((s) => s.unit === 'reports/s' && s.points.length > 0),
            name,
          ).toBe(true);
          expect(
            r.series?.some((s) => s.unit === 'event'),
            name,
          ).toBe(true);
          expect(Object.keys(r.integrity ?? {}), name).toEqual(
            expect.arrayContaining(['reportsLost', 'reportsDuplicated', 'commandsLost', 'commandsDuplicated']),
          );
        }
        // Failover: one kill in smoke runs, served-again percentiles over the kills with the 3 s target, per-home
        // samples, and durable ingest with REDIS_WAIT_REPLICAS=1 next to 0 in the same run.
        const failover = byName.get('failover')!;
        expect(failover.figures.find((f) => f.name.includes('p99 over 1 kill'))).toMatchObject({ unit: 'ms', target: '≤ 3,000 ms' });
        expect(withRatio(failover.figures.find((f) => f.name.includes('REDIS_WAIT_REPLICAS=1')))).toMatchObject({
          unit: 'reports/s',
          baseline: { name: expect.stringContaining('REDIS_WAIT_REPLICAS=0') },
          ratio: expect.any(Number),
        });
        expect(failover.latencies?.find((l) => l.name.startsWith('SIGKILL → served again'))?.count).toBeGreaterThan(0);
        expect(failover.series?.filter((s) => s.name.startsWith('SIGKILL '))).toHaveLength(1);

        // The in-process scenarios (one compiled pass checks them too: no second run under tsx).
        for (const [key, name] of [
          ['http', 'http'],
          ['activation', 'activation'],
          ['actor', 'actor-layer'],
          ['timers', 'timers'],
        ] as const)
          expectWellFormed(byName.get(key)!, name, text);
        const http = byName.get('http')!;
        expect(http.figures.find((f) => f.target !== undefined)?.baseline?.name).toMatch(/raw Hono/);
        expect(http.latencies?.map((l) => l.name)).toEqual([
          'node (shadow GET)',
          'node (shadow GET, access log on)',
          'raw Hono',
          'raw node:http',
        ]);
        expect(http.figures.find((f) => f.name === 'HTTP shadow GET throughput, access log on vs off')?.baseline?.name).toBe(
          'node with ACCESS_LOG=false',
        );
        const activation = byName.get('activation')!;
        expect(activation.figures.map((f) => f.name).join('\n')).toMatch(/memory per resident device actor[^]*cold activations from Redis/);
        expect(activation.latencies).toHaveLength(2);
        expect(byName.get('actor')!.figures.some((f) => /minimal mailbox/.test(f.baseline?.name ?? ''))).toBe(true);
        // Smoke timers: 20 homes and 5 warm-up homes, ten rules each; every home's cron firing timed once at its hub.
        const timers = byName.get('timers')!;
        const timerNames = timers.figures.map((f) => f.name).join('\n');
        expect(timerNames).toMatch(/memory per pending reminder/);
        expect(timerNames).toMatch(/per 1,000 reminders/);
        expect(timerNames).toMatch(/restarted → all 250 reminders scheduled/);
        expect(timers.latencies?.[0]).toMatchObject({ count: 20 });
        expect(timers.integrity).toEqual({
          'scheduled firings that reached no hub': 0,
          'firings delivered more than once': 0,
          'hub streams that ended during the run': 0,
        });

        const page = readFileSync(join(out, html!), 'utf8');
        expect(page).toContain('<svg');
        expect(page).not.toMatch(/<script|<link\b|src="http/);
        for (const r of run.results) expect(page).toContain(`id="${r.scenario}"`);
        // The summary table is printed; the bench and every process it started ran the compiled build.
        expect(text).toMatch(/scenario\s+figure\s+value/);
        expect(text).toContain('code: compiled JavaScript (dist/) in every process');
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    SMOKE_MS,
  );

  it('forks its load workers as compiled JavaScript from dist/, never under tsx', () => {
    // A plain node process importing the compiled harness, as dist/bench/run.js does.
    const script = `
      const { forkWorker } = await import(${JSON.stringify(join(DIST_DIR, 'bench', 'harness', 'worker-process.js'))});
      const worker = forkWorker('bench/harness/load-worker.ts', {});
      console.log(JSON.stringify(worker.child.spawnargs));
      await worker.stop(1_000);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const args = JSON.parse(out) as string[];
    expect(args).toContain(join(DIST_DIR, 'bench', 'harness', 'load-worker.js'));
    expect(args.join(' ')).not.toContain('tsx');
  }, 30_000);

  it('rejects bad flags with exit code 2 and a message', async () => {
    const { code, text } = await bench(['--scenario', 'nope']);
    expect(code).toBe(2);
    expect(text).toContain('--scenario nope: unknown');
    expect(text).toContain('usage: npm run bench');
  }, 30_000);
});
