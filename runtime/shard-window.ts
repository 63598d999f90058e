/** One durable window of a shard: the steps of one or more turns, written by one store call. */
import type { ActorCell, WindowHold } from './actor-cell.ts';
import type { ActorWrite, JournalEntry, LogAppend, Snapshot } from './persistence-port.ts';
import type { Result } from './result.ts';
import { endSpan, type Span, type TraceCarrier } from './tracing.ts';

/** What one actor put into the window. */
interface CellWrite {
  readonly events: JournalEntry[];
  snapshot: Snapshot | undefined;
}

/**
 * The steps a shard handled since its last window went out, and what waits for them: replies
 * (hub acks among them) and effects that leave the shard (non-message effects: the messages of
 * its steps to other shards' actors are in the senders' outboxes, written with the window). Nothing here is released before the store has the whole window, so a crash never
 * keeps a command whose report, or an ack whose rule step, was lost. Replies and their values
 * are kept in parallel arrays: no closure per message.
 */
export class ShardWindow implements WindowHold {
  /** Every actor whose state depends on this window: those that wrote and those that read what they wrote. */
  readonly cells = new Map<ActorCell, CellWrite>();
  private readonly replyTo: ((result: Result<unknown>) => void)[] = [];
  private readonly replyValues: unknown[] = [];
  private readonly effectFrom: string[] = [];
  private readonly effectLists: (readonly unknown[])[] = [];
  /** The trace of each held effect list, by index (only while tracing is on). */
  private effectTraces: (TraceCarrier | undefined)[] | undefined;
  /** Spans of traced steps that depend on this window: they end when it settles. */
  private spans: Span[] | undefined;
  /** Log entries of its held effects (apps' event history), written with the window. */
  private logAppends: LogAppend[] | undefined;
  private hasWrites = false;
  /** Messages its steps sent to actors of the shard that are not handled yet: it is not sent before they are. */
  caused = 0;
  /** Set when a message its steps sent could not be handled: the window fails rather than be written without it. */
  poison: Error | undefined;

  /** @param no this window's number in its shard, from 1: windows are written in this order. */
  constructor(readonly no: number) {}

  /** True when nothing is to be written. */
  get empty(): boolean {
    return !this.hasWrites;
  }

  get replies(): number {
    return this.replyTo.length;
  }

  add(cell: ActorCell, entry: JournalEntry | undefined, snapshot: Snapshot | undefined): void {
    const w = this.writeOf(cell);
    if (entry) w.events.push(entry);
    if (snapshot) w.snapshot = snapshot;
    if (entry || snapshot) this.hasWrites = true;
  }

  /** Records that `cell`'s state now depends on this window (it handled a message a step here sent). */
  depend(cell: ActorCell): void {
    this.writeOf(cell);
  }

  reply(to: (result: Result<unknown>) => void, value: unknown): void {
    this.replyTo.push(to);
    this.replyValues.push(value);
  }

  /** Effects of a step that leave the shard, released when the window is durable; `trace`: the step's trace, if traced. */
  hold(from: string, effects: readonly unknown[], trace?: TraceCarrier): void {
    if (trace !== undefined) (this.effectTraces ??= [])[this.effectFrom.length] = trace;
    this.effectFrom.push(from);
    this.effectLists.push(effects);
  }

  /** Log entries of a step's effects: written by the same store call as the window (a window with only these is still written). */
  append(entries: readonly LogAppend[]): void {
    if (entries.length === 0) return;
    (this.logAppends ??= []).push(...entries);
    this.hasWrites = true;
  }

  /** The log entries to write with the window, in step order (undefined: none). */
  appends(): readonly LogAppend[] | undefined {
    return this.logAppends;
  }

  /** The span of a traced step whose outcome this window decides: it ends when the window settles. */
  traced(span: Span): void {
    (this.spans ??= []).push(span);
  }

  /** The store's view: one write per actor that journaled or snapshotted something. */
  actorWrites(): ActorWrite[] {
    const out: ActorWrite[] = [];
    for (const [cell, w] of this.cells) {
      if (w.events.length === 0 && !w.snapshot) continue;
      out.push({ actorId: cell.id, batch: w.snapshot ? { events: w.events, snapshot: w.snapshot } : { events: w.events } });
    }
    return out;
  }

  /**
   * Adds a reminder change to `cell`'s journal entry `seq` of this (unsent) window, and to its
   * snapshot here if that covers the entry. @returns false when the entry is not in this window.
   */
  amend(cell: ActorCell, seq: number, op: readonly ['+', string, number, unknown]): boolean {
    const w = this.cells.get(cell);
    const i = w ? w.events.findIndex((e) => e.seq === seq) : -1;
    if (!w || i < 0) return false;
    const entry = w.events[i]!;
    w.events[i] = { ...entry, rem: [...(entry.rem ?? []), op] };
    this.amendSnapshot(cell, seq, op);
    return true;
  }

  /** Adds a pending reminder to `cell`'s snapshot in this window if that snapshot covers journal seq `seq`. */
  amendSnapshot(cell: ActorCell, seq: number, op: readonly ['+', string, number, unknown]): void {
    const w = this.cells.get(cell);
    if (w?.snapshot && w.snapshot.seq >= seq) w.snapshot = { ...w.snapshot, rem: [...(w.snapshot.rem ?? []), [op[1], op[2], op[3]]] };
  }

  /** The highest journal seq of `cell` this window writes (0: none). */
  lastSeqOf(cell: ActorCell): number {
    const events = this.cells.get(cell)?.events;
    return events && events.length > 0 ? events[events.length - 1]!.seq : 0;
  }

  /** Calls `f` for every actor whose entries here change its reminders (once the window is durable). */
  reminderChanges(f: (actorId: string, events: readonly JournalEntry[]) => void): void {
    for (const [cell, w] of this.cells) if (w.events.some((e) => e.rem !== undefined)) f(cell.id, w.events);
  }

  /** The window is durable: effects go out, then the replies (the hub's command before its ack). */
  release(runEffects: (from: string, effects: readonly unknown[], trace: TraceCarrier | undefined) => void): void {
    if (this.spans) for (const span of this.spans) endSpan(span);
    for (let i = 0; i < this.effectFrom.length; i++) runEffects(this.effectFrom[i]!, this.effectLists[i]!, this.effectTraces?.[i]);
    for (let i = 0; i < this.replyTo.length; i++) this.replyTo[i]!({ ok: true, value: this.replyValues[i] });
  }

  /** The window was not written: every reply fails, the effects are dropped with their steps. */
  fail(error: Result<never>): void {
    if (this.spans) for (const span of this.spans) endSpan(span, error.ok ? 'window failed' : error.error.message);
    for (const to of this.replyTo) to(error);
  }

  private writeOf(cell: ActorCell): CellWrite {
    let w = this.cells.get(cell);
    if (!w) this.cells.set(cell, (w = { events: [], snapshot: undefined }));
    return w;
  }
}
