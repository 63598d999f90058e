// The console's calls to the node's API: the admin token on each, every failure an ApiError.

/** Where the admin token is kept: this tab's session only, gone when it closes. */
export const TOKEN_KEY = 'iot-admin.token';

/** Milliseconds before a call is given up as a network failure. */
const TIMEOUT_MS = 10_000;

/**
 * A failed call. `code` is the API's error code (`unauthenticated`, `failed_precondition`, …),
 * `network` when the node could not be reached, or `bad_response` when it answered without the
 * error shape; `message` is the API's own `error.message` ('' when there is none).
 */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
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
 * a token before keeping it).
 */
export async function call(method, path, { body, token } = {}) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${token ?? savedToken() ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch {
    throw new ApiError(0, 'network', '');
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
      ? new ApiError(res.status, error.code, typeof error.message === 'string' ? error.message : '')
      : new ApiError(res.status, 'bad_response', '');
  if (res.status === 401 && token === undefined) for (const listener of listeners) listener(failure);
  throw failure;
}

/** Path segment of a user-typed id: encoded, so `a/b` or `..` stay one (refused) id. */
export const seg = (id) => encodeURIComponent(id);

export const api = {
  cluster: (token) => call('GET', '/v1/admin/cluster', { token }),
  planRing: (change) => call('POST', '/v1/admin/ring/plan?detail=true', { body: change }),
  applyRing: (change) => call('POST', '/v1/admin/ring', { body: change }),
  home: (homeId) => call('GET', `/v1/homes/${seg(homeId)}`),
  devices: (homeId, cursor) =>
    call('GET', `/v1/homes/${seg(homeId)}/devices?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  device: (homeId, deviceId) => call('GET', `/v1/homes/${seg(homeId)}/devices/${seg(deviceId)}`),
  rules: (homeId) => call('GET', `/v1/homes/${seg(homeId)}/rules`),
  resumeRule: (homeId, ruleId) => call('POST', `/v1/homes/${seg(homeId)}/rules/${seg(ruleId)}/resume`),
  decisions: (homeId) => call('GET', `/v1/homes/${seg(homeId)}/decisions?limit=50`),
};
