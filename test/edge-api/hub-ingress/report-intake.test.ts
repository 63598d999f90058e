/** Unit tests of ReportIntake over a fake router: how each kind of failed device ask reaches the hub. */
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { ActorRouter } from '../../../cluster/actor-router.ts';
import { HubMetrics } from '../../../edge-api/hub-ingress/hub-metrics.ts';
import type { DecodedReport } from '../../../edge-api/hub-ingress/hub-codec.ts';
import type { CloudMessage } from '../../../edge-api/hub-ingress/hub-wire.ts';
import { ReportIntake } from '../../../edge-api/hub-ingress/report-intake.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import type { Result } from '../../../runtime/result.ts';

const report = (seq: number, deviceId = 'lamp'): DecodedReport => ({
  seq,
  device_id: deviceId,
  ts_ms: 1000,
  attributes: { on: { flag: true } },
  event: null,
});

/** An intake whose device asks resolve `replies` in turn (the last one repeats). */
function intakeOver(...replies: Result<unknown>[]) {
  const sent: CloudMessage[] = [];
  const failed: [string, string][] = [];
  const asked: unknown[] = [];
  const router: ActorRouter = {
    ask: <R>(_id: string, msg: unknown) => {
      asked.push(msg);
      return Promise.resolve((replies.length > 1 ? replies.shift() : replies[0]) as Result<R>);
    },
    tell: () => ({ ok: true, value: undefined }),
    deliver: () => ({ ok: true, value: undefined }),
  };
  const intake = new ReportIntake({
    homeId: 'h1',
    devices: new Set(['lamp']),
    lastDurableSeq: 0,
    window: 10,
    router,
    metrics: new HubMetrics(new Registry()),
    clock: Date.now,
    retry: { baseMs: 1, maxMs: 1, giveUpAfterMs: 10_000 },
    log: silentLogger,
    send: (m) => sent.push(m),
    fail: (code, details) => failed.push([code, details]),
    acked: () => {},
  });
  return { intake, sent, failed, asked };
}

describe('ReportIntake', () => {
  it('acks the reports a device applied', async () => {
    const fx = intakeOver({ ok: true, value: { ok: true, value: { results: [{ ok: true, value: { applied: true, version: 1 } }] } } });
    fx.intake.accept([report(1)]);
    await vi.waitFor(() => expect(fx.sent).toEqual([{ ack: { up_to_seq: '1' } }]));
    expect(fx.asked).toEqual([{ type: 'report.batch', items: [{ seq: 1, tsMs: 1000, attributes: { on: true } }] }]);
  });

  it('retries a transient runtime failure, then acks', async () => {
    const fx = intakeOver(
      { ok: false, error: { code: 'overloaded', message: 'mailbox full' } },
      { ok: true, value: { ok: true, value: { results: [{ ok: true, value: { applied: true, version: 1 } }] } } },
    );
    fx.intake.accept([report(1)]);
    await vi.waitFor(() => expect(fx.sent).toEqual([{ ack: { up_to_seq: '1' } }]));
    expect(fx.asked).toHaveLength(2);
  });

  it('answers a domain error of the whole batch with an error per report, and acks past them', async () => {
    const fx = intakeOver({
      ok: true,
      value: { ok: false, error: { code: 'invalid_argument', field: 'items', message: 'items must be an array' } },
    });
    fx.intake.accept([report(1), report(2)]);
    await vi.waitFor(() => expect(fx.sent.at(-1)).toEqual({ ack: { up_to_seq: '2' } }));
    expect(fx.sent.slice(0, 2)).toEqual([
      { error: { code: 'INVALID_ARGUMENT', message: 'items must be an array', seq: '1' } },
      { error: { code: 'INVALID_ARGUMENT', message: 'items must be an array', seq: '2' } },
    ]);
    expect(fx.failed).toEqual([]);
  });

  it('ends the stream with stopping when the node shuts down', async () => {
    const fx = intakeOver({ ok: false, error: { code: 'stopping', message: 'host stopping' } });
    fx.intake.accept([report(1)]);
    await vi.waitFor(() => expect(fx.failed).toEqual([['stopping', 'node shutting down']]));
    expect(fx.sent).toEqual([]);
  });

  it('ends only this stream with internal when a reply is not an outcome (a bug)', async () => {
    const fx = intakeOver({ ok: true, value: 'not an outcome' });
    fx.intake.accept([report(1)]);
    await vi.waitFor(() => expect(fx.failed).toEqual([['internal', 'internal error']]));
  });
});
