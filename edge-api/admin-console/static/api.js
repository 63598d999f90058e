// The console's calls to the node's API: the admin token on each, every failure an ApiError.
import { createPacer, delay, retryDelayMs } from './pacer.js';

/** Where the admin token is kept: this tab's session only, gone when it closes. */
export const TOKEN_KEY = 'iot-admin.token';

/** Milliseconds before a call is given up as a network failure. */
const TIMEOUT_MS = 10_000;

/** Bulk reads (a shadow per device) sent per second at most: under 10 even with network jitter, well inside the admin token's and a home's rate limits. */
export const BULK_READS_PER_SEC = 8;

/** Times a bulk read refused as too many (429) is sent before its failure is shown. */
const BULK_ATTEMPTS = 5;

/**
 * A failed call. `code` is the API's error code (`unauthenticated`, `failed_precondition`, …),
 * `network` when the node could not be reached, `timeout` when it did not answer in time,
 * `aborted` when the caller cancelled it, or `bad_response` when it answered without the error
 * shape; `message` is the API's own `error.message` ('' when there is none).
 * `retryAfterSeconds`: of a 429, when to try again (its details, else its Retry-After header).
 */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterSeconds) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The ApiError of a fetch that threw `err`: `aborted` when the caller's `signal` cancelled it,
 * `timeout` when the console's own deadline ran out (a TimeoutError), `network` otherwise.
 */
export function failureOfFetch(err, signal) {
  if (signal?.aborted) return new ApiError(0, 'aborted', '');
  if (err?.name === 'TimeoutError') return new ApiError(0, 'timeout', '');
  return new ApiError(0, 'network', '');
}

/** Seconds to wait of a 429: `details.retryAfterSeconds`, else the Retry-After header (seconds), else undefined. */
function retryAfterOf(res, error) {
  const fromBody = Number(error?.details?.retryAfterSeconds);
  if (Number.isFinite(fromBody) && fromBody > 0) return fromBody;
  const fromHeader = Number(res.headers.get('retry-after'));
  return Number.isFinite(fromHeader) && fromHeader > 0 ? fromHeader : undefined;
}

export const savedToken = () => sessionStorage.getItem(TOKEN_KEY);
export const saveToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);

/** The JSON body of `res`, or undefined when it has none or it is not JSON. */
async function bodyOf(res) {
  try {
    return await res.json();
  } catch {
    return undefined;
  }
}

const listeners = new Set();

/** Calls `listener(error)` whenever the node refuses the token (401): the session is over. */
export function onUnauthenticated(listener) {
  listeners.add(listener);
}

/**
 * Calls the API: `method` on `path` (with its query), `body` sent as JSON. Resolves to the parsed
 * answer (null for 204); rejects with an ApiError. `token` overrides the saved one (sign-in checks
 * a token before keeping it); `signal` cancels the call (an `aborted` ApiError).
 */
export async function call(method, path, { body, token, signal } = {}) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${token ?? savedToken() ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw failureOfFetch(err, signal);
  }
  if (res.status === 204) return null;
  const json = await bodyOf(res);
  if (res.ok) {
    if (json === undefined) throw new ApiError(res.status, 'bad_response', '');
    return json;
  }
  const error = json?.error;
  const failure =
    typeof error?.code === 'string'
      ? new ApiError(res.status, error.code, typeof error.message === 'string' ? error.message : '', retryAfterOf(res, error))
      : new ApiError(res.status, 'bad_response', '', res.status === 429 ? retryAfterOf(res, error) : undefined);
  if (res.status === 401 && token === undefined) for (const listener of listeners) listener(failure);
  throw failure;
}

const bulk = createPacer(BULK_READS_PER_SEC);

/**
 * A GET of `path` among many (a shadow per device): sent in its turn of the tab's bulk pace, and
 * sent again after the wait a 429 asks for (up to BULK_ATTEMPTS times). `signal` cancels it,
 * waiting or sent (an `aborted` ApiError).
 */
export async function bulkGet(path, signal) {
  for (let attempt = 1; ; attempt++) {
    try {
      await bulk.turn(signal);
      return await call('GET', path, { signal });
    } catch (err) {
      if (signal?.aborted) throw new ApiError(0, 'aborted', '');
      if (err?.code !== 'rate_limited' && err?.status !== 429) throw err;
      if (attempt >= BULK_ATTEMPTS) throw err;
      await delay(retryDelayMs(err), signal).catch(() => {
        throw new ApiError(0, 'aborted', '');
      });
    }
  }
}

/** Path segment of a user-typed id: encoded, so `a/b` or `..` stay one (refused) id. */
export const seg = (id) => encodeURIComponent(id);

export const api = {
  cluster: (token) => call('GET', '/v1/admin/cluster', { token }),
  planRing: (change) => call('POST', '/v1/admin/ring/plan?detail=true', { body: change }),
  applyRing: (change) => call('POST', '/v1/admin/ring', { body: change }),
  home: (homeId, signal) => call('GET', `/v1/homes/${seg(homeId)}`, { signal }),
  devices: (homeId, cursor, signal) =>
    call('GET', `/v1/homes/${seg(homeId)}/devices?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { signal }),
  /** One device's shadow, paced as a bulk read (a home's page reads one per device). */
  device: (homeId, deviceId, signal) => bulkGet(`/v1/homes/${seg(homeId)}/devices/${seg(deviceId)}`, signal),
  rules: (homeId, signal) => call('GET', `/v1/homes/${seg(homeId)}/rules`, { signal }),
  resumeRule: (homeId, ruleId) => call('POST', `/v1/homes/${seg(homeId)}/rules/${seg(ruleId)}/resume`),
  decisions: (homeId, signal) => call('GET', `/v1/homes/${seg(homeId)}/decisions?limit=50`, { signal }),
};
