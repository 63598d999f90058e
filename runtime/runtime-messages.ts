/** The runtime's own messages to actors: reminders come due, outbox entries delivered, and the outbox envelope. */

/** The reminder that holds a behaviour's `nextWakeAt` (the wake-up is as durable as any reminder). */
export const WAKE_REMINDER = '~wake';

/** Outbox entries are reminders named `~out.<seq>.<k>`: effect `k` of the sender's step `seq`. */
export const OUTBOX_PREFIX = '~out.';

/** The name of outbox entry `k` of a sender's step `seq`. */
export const outboxName = (seq: number, k: number): string => `${OUTBOX_PREFIX}${seq}.${k}`;

/** The step seq and index of an outbox entry's name, or undefined when it is not one. */
export function parseOutboxName(name: string): { seq: number; k: number } | undefined {
  const m = name.startsWith(OUTBOX_PREFIX) ? /^(\d{1,15})\.(\d{1,6})$/.exec(name.slice(OUTBOX_PREFIX.length)) : null;
  return m ? { seq: Number(m[1]), k: Number(m[2]) } : undefined;
}

/** The key a receiver knows an outbox entry by: `<sender id>#<seq>.<k>`. */
export const outboxKey = (sender: string, name: string): string => `${sender}#${name.slice(OUTBOX_PREFIX.length)}`;

/** An outbox key `<sender id>#<seq>.<k>` split, or undefined when it is not one. */
export function parseOutboxKey(key: string): { sender: string; seq: number; k: number } | undefined {
  const hash = key.lastIndexOf('#');
  if (hash <= 0) return undefined;
  const entry = parseOutboxName(`${OUTBOX_PREFIX}${key.slice(hash + 1)}`);
  return entry ? { sender: key.slice(0, hash), ...entry } : undefined;
}

/** The `type` of a message that crossed from another actor's outbox (see `OutboxMessage`). */
export const OUTBOX_TYPE = '~outbox';

/**
 * A message from another actor's outbox: `msg` is what the sender's step sent, `from` its outbox
 * key (`<sender id>#<seq>.<k>`), which the receiver remembers to drop a re-delivery. Plain JSON:
 * it may cross to another node.
 */
export interface OutboxMessage {
  readonly type: typeof OUTBOX_TYPE;
  readonly from: string;
  readonly msg: unknown;
}

/** True when `msg` has the outbox envelope's shape (its inner `msg` is still the reducer's to check). */
export function isOutboxMessage(msg: unknown): msg is OutboxMessage {
  return (
    typeof msg === 'object' &&
    msg !== null &&
    (msg as { type?: unknown }).type === OUTBOX_TYPE &&
    typeof (msg as { from?: unknown }).from === 'string' &&
    (msg as { from: string }).from.length > 0
  );
}

/** A reminder of the receiving actor came due at `at` (only ever created by this node's scheduler). */
export class ReminderDue {
  constructor(
    readonly name: string,
    readonly at: number,
  ) {}
}

/** The outbox entry `name` of the receiving actor reached its target: the actor deletes it. */
export class OutboxDelivered {
  constructor(readonly name: string) {}
}
