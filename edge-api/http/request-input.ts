/** Untrusted request input: path ids, JSON bodies, query integers and headers (incl. entity tags), each failing with a named 400. */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { HOME_ID } from '../../actors/actor-id.ts';
import { hasControlCharacter } from '../../actors/validation.ts';
import { etagMatches } from './etag-match.ts';
import { HttpError, invalidArgument } from './http-error.ts';

/** Path ids other than homeId (devices, rules, scenes, commands): 1..128 characters. */
export const PATH_ID_MAX = 128;
/** Command ids are `<deviceId>~<local>`: a device id, `~` and an idempotency key. */
const COMMAND_ID_MAX = PATH_ID_MAX + 1 + 64;

/** Checks every known path parameter; throws a 400 naming the first bad one. */
export function checkPathIds(params: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(params)) {
    if (hasControlCharacter(value)) throw invalidArgument(name, 'must not contain control characters');
    if (name === 'homeId') {
      if (!HOME_ID.test(value)) throw invalidArgument('homeId', 'must be 1 to 64 letters, digits, _ . or -');
    } else if (name === 'commandId') {
      if (value.length === 0 || value.length > COMMAND_ID_MAX) throw invalidArgument(name, `must be 1 to ${COMMAND_ID_MAX} characters`);
    } else if (value.length === 0 || value.length > PATH_ID_MAX) {
      throw invalidArgument(name, `must be 1 to ${PATH_ID_MAX} characters`);
    }
  }
}

export type JsonObject = Record<string, unknown>;

const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Whether a Content-Type header names JSON: `application/json` or a `+json` type
 * (`application/merge-patch+json`), with any parameters (`; charset=utf-8`), in any case.
 */
export function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const type = (header.split(';', 1)[0] ?? '').trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9!#$&^_.-]+\+json$/.test(type);
}

/**
 * The request body as a JSON object. The size was already bounded by the body-limit middleware.
 * A body not declared as JSON is a 415 `unsupported_media_type`, checked before it is read: a
 * form or `text/plain` body (what a browser may send cross-site without a preflight) is never
 * taken for JSON. Empty, malformed or non-object bodies are a 400 naming `body`.
 */
export async function readJsonObject(c: Context): Promise<JsonObject> {
  const contentType = requestHeader(c, 'content-type');
  if (!isJsonMediaType(contentType)) {
    throw new HttpError(
      'unsupported_media_type',
      contentType === undefined
        ? 'the request body needs Content-Type: application/json'
        : `Content-Type ${contentType.slice(0, 100)} is not supported: send application/json`,
      { field: 'Content-Type' },
    );
  }
  const text = await readBodyText(c);
  if (text.trim() === '') throw invalidArgument('body', 'is required: send a JSON object');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidArgument('body', 'is not valid JSON');
  }
  if (!isObject(body)) throw invalidArgument('body', 'must be a JSON object');
  return body;
}

/**
 * The request body as text. The client going away mid-body is a 400 (found probing: "aborted"
 * was a 500 with an ERROR log and a `failed` audit entry); anything else stays a 500.
 */
export async function readBodyText(c: Context): Promise<string> {
  try {
    return await c.req.text();
  } catch (err) {
    if (isClientAbort(err)) throw invalidArgument('body', 'was not received in full: the client ended the request before its body');
    throw err;
  }
}

/** Whether reading a request body failed because the client ended the request (Node's "aborted", a reset). */
export function isClientAbort(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return err.message === 'aborted' || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || err.name === 'AbortError';
}

/**
 * A request header by its lower-case name. Under @hono/node-server it is read from node's parsed
 * headers (`c.env.incoming`): `c.req.header` would first build a WHATWG `Headers` of every header
 * of the request, a cost paid per request on the GET path. Elsewhere (`app.request` in tests)
 * it falls back to `c.req.header`. Repeated headers join with `, ` as `Headers` does, except
 * those node keeps once (`authorization`, `content-length`, ...: the first one wins).
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Key prefixes of the command ids the home issues (`<device>~r-<rule>-<n>` for rules,
 * `<device>~s-<scene>-<n>` for scenes; see actors/rules/action-plan.ts). An app key with one of
 * them could take a rule's or scene's future id, and that command would then be refused as an
 * idempotency_conflict (or silently not sent). Refused rather than prefixing app keys, so every
 * other key keeps naming the command id it always named (`<device>~<key>`).
 */
const RESERVED_KEY_PREFIXES = ['r-', 's-'] as const;

/** The `Idempotency-Key` header, if sent: 1..64 of `A-Z a-z 0-9 _ -`, not starting with `r-` or `s-`. */
export function idempotencyKey(c: Context): string | undefined {
  const key = requestHeader(c, 'idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) throw invalidArgument('Idempotency-Key', 'must be 1 to 64 letters, digits, _ or -');
  if (RESERVED_KEY_PREFIXES.some((p) => key.startsWith(p))) {
    throw invalidArgument(
      'Idempotency-Key',
      `must not start with ${RESERVED_KEY_PREFIXES.join(' or ')}: those name rule and scene commands`,
    );
  }
  return key;
}

/** Longest Last-Event-ID kept (an event id is at most 31 characters); a longer one is cut, so it is no id and resumes with a reset. */
const MAX_LAST_EVENT_ID = 64;

/**
 * The SSE `Last-Event-ID` header as sent (trimmed, cut at 64 characters), if sent. Not checked
 * here: the feed answers a value that is not an event id of the home's log (an old numeric id,
 * garbage) with a reset, as it does an id whose successors are gone, so a client always recovers.
 */
export function lastEventId(c: Context): string | undefined {
  const raw = requestHeader(c, 'last-event-id')?.trim();
  if (raw === undefined || raw === '') return undefined;
  return raw.slice(0, MAX_LAST_EVENT_ID);
}

/** The strong entity tag of a shadow version. */
export const etagOf = (version: number): string => `"${version}"`;

const STRONG = /^"(\d{1,15})"$/;

/**
 * The version an `If-Match` header requires: undefined when absent or `*` (any current shadow),
 * else one strong tag `"<version>"`. Weak tags, lists and anything else are a 400: a conditional
 * write must name exactly one version.
 */
export function ifMatchVersion(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return undefined;
  const m = STRONG.exec(value);
  if (!m?.[1]) throw invalidArgument('If-Match', 'must be one entity tag "<version>" as served in ETag, or *');
  return Number(m[1]);
}

/** Whether an `If-None-Match` header matches `version` (weak comparison, lists and `*` allowed). */
export function noneMatchHits(header: string | undefined, version: number): boolean {
  return etagMatches(header, etagOf(version));
}
