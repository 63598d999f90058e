/** Schemas of the live event stream of a home (SSE): every event name with its data, and the Last-Event-ID header. */
import { COMMAND_STATUS_TOPIC, DECISION_TOPIC } from '../../../actors/event-topics.ts';
import { z } from '../api-schemas.ts';
import { DecisionEntrySchema } from './decision-schemas.ts';
import { CommandRecordSchema, ValueSchema } from './device-schemas.ts';

const RETRY_NOTE = 'The stream opens with `retry: <ms>`; `: ping` comments keep it alive while idle.';

const Values = z.record(z.string(), ValueSchema);

/** An event id: opaque to apps (today a Redis stream id `<ms>-<n>`), growing per home. */
const EventId = z.string().openapi({
  description: 'Opaque; grows per home. Send it back as Last-Event-ID to resume after it, on any node.',
  example: '1732700000000-0',
});

/** One event of the stream: its SSE `id`, `event` name and `data` (JSON). */
const event = <E extends string, D extends z.ZodType>(name: E, data: D, description: string) =>
  z.object({ id: EventId, event: z.literal(name), data }).openapi({ description });

/** An event without an id (it is not in the feed: the stream itself says it). */
const control = <E extends string, D extends z.ZodType>(name: E, data: D, description: string) =>
  z.object({ event: z.literal(name), data }).openapi({ description });

/** The events of `GET /v1/homes/{homeId}/events`, one object per SSE event (`data` is its JSON). */
export const HomeEventSchema = z
  .discriminatedUnion('event', [
    event(
      'device.shadow',
      z.object({ deviceId: z.string(), version: z.number().int(), reported: Values, desired: Values, delta: Values }),
      'A shadow changed (a report, a desired write): its values as of `version`.',
    ),
    event(COMMAND_STATUS_TOPIC, CommandRecordSchema.extend({ deviceId: z.string() }), 'A command was issued or changed status.'),
    event(DECISION_TOPIC, DecisionEntrySchema, 'A rule decision was logged (see GET …/decisions).'),
    event(
      'notify',
      z.object({ message: z.string(), ruleId: z.string().optional() }),
      "A rule's notify action, or storm control suspending a rule (`ruleId`).",
    ),
    control(
      'reset',
      z.object({ reason: z.literal('gap'), lastEventId: z.string().nullable() }),
      'Events after `lastEventId` may be gone (it was trimmed or expired from the home’s event log, or is not one of its ' +
        'ids): re-read the state, then follow on. First after such a Last-Event-ID; also mid-stream when the node lost ' +
        'its view of the log for longer than the log keeps events.',
    ),
    control(
      'access.revoked',
      z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
      'Last event of a stream whose token was revoked or lost the home: reconnecting answers 401 or 403.',
    ),
  ])
  .openapi('HomeEvent', { description: `One event of the stream, as its SSE fields. ${RETRY_NOTE}` });

export const homeEventExample = {
  id: '1732700000000-0',
  event: 'device.shadow',
  data: { deviceId: 'light1', version: 9, reported: { on: true, brightness: 40 }, desired: { on: true }, delta: {} },
} as const;

/** The Last-Event-ID request header, read by the route itself (request-input.ts `lastEventId`). */
export const LAST_EVENT_ID = {
  name: 'Last-Event-ID',
  in: 'header' as const,
  required: false,
  description:
    'Resume after this event id, on any node (EventSource sends it when it reconnects): the events after it that the ' +
    "home's event log keeps come first; a `reset` event first when some are gone or the value is not one of its ids.",
  schema: { type: 'string' as const, maxLength: 64 },
  example: '1732700000000-0',
};
