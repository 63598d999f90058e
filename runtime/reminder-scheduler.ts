/** When each pending reminder of this node's shards is due: one timer for all of them, kept lean per reminder. */

import { parseReminderMember } from './reminder-changes.ts';

/** Called for each reminder that came due: `at` is the due time it was scheduled for. */
export type OnDue = (shard: number, actorId: string, name: string, at: number) => void;

const MAX_TIMER_MS = 2_147_483_647;
const FIRE_BATCH = 10_000;

/**
 * The due times of every pending reminder of the shards this node serves, in an indexed binary
 * min-heap with one timer armed for the earliest. It only says *when* to deliver: whether a
 * reminder is still pending is the actor's own (journaled) business, checked when the delivery
 * reaches it, so an entry that is stale here is harmless. Kept compact, since a node may hold
 * hundreds of thousands (the benchmark: 100,000): a reminder is a slot — its due time in a
 * Float64Array, its heap position and shard in Int32Arrays, its member string in an array — plus
 * one entry in its shard's `member → slot` map. No object per reminder.
 */
export class ReminderScheduler {
  private readonly byShard = new Map<number, Map<string, number>>();
  private ats = new Float64Array(1_024);
  /** Heap position of each slot (−1: free). */
  private pos = new Int32Array(1_024).fill(-1);
  private shards = new Int32Array(1_024);
  private members: (string | undefined)[] = [];
  /** Slots in heap order: heap[0] is the earliest. */
  private heap = new Int32Array(1_024);
  private n = 0;
  private readonly free: number[] = [];
  private nextSlot = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly onDue: OnDue,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Pending reminders scheduled here. */
  get size(): number {
    return this.n;
  }

  /** Schedules (or moves) one reminder. */
  set(shard: number, member: string, at: number): void {
    let index = this.byShard.get(shard);
    if (!index) this.byShard.set(shard, (index = new Map<string, number>()));
    const slot = index.get(member);
    if (slot !== undefined) {
      if (this.ats[slot] === at) return;
      const before = this.ats[slot]!;
      this.ats[slot] = at;
      if (at < before) this.up(this.pos[slot]!);
      else this.down(this.pos[slot]!);
    } else {
      const fresh = this.alloc();
      // A member made by concatenation (or sliced from a reply) keeps its parts alive: a flat copy
      // halves what a pending reminder costs (measured: 135 → 87 bytes per reminder).
      const flat = Buffer.from(member).toString();
      this.ats[fresh] = at;
      this.shards[fresh] = shard;
      this.members[fresh] = flat;
      index.set(flat, fresh);
      this.heap[this.n] = fresh;
      this.pos[fresh] = this.n;
      this.n++;
      this.up(this.n - 1);
    }
    this.arm();
  }

  /** Schedules a reminder unless it is already scheduled (at any time). */
  ensure(shard: number, member: string, at: number): void {
    if (!this.byShard.get(shard)?.has(member)) this.set(shard, member, at);
  }

  delete(shard: number, member: string): void {
    const index = this.byShard.get(shard);
    const slot = index?.get(member);
    if (slot === undefined) return;
    index!.delete(member);
    if (index!.size === 0) this.byShard.delete(shard);
    this.remove(slot);
  }

  /** Forgets every reminder of a shard (it is no longer served here; its next owner loads them). */
  dropShard(shard: number): void {
    const index = this.byShard.get(shard);
    if (!index) return;
    this.byShard.delete(shard);
    for (const slot of index.values()) this.remove(slot);
  }

  /** Stops firing for good (the host is closing). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Delivers everything due by now (bounded per pass), then arms the timer for the next. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const now = this.clock();
    for (let k = 0; k < FIRE_BATCH && this.n > 0 && this.ats[this.heap[0]!]! <= now; k++) {
      const slot = this.heap[0]!;
      const member = this.members[slot]!;
      const shard = this.shards[slot]!;
      const at = this.ats[slot]!;
      const index = this.byShard.get(shard);
      index?.delete(member);
      if (index?.size === 0) this.byShard.delete(shard);
      this.remove(slot);
      const parsed = parseReminderMember(member);
      if (parsed) this.onDue(shard, parsed.actorId, parsed.name, at);
    }
    this.arm();
  }

  private arm(): void {
    if (this.stopped || this.n === 0) return;
    const next = this.ats[this.heap[0]!]!;
    if (this.timer && next >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(next - this.clock(), MAX_TIMER_MS)));
    this.timer.unref();
  }

  private alloc(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const slot = this.nextSlot++;
    if (slot >= this.ats.length) this.grow();
    return slot;
  }

  private grow(): void {
    const cap = this.ats.length * 2;
    const ats = new Float64Array(cap);
    ats.set(this.ats);
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    const shards = new Int32Array(cap);
    shards.set(this.shards);
    const heap = new Int32Array(cap);
    heap.set(this.heap);
    this.ats = ats;
    this.pos = pos;
    this.shards = shards;
    this.heap = heap;
  }

  /** Takes a slot out of the heap and frees it. */
  private remove(slot: number): void {
    const i = this.pos[slot]!;
    this.n--;
    if (i !== this.n) {
      const last = this.heap[this.n]!;
      this.heap[i] = last;
      this.pos[last] = i;
      this.up(i);
      this.down(this.pos[last]);
    }
    this.pos[slot] = -1;
    this.members[slot] = undefined;
    this.free.push(slot);
  }

  private up(i: number): void {
    const heap = this.heap;
    const slot = heap[i]!;
    const at = this.ats[slot]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (this.ats[p]! <= at) break;
      heap[i] = p;
      this.pos[p] = i;
      i = parent;
    }
    heap[i] = slot;
    this.pos[slot] = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const slot = heap[i]!;
    const at = this.ats[slot]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.n) break;
      const r = l + 1;
      const c = r < this.n && this.ats[heap[r]!]! < this.ats[heap[l]!]! ? r : l;
      if (this.ats[heap[c]!]! >= at) break;
      heap[i] = heap[c]!;
      this.pos[heap[i]!] = i;
      i = c;
    }
    heap[i] = slot;
    this.pos[slot] = i;
  }
}
