/** The reports a hub has sent and not had acked, kept in wire form for re-sends, with their first sends. */
import type { WireReport } from '../../edge-api/hub-ingress/hub-wire.ts';

/**
 * Reports `ackedUpTo + 1 ..` in seq order. Acked ones are dropped in bulk (an index moves; the
 * arrays are compacted now and then), not one shift per ack: a load hub keeps thousands.
 */
export class UnackedReports {
  private reports: WireReport[] = [];
  private sentAt: number[] = [];
  private head = 0;
  /** Every report up to this seq is acked (none of them is held). */
  private ackedUpTo = 0;

  /** Holds the next report (seq `ackedUpTo + size + 1`); sentAt: its first send, performance.now() ms. */
  add(report: WireReport, sentAt: number): void {
    this.reports.push(report);
    this.sentAt.push(sentAt);
  }

  get size(): number {
    return this.reports.length - this.head;
  }

  /** The held report `seq` (ackedUpTo < seq ≤ ackedUpTo + size). */
  get(seq: number): WireReport {
    return this.reports[this.head + seq - this.ackedUpTo - 1]!;
  }

  /**
   * Everything up to `upTo` is acked: drops those held, calling `each(seq, sentAt)` for each in
   * order. `upTo` may lie beyond what is held (reports of an earlier life of the hub).
   */
  ack(upTo: number, each?: (seq: number, sentAt: number) => void): void {
    if (upTo <= this.ackedUpTo) return;
    const n = Math.min(upTo - this.ackedUpTo, this.size);
    if (each) for (let i = 0; i < n; i++) each(this.ackedUpTo + 1 + i, this.sentAt[this.head + i]!);
    this.head += n;
    this.ackedUpTo = upTo;
    if (this.head >= 1024 && this.head * 2 >= this.reports.length) {
      this.reports.splice(0, this.head);
      this.sentAt.splice(0, this.head);
      this.head = 0;
    }
  }
}
