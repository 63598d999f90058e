/**
 * Random sequences of changes, presses and time passing against a home whose reminders are kept
 * as the runtime keeps them: every set fires at most once, and the commands issued are those of
 * a simple model of `for` holds and of each mode.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STORM_CONFIG } from '../../actors/rules/storm-control.ts';
import type { DeviceChanged, Value } from '../../actors/types.ts';
import { HomeSim } from './home-reminder-sim.ts';

const T0 = Date.parse('2024-03-04T10:00:00Z');
const calm = { storm: { ...DEFAULT_STORM_CONFIG, retriggerMax: 100_000, budgetCommands: 100_000 } };
const SEED = 20_241_126;

const changeOf = (deviceId: string, attribute: string, value: Value): DeviceChanged => ({
  type: 'device.changed',
  deviceId,
  deviceType: 'sensor',
  changed: { [attribute]: value },
  attributes: { [attribute]: value },
  depth: 0,
  tsMs: 0,
  filtered: true,
});

function expectEachSetFiredAtMostOnce(h: HomeSim): void {
  for (const s of h.sets) {
    expect(s.fired).toBeLessThanOrEqual(1);
    if (s.cancelled) expect(s.fired).toBe(0);
  }
}

describe('home timers: property', () => {
  it('a `for` fires exactly when its value has held that long, whatever changes come between', () => {
    const HOLD_OPEN = 10_000;
    const HOLD_MODE = 7_000;
    const step = fc.record({
      dt: fc.integer({ min: 0, max: 15_000 }),
      device: fc.constantFrom('door1', 'thermo1'),
      value: fc.constantFrom('open', 'closed', 'ajar'),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const h = new HomeSim(T0, calm);
        const command = (name: string) => [{ type: 'command', device: 'siren1', name, params: {} }];
        h.ok('rules.put', {
          type: 'rules.put',
          rule: {
            id: 'open',
            name: 'Open',
            when: [{ type: 'attribute', device: 'door1', attribute: 'contact', to: 'open', for: '10s' }],
            then: command('beep'),
          },
        });
        h.ok('rules.put', {
          type: 'rules.put',
          rule: {
            id: 'mode',
            name: 'Mode',
            when: [{ type: 'attribute', device: 'thermo1', attribute: 'mode', for: '7s' }],
            then: command('ping'),
          },
        });
        // The model: per device, the value and since when it has held (a re-report is not a change).
        const expected: string[] = [];
        const held = new Map<string, { value: string; since: number }>();
        const close = (device: string, until: number) => {
          const h0 = held.get(device);
          if (h0 === undefined) return;
          if (device === 'door1' && h0.value === 'open' && until >= h0.since + HOLD_OPEN) expected.push(`beep@${h0.since + HOLD_OPEN}`);
          if (device === 'thermo1' && until >= h0.since + HOLD_MODE) expected.push(`ping@${h0.since + HOLD_MODE}`);
        };
        let t = T0;
        for (const s of steps) {
          t += s.dt;
          h.advance(t);
          const old = held.get(s.device);
          const attribute = s.device === 'door1' ? 'contact' : 'mode';
          if (old?.value !== s.value) {
            close(s.device, t);
            held.set(s.device, { value: s.value, since: t });
            h.send(changeOf(s.device, attribute, s.value), t);
          } else if (t < old.since + (s.device === 'door1' ? HOLD_OPEN : HOLD_MODE)) {
            // The same value re-reported while its hold is pending (a device that forwards it as
            // changed, e.g. from before watches): the hold keeps its time.
            h.send(changeOf(s.device, attribute, s.value), t);
          } else {
            // Devices forward only changes: a value reported again unchanged changes nothing.
            h.send({ ...changeOf(s.device, attribute, s.value), changed: {} }, t);
          }
        }
        const end = t + 60_000;
        h.advance(end);
        for (const device of held.keys()) close(device, end);
        expect(h.issued.map((c) => `${c.name}@${c.at}`).sort()).toEqual(expected.sort());
        expectEachSetFiredAtMostOnce(h);
        expect(h.names()).toEqual([]);
        h.expectReplayIdentical(calm);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('runs with a delay follow their mode: single, restart, queued and parallel', () => {
    const DELAY = 5_000;
    const BOUND = 3;
    fc.assert(
      fc.property(
        fc.constantFrom('single', 'restart', 'queued', 'parallel'),
        fc.array(fc.integer({ min: 0, max: 8_000 }), { maxLength: 30 }),
        (mode, gaps) => {
          const h = new HomeSim(T0, { ...calm, maxQueuedRuns: BOUND, maxParallelRuns: BOUND });
          h.ok('rules.put', {
            type: 'rules.put',
            rule: {
              id: 'hall',
              name: 'Hall',
              mode,
              when: [{ type: 'event', device: 'button1', event: 'single' }],
              then: [
                { type: 'command', device: 'light1', name: 'on', params: {} },
                { type: 'delay', for: '5s' },
                { type: 'command', device: 'light1', name: 'off', params: {} },
              ],
            },
          });
          // The model: waiting runs (their resume times), the queue, and the commands in order.
          const expected: string[] = [];
          let runs: number[] = [];
          const queue: number[] = [];
          const start = (at: number) => {
            expected.push(`on@${at}`);
            runs.push(at + DELAY);
          };
          const until = (t: number) => {
            for (;;) {
              const due = runs.filter((r) => r <= t).sort((a, b) => a - b)[0];
              if (due === undefined) return;
              runs.splice(runs.indexOf(due), 1);
              expected.push(`off@${due}`);
              if (mode === 'queued' && runs.length === 0 && queue.length > 0) {
                queue.shift();
                start(due);
              }
            }
          };
          let t = T0;
          for (const gap of gaps) {
            t += gap;
            h.advance(t);
            until(t);
            h.send({ ...changeOf('button1', 'x', 1), changed: {}, attributes: {}, event: 'single' }, t);
            if (mode === 'single') {
              if (runs.length === 0) start(t);
            } else if (mode === 'restart') {
              runs = [];
              start(t);
            } else if (mode === 'queued') {
              if (runs.length === 0 && queue.length === 0) start(t);
              else if (queue.length < BOUND) queue.push(t);
            } else if (runs.length < BOUND) {
              start(t);
            }
          }
          h.advance(t + 10 * 60_000);
          until(t + 10 * 60_000);
          expect(h.issued.map((c) => `${c.name}@${c.at}`)).toEqual(expected);
          expectEachSetFiredAtMostOnce(h);
          expect(h.names()).toEqual([]);
          expect(h.state.runQueues).toBeUndefined();
          h.expectReplayIdentical({ ...calm, maxQueuedRuns: BOUND, maxParallelRuns: BOUND });
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });
});
