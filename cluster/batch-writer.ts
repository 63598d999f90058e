/** Per-tick batching of peer messages onto a gRPC stream, within the wire's size limits. */
import { itemBytes, type PeerLimits, type WirePeerBatch, type WirePeerMessage } from './peer-wire.ts';

/** Where a BatchWriter writes: a gRPC stream, as a Node writable. */
export interface BatchTarget {
  write(batch: WirePeerBatch): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export interface BatchWriterOptions {
  readonly limits: PeerLimits;
  /** The stream to write to now (the client opens one lazily); undefined drops what is queued. */
  readonly target: () => BatchTarget | undefined;
  /** Items to leave out at write time (asks that already timed out). */
  readonly keep?: (m: WirePeerMessage) => boolean;
  /** Called with the size of each batch written. */
  readonly written: (items: number) => void;
  /** Called after each flush. */
  readonly flushed?: () => void;
}

/**
 * Collects the items of one event-loop tick and writes them as few PeerBatches as the limits
 * allow, on `setImmediate`. When the stream's buffer is full (`write` → false) it waits for
 * `drain`, and what arrives meanwhile joins larger batches.
 */
export class BatchWriter {
  private queue: WirePeerMessage[] = [];
  private scheduled = false;
  private blockedOn: BatchTarget | undefined;

  constructor(private readonly opts: BatchWriterOptions) {}

  get queued(): number {
    return this.queue.length;
  }

  push(m: WirePeerMessage): void {
    this.queue.push(m);
    this.schedule();
  }

  clear(): void {
    this.queue = [];
  }

  /** Writes everything now, ignoring backpressure (before ending a stream). */
  flushAll(): void {
    this.write(true);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    this.write(false);
    this.opts.flushed?.();
  };

  private write(force: boolean): void {
    const q = this.queue;
    if (q.length === 0) return;
    const target = this.opts.target();
    if (!target) {
      this.queue = [];
      return;
    }
    if (!force && this.blockedOn === target) return;
    this.blockedOn = undefined;
    const { maxBatchItems, maxBatchBytes } = this.opts.limits;
    const keep = this.opts.keep;
    let batch: WirePeerMessage[] = [];
    let bytes = 0;
    let i = 0;
    for (; i < q.length; i++) {
      const m = q[i]!;
      if (keep && !keep(m)) continue;
      const size = itemBytes(m);
      // Close the batch before it would pass a limit (a single item larger than maxBatchBytes goes alone).
      if (batch.length > 0 && (batch.length >= maxBatchItems || bytes + size > maxBatchBytes)) {
        const more = this.send(target, batch);
        batch = [];
        bytes = 0;
        if (!more && !force) {
          this.block(target);
          break;
        }
      }
      batch.push(m);
      bytes += size;
    }
    if (batch.length > 0 && !this.send(target, batch) && !force) this.block(target);
    this.queue = i < q.length ? q.slice(i) : [];
  }

  private send(target: BatchTarget, batch: WirePeerMessage[]): boolean {
    this.opts.written(batch.length);
    return target.write({ items: batch });
  }

  /** The stream's buffer is full: the next flush waits for its `drain`. */
  private block(target: BatchTarget): void {
    this.blockedOn = target;
    target.once('drain', () => {
      if (this.blockedOn !== target) return;
      this.blockedOn = undefined;
      this.schedule();
    });
  }

  private schedule(): void {
    if (!this.scheduled && this.queue.length > 0) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }
}
