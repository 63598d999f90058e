import { describe, expect, it } from 'vitest';
import type { WireReport } from '../../../edge-api/hub-ingress/hub-wire.ts';
import { UnackedReports } from '../../../tools/hub-client/unacked-reports.ts';

const report = (seq: number): WireReport => ({ seq: String(seq), device_id: 'd1', ts_ms: '0', attributes: {} });

describe('UnackedReports', () => {
  it('hands back held reports by seq across many acks and compactions, reporting each acked one once, in order', () => {
    const u = new UnackedReports();
    const acked: number[] = [];
    let produced = 0;
    let ackedUpTo = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) u.add(report(++produced), produced);
      expect(u.get(ackedUpTo + 1).seq).toBe(String(ackedUpTo + 1));
      expect(u.get(produced).seq).toBe(String(produced));
      ackedUpTo += 90;
      u.ack(ackedUpTo, (seq, sentAt) => {
        expect(sentAt).toBe(seq);
        acked.push(seq);
      });
      u.ack(ackedUpTo - 5); // an older ack changes nothing
      expect(u.size).toBe(produced - ackedUpTo);
    }
    expect(acked).toEqual(Array.from({ length: ackedUpTo }, (_, i) => i + 1));
  });

  it('takes an ack beyond what it holds (an earlier life of the hub) and goes on after it', () => {
    const u = new UnackedReports();
    u.add(report(1), 0);
    u.ack(10);
    expect(u.size).toBe(0);
    u.add(report(11), 0);
    expect(u.get(11).seq).toBe('11');
  });
});
