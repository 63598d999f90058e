/** A step's view of its actor's pending reminders: what the runtime said was pending, with this step's own sets and cancels applied. */
import type { PendingReminder, ReminderOp } from '../../runtime/behavior.ts';

const NONE: ReadonlyMap<string, PendingReminder> = new Map();

/**
 * Pending reminders as of the step's message (`ctx.reminders`), plus the ops the step has issued
 * so far, in order. A reducer asks it, not `ctx.reminders`, so that two firings in one step (a
 * batch of changes) see each other's timers. Deterministic: it depends only on what it was given.
 */
export class ReminderBook {
  private pending: ReadonlyMap<string, PendingReminder>;
  private copied = false;
  private readonly issued: ReminderOp[] = [];

  /** `fired`: the name of the reminder the step handles (deleted before the step's own ops apply). */
  constructor(pending: ReadonlyMap<string, PendingReminder> | undefined, fired?: string) {
    this.pending = pending ?? NONE;
    if (fired !== undefined && this.pending.has(fired)) this.writable().delete(fired);
  }

  private writable(): Map<string, PendingReminder> {
    if (!this.copied) {
      this.pending = new Map(this.pending);
      this.copied = true;
    }
    return this.pending as Map<string, PendingReminder>;
  }

  get(name: string): PendingReminder | undefined {
    return this.pending.get(name);
  }

  /** Names pending now that start with `prefix`, sorted (deterministic order for the ops they cause). */
  namesStartingWith(prefix: string): string[] {
    const out: string[] = [];
    for (const name of this.pending.keys()) if (name.startsWith(prefix)) out.push(name);
    return out.sort();
  }

  /** Sets (or replaces) `name` due at `at` (epoch ms). */
  set(name: string, at: number, payload?: unknown): void {
    this.writable().set(name, { at, payload });
    this.issued.push(payload === undefined ? { op: 'set', name, at } : { op: 'set', name, at, payload });
  }

  /** Cancels `name` if it is pending; a no-op (and no op issued) otherwise. */
  cancel(name: string): void {
    if (!this.pending.has(name)) return;
    this.writable().delete(name);
    this.issued.push({ op: 'cancel', name });
  }

  /** The ops issued so far, in order (for `Step.reminders`). */
  ops(): readonly ReminderOp[] {
    return this.issued;
  }
}
