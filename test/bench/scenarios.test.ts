import { describe, expect, it } from 'vitest';
import type { ScenarioContext, ScenarioResult } from '../../bench/harness/scenario.ts';
import { activationScenario } from '../../bench/scenarios/activation.ts';
import { actorLayerScenario } from '../../bench/scenarios/actor-layer.ts';
import { httpScenario } from '../../bench/scenarios/http.ts';
import { createTimersScenario } from '../../bench/scenarios/timers.ts';

/** A smoke context: tiny sizes, no progress bars, log lines kept for the failure message. */
function smokeContext(lines: string[]): ScenarioContext {
  return {
    duration: 1,
    hubs: 2,
    rate: 1_000,
    nodes: 1,
    smoke: true,
    progress: () => ({ update: () => {}, stop: () => {} }),
    log: (line) => lines.push(line),
  };
}

/** The contract every scenario keeps, whatever the figures are (no timing is checked in smoke). */
function expectWellFormed(result: ScenarioResult, name: string, lines: string[]): void {
  const why = lines.join('\n');
  expect(result.scenario, why).toBe(name);
  expect(result.figures.length, why).toBeGreaterThan(0);
  for (const f of result.figures) {
    expect(Number.isFinite(f.value), `${f.name}: value ${f.value}\n${why}`).toBe(true);
    // Rates and latencies are positive; a memory delta of a tiny smoke run is only required to be finite.
    if (f.unit !== 'bytes') expect(f.value, `${f.name}\n${why}`).toBeGreaterThan(0);
    expect(f.baseline, `${f.name} has no baseline`).toBeDefined();
    expect(f.ratio, `${f.name} has no ratio (baseline ${f.baseline!.name} = ${f.baseline!.value})`).toBeDefined();
    const expected = f.value / f.baseline!.value;
    expect(Math.abs(f.ratio! - expected) <= 0.02 * Math.abs(expected), `${f.name}: ratio ${f.ratio} vs ${expected}`).toBe(true);
    if (f.target !== undefined) expect(typeof f.met, `${f.name}: target without met`).toBe('boolean');
  }
  for (const l of result.latencies ?? []) {
    expect(l.count, l.name).toBeGreaterThan(0);
    expect(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${l.name}: ${JSON.stringify(l)}`).toBe(true);
  }
  for (const [k, v] of Object.entries(result.integrity ?? {})) expect(v, `${k}\n${why}`).toBe(0);
  expect(result.notes?.length ?? 0).toBeGreaterThan(0);
}

describe('benchmark scenarios (smoke: each runs end to end and reports figures with baselines; no timing is checked)', () => {
  it('http: shadow GET through a node (access log off, then on) next to raw Hono and raw node:http', async () => {
    const lines: string[] = [];
    const result = await httpScenario.run(smokeContext(lines));
    expectWellFormed(result, 'http', lines);
    expect(result.figures.find((f) => f.target !== undefined)?.baseline?.name).toMatch(/raw Hono/);
    expect(result.latencies?.map((l) => l.name)).toEqual([
      'node (shadow GET)',
      'node (shadow GET, access log on)',
      'raw Hono',
      'raw node:http',
    ]);
    const accessLog = result.figures.find((f) => f.name === 'HTTP shadow GET throughput, access log on vs off');
    expect(accessLog?.baseline?.name).toBe('node with ACCESS_LOG=false');
  }, 60_000);

  it('activation: memory per resident device actor and cold activations from Redis', async () => {
    const lines: string[] = [];
    const result = await activationScenario.run(smokeContext(lines));
    expectWellFormed(result, 'activation', lines);
    const names = result.figures.map((f) => f.name).join('\n');
    expect(names).toMatch(/memory per resident device actor/);
    expect(names).toMatch(/cold activations from Redis/);
    expect(result.latencies).toHaveLength(2);
  }, 60_000);

  it('actor-layer: ActorHost dispatch and memory next to a minimal mailbox', async () => {
    const lines: string[] = [];
    const result = await actorLayerScenario.run(smokeContext(lines));
    expectWellFormed(result, 'actor-layer', lines);
    expect(result.figures.some((f) => /minimal mailbox/.test(f.baseline?.name ?? ''))).toBe(true);
  }, 60_000);

  it('timers: memory per pending reminder, loading reminders at takeover, and every cron firing timed once at its hub', async () => {
    const lines: string[] = [];
    // 8 homes firing every 2 s: one recorded period, so each home's firing is either timed once or counted missing.
    const result = await createTimersScenario({ homes: 8, periodS: 2, passivateMs: 500 }).run(smokeContext(lines));
    expectWellFormed(result, 'timers', lines);
    const names = result.figures.map((f) => f.name).join('\n');
    expect(names).toMatch(/memory per pending reminder/);
    expect(names).toMatch(/per 1,000 reminders/);
    expect(names).toMatch(/restarted → all 130 reminders scheduled/); // 8 homes and 5 warm-up homes, 10 rules each
    expect(result.latencies?.[0]).toMatchObject({ count: 8 });
    expect(result.integrity).toEqual({
      'scheduled firings that reached no hub': 0,
      'firings delivered more than once': 0,
      'hub streams that ended during the run': 0,
    });
  }, 120_000);
});
