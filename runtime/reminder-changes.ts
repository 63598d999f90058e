/** A window's net changes to its shard's reminder index, and how an indexed reminder is named there. */
import type { IndexedReminder, JournalEntry } from './persistence-port.ts';

/** The index member of an actor's reminder: `${name}@${actorId}` (names never contain `@`). */
export function reminderMember(actorId: string, name: string): string {
  return `${name}@${actorId}`;
}

/**
 * The actor and name of an index member, split at the first `@` (an actor id may contain `@`, a
 * name may not), or undefined when the member has no `@` or an empty side (not written by a store).
 */
export function parseReminderMember(member: string): { actorId: string; name: string } | undefined {
  const at = member.indexOf('@');
  if (at <= 0 || at === member.length - 1) return undefined;
  return { name: member.slice(0, at), actorId: member.slice(at + 1) };
}

/**
 * The net effect of a window's reminder ops on the index, gathered actor by actor in window order:
 * per member the last op wins (a set then a cancel deletes; a cancel then a set sets). `sets` and
 * `deletes` are disjoint, so the store may apply them in any order.
 */
export class ReminderChanges {
  private readonly net = new Map<string, number | null>();

  /**
   * Adds one actor's journal entries' `rem` ops, in order. Throws a TypeError naming the op when a
   * name is empty or holds `@`, or a due time is not a finite number (epoch ms): nothing of this
   * actor's ops is added then.
   */
  add(actorId: string, events: readonly JournalEntry[]): void {
    const own: [string, number | null][] = [];
    for (const e of events) {
      const ops = e.rem ?? [];
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        const name = op[1];
        if (typeof name !== 'string' || name.length === 0 || name.includes('@')) {
          throw new TypeError(`reminder op ${i} of entry ${e.seq}: name must be a non-empty string without '@'`);
        }
        if (op[0] === '+') {
          if (typeof op[2] !== 'number' || !Number.isFinite(op[2])) {
            throw new TypeError(`reminder op ${i} of entry ${e.seq}: due time of '${name}' must be a finite number (epoch ms)`);
          }
          own.push([reminderMember(actorId, name), op[2]]);
        } else if (op[0] === '-') {
          own.push([reminderMember(actorId, name), null]);
        } else {
          throw new TypeError(`reminder op ${i} of entry ${e.seq}: kind must be '+' or '-'`);
        }
      }
    }
    for (const [member, at] of own) this.net.set(member, at);
  }

  /** Members to set, with their due times (epoch ms). */
  get sets(): [member: string, at: number][] {
    const out: [string, number][] = [];
    for (const [member, at] of this.net) if (at !== null) out.push([member, at]);
    return out;
  }

  /** Members to delete. */
  get deletes(): string[] {
    const out: string[] = [];
    for (const [member, at] of this.net) if (at === null) out.push(member);
    return out;
  }

  get size(): number {
    return this.net.size;
  }
}

/**
 * Turns index entries (member, due time) into pending reminders sorted by due time. Entries whose
 * member cannot be parsed are counted in `skipped`, not returned.
 */
export function indexedReminders(entries: Iterable<readonly [string, number]>): { reminders: IndexedReminder[]; skipped: number } {
  const reminders: IndexedReminder[] = [];
  let skipped = 0;
  for (const [member, at] of entries) {
    const parsed = parseReminderMember(member);
    if (!parsed || !Number.isFinite(at)) skipped++;
    else reminders.push({ actorId: parsed.actorId, name: parsed.name, at });
  }
  reminders.sort((a, b) => a.at - b.at);
  return { reminders, skipped };
}
