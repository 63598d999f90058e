/**
 * A home actor driven as the runtime drives it, without the runtime: its reminders are kept as the
 * host keeps them (a step's ops applied in order; a fired reminder deleted before the ops of the
 * step that handles it; `ctx.reminders` as of each message), and due ones are delivered in time order.
 */
import { expect } from 'vitest';
import { createHomeBehavior, type HomeConfig } from '../../actors/home.ts';
import type { HomeMsg, HomeReplies, HomeState } from '../../actors/home-messages.ts';
import type { DecisionEntry } from '../../actors/rules/decision-log.ts';
import type { DomainEffect, IssueCommand } from '../../actors/types.ts';
import { REMINDER_FIRED, REMINDER_NAME, type PendingReminder, type ReminderFired, type Step } from '../../runtime/behavior.ts';

type HomeStep = Step<HomeState, unknown, DomainEffect>;

/** A command a rule issued, with the time the step that issued it ran. */
export interface Issued {
  readonly at: number;
  readonly device: string;
  readonly name: string;
  readonly commandId: string;
}

interface Held extends PendingReminder {
  /** Which set this is (counts every `set`): a replaced or cancelled set never fires. */
  readonly setNo: number;
}

export class HomeSim {
  readonly behavior: ReturnType<typeof createHomeBehavior>;
  state: HomeState;
  now: number;
  readonly pending = new Map<string, Held>();
  readonly issued: Issued[] = [];
  readonly effects: DomainEffect[] = [];
  /** Every set, by setNo: its name, and how often it fired (must stay 0 or 1). */
  readonly sets: { name: string; fired: number; cancelled: boolean }[] = [];
  private setCount = 0;
  /** Every message with the context it was handled in, and the reminder ops of its step (what a journal keeps). */
  readonly journal: {
    msg: HomeMsg | ReminderFired;
    now: number;
    reminders: ReadonlyMap<string, PendingReminder>;
    ops: unknown;
    /** Whether the step asked to be journaled (recovery replays only those). */
    journaled: boolean;
  }[] = [];

  constructor(start: number, config: Partial<HomeConfig> = {}, timezone = 'UTC') {
    this.behavior = createHomeBehavior(config);
    this.now = start;
    this.state = this.behavior.initial('home:h1');
    this.ok('home.upsert', { type: 'home.upsert', name: 'Flat', timezone });
  }

  private reminders(): ReadonlyMap<string, PendingReminder> {
    return new Map([...this.pending].map(([name, r]) => [name, { at: r.at, payload: r.payload }]));
  }

  private apply(step: HomeStep): HomeStep {
    this.state = step.state;
    for (const op of step.reminders ?? []) {
      expect(op.name).toMatch(REMINDER_NAME);
      const old = this.pending.get(op.name);
      if (old !== undefined) this.sets[old.setNo]!.cancelled = true;
      if (op.op === 'set') {
        // Plain JSON, as the journal keeps it.
        const payload = op.payload === undefined ? undefined : JSON.parse(JSON.stringify(op.payload));
        this.pending.set(op.name, { at: op.at, payload, setNo: this.setCount++ });
        this.sets.push({ name: op.name, fired: 0, cancelled: false });
      } else {
        this.pending.delete(op.name);
      }
    }
    for (const e of step.effects ?? []) {
      this.effects.push(e);
      if (e.type === 'tell' && (e.msg as { type?: string }).type === 'command.issue') {
        const msg = e.msg as IssueCommand;
        this.issued.push({ at: this.now, device: e.to, name: msg.name, commandId: msg.commandId });
      }
    }
    return step;
  }

  /** Handles `msg` at the current time (or `at`, which becomes the current time). */
  send(msg: HomeMsg, at = this.now): HomeStep {
    this.now = at;
    return this.handle(msg, this.reminders());
  }

  private handle(msg: HomeMsg | ReminderFired, reminders: ReadonlyMap<string, PendingReminder>): HomeStep {
    const step = this.behavior.receive(this.state, msg, { id: 'home:h1', now: this.now, replaying: false, reminders });
    this.journal.push({ msg, now: this.now, reminders, ops: step.reminders, journaled: step.journal === true });
    return this.apply(step);
  }

  /**
   * Replays every message (or only those whose step was journaled, as recovery does) through a
   * fresh behaviour (`replaying`, the same `now` and reminders): returns the state and the reminder
   * ops of each step.
   */
  replay(config: Partial<HomeConfig> = {}, onlyJournaled = false): { state: HomeState; ops: unknown[] } {
    const b = createHomeBehavior(config);
    let state = b.initial('home:h1');
    const ops: unknown[] = [];
    for (const e of this.journal) {
      if (onlyJournaled && !e.journaled) continue;
      const step = b.receive(state, e.msg, { id: 'home:h1', now: e.now, replaying: true, reminders: e.reminders });
      state = step.state;
      ops.push(step.reminders);
    }
    return { state, ops };
  }

  ok<K extends keyof HomeReplies>(_type: K, msg: HomeMsg, at = this.now): HomeReplies[K] {
    const reply = this.send(msg, at).reply as { ok: boolean; value?: unknown };
    expect(reply, JSON.stringify(reply)).toMatchObject({ ok: true });
    return reply.value as HomeReplies[K];
  }

  /** Delivers pending reminder `name` at `at` (default its due time), as the runtime does. */
  fire(name: string, at?: number): HomeStep {
    const r = this.pending.get(name);
    if (r === undefined) throw new Error(`no pending reminder ${name}`);
    const now = at ?? r.at;
    this.now = now;
    const before = this.reminders();
    this.pending.delete(name);
    this.sets[r.setNo]!.fired++;
    const msg: ReminderFired = { type: REMINDER_FIRED, name, payload: r.payload, dueAt: r.at, lateMs: Math.max(0, now - r.at) };
    return this.handle(msg, before);
  }

  /** Fires every reminder due up to `to` in due order (then name), each on time, then sets the clock to `to`. */
  advance(to: number): void {
    for (;;) {
      const next = [...this.pending].filter(([, r]) => r.at <= to).sort(([a, x], [b, y]) => x.at - y.at || (a < b ? -1 : 1))[0];
      if (next === undefined) break;
      this.fire(next[0], Math.max(this.now, next[1].at));
    }
    this.now = Math.max(this.now, to);
  }

  /**
   * Recovery replays the journaled steps to the same state, setting and cancelling the same
   * reminders: a step not journaled changed nothing.
   */
  expectReplayIdentical(config: Partial<HomeConfig> = {}): void {
    const replayed = this.replay(config, true);
    expect(JSON.parse(JSON.stringify(replayed.state))).toEqual(JSON.parse(JSON.stringify(this.state)));
    expect(replayed.ops).toEqual(this.journal.filter((e) => e.journaled).map((e) => e.ops));
  }

  /** The decision log, newest last. */
  decisions(): readonly DecisionEntry[] {
    return this.state.decisions.entries;
  }

  /** Names of pending reminders, sorted. */
  names(): string[] {
    return [...this.pending.keys()].sort();
  }
}
