/** When each pending reminder of this node's shards is due: one timer for all of them, kept lean per reminder. */

/** A reminder in the schedule. `member` is `${name}@${actorId}` (names never contain `@`). */
interface Due {
  readonly at: number;
  readonly shard: number;
  readonly member: string;
}

/** Called for each reminder that came due: `at` is the due time it was scheduled for. */
export type OnDue = (shard: number, actorId: string, name: string, at: number) => void;

/** The index member of a reminder: `${name}@${actorId}`. */
export const reminderMember = (actorId: string, name: string): string => `${name}@${actorId}`;

/** Splits an index member at its first `@` (names never contain one; actor ids may). */
export function parseReminderMember(member: string): { actorId: string; name: string } | undefined {
  const at = member.indexOf('@');
  return at <= 0 || at === member.length - 1 ? undefined : { name: member.slice(0, at), actorId: member.slice(at + 1) };
}

const MAX_TIMER_MS = 2_147_483_647;

/**
 * The due times of every pending reminder of the shards this node serves, in a binary min-heap
 * with one timer armed for the earliest. It only says *when* to deliver: whether a reminder is
 * still pending is the actor's own (journaled) business, checked when the delivery reaches it,
 * so an entry that is stale here (cancelled or moved meanwhile) is harmless. Kept lean, since a
 * node may hold hundreds of thousands: one small object per reminder, shared by the heap and the
 * per-shard index; a cancelled one stays in the heap until popped (the heap is rebuilt when stale
 * entries outnumber live ones).
 */
export class ReminderScheduler {
  private readonly byShard = new Map<number, Map<string, Due>>();
  private heap: Due[] = [];
  private live = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly onDue: OnDue,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Pending reminders scheduled here. */
  get size(): number {
    return this.live;
  }

  /** Schedules (or moves) one reminder. */
  set(shard: number, member: string, at: number): void {
    let index = this.byShard.get(shard);
    if (!index) this.byShard.set(shard, (index = new Map<string, Due>()));
    const old = index.get(member);
    if (old?.at === at) return;
    if (!old) this.live++;
    const due: Due = { at, shard, member };
    index.set(member, due);
    this.push(due);
    this.arm();
  }

  /** Schedules a reminder unless it is already scheduled (at any time). */
  ensure(shard: number, member: string, at: number): void {
    if (!this.byShard.get(shard)?.has(member)) this.set(shard, member, at);
  }

  delete(shard: number, member: string): void {
    const index = this.byShard.get(shard);
    if (index?.delete(member)) {
      this.live--;
      if (index.size === 0) this.byShard.delete(shard);
    }
  }

  /** Forgets every reminder of a shard (it is no longer served here; its next owner loads them). */
  dropShard(shard: number): void {
    const index = this.byShard.get(shard);
    if (!index) return;
    this.live -= index.size;
    this.byShard.delete(shard);
    this.compactIfStale();
  }

  /** Stops firing for good (the host is closing). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Delivers everything due by now, then arms the timer for the next. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const now = this.clock();
    // Bounded per pass so a takeover's backlog of late reminders does not hold the event loop.
    for (let n = 0; n < 10_000 && this.heap.length > 0 && this.heap[0]!.at <= now; n++) {
      const due = this.pop();
      const index = this.byShard.get(due.shard);
      if (index?.get(due.member) !== due) continue; // cancelled, moved or dropped
      index.delete(due.member);
      if (index.size === 0) this.byShard.delete(due.shard);
      this.live--;
      const parsed = parseReminderMember(due.member);
      if (parsed) this.onDue(due.shard, parsed.actorId, parsed.name, due.at);
    }
    this.compactIfStale();
    this.arm();
  }

  private arm(): void {
    if (this.stopped || this.heap.length === 0) return;
    const next = this.heap[0]!.at;
    if (this.timer && next >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(next - this.clock(), MAX_TIMER_MS)));
    this.timer.unref();
  }

  private compactIfStale(): void {
    if (this.heap.length <= 2 * this.live + 1_024) return;
    const kept: Due[] = [];
    for (const index of this.byShard.values()) for (const due of index.values()) kept.push(due);
    kept.sort((a, b) => a.at - b.at); // a sorted array is a valid heap
    this.heap = kept;
  }

  private push(due: Due): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(due);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= due.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = due;
  }

  private pop(): Due {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const c = r < heap.length && heap[r]!.at < heap[l]!.at ? r : l;
      if (heap[c]!.at >= last.at) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
    return top;
  }
}
