import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';

/** A browser module of the console, imported as it is served (plain JS, no DOM at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

let pacer: any;
let api: any;

beforeAll(async () => {
  pacer = await load('pacer.js');
  api = await load('api.js');
});

/** Each test's clock starts past the last one's: the api module's pace (module state) is long free again. */
let clockBase = 0;

beforeEach(() => {
  vi.useFakeTimers({ now: (clockBase += 1_000_000) });
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const clock = { now: () => Date.now(), setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms) };

describe('admin console: the bulk read pace', () => {
  it('hands out one turn every 100 ms, in order, the first at once', async () => {
    const pace = pacer.createPacer(10, clock);
    const turns: number[] = [];
    for (let i = 0; i < 25; i++) void pace.turn().then(() => turns.push(Date.now()));
    await vi.advanceTimersByTimeAsync(0);
    expect(turns).toEqual([clockBase]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(turns.length).toBe(11);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(turns).toEqual(Array.from({ length: 25 }, (_, i) => clockBase + i * 100));
  });

  it('frees the place of an aborted turn: a new lookup does not wait behind an abandoned one', async () => {
    const pace = pacer.createPacer(10, clock);
    const old = new AbortController();
    const refused: unknown[] = [];
    for (let i = 0; i < 50; i++) pace.turn(old.signal).catch((err: unknown) => refused.push(err));
    await vi.advanceTimersByTimeAsync(250);
    old.abort(new Error('new lookup'));
    await vi.advanceTimersByTimeAsync(0);
    expect(refused.length).toBe(47);
    expect(pace.waiting).toBe(0);
    const turns: number[] = [];
    void pace.turn().then(() => turns.push(Date.now()));
    await vi.advanceTimersByTimeAsync(100);
    expect(turns).toEqual([clockBase + 300]);
    await expect(pace.turn(old.signal)).rejects.toThrow('new lookup');
  });

  it('waits what a 429 asks for: its retryAfterSeconds, else 1 s, at most 30 s', () => {
    expect(pacer.retryDelayMs({ retryAfterSeconds: 3 })).toBe(3_000);
    expect(pacer.retryDelayMs({})).toBe(1_000);
    expect(pacer.retryDelayMs({ retryAfterSeconds: -1 })).toBe(1_000);
    expect(pacer.retryDelayMs({ retryAfterSeconds: 'soon' })).toBe(1_000);
    expect(pacer.retryDelayMs({ retryAfterSeconds: 3600 })).toBe(30_000);
    expect(pacer.retryDelayMs(undefined)).toBe(1_000);
  });
});

/** A fetch answering `answers` in turn (each a status and a body, or an error to throw), recording the URLs. */
function stubFetch(answers: ({ status: number; body?: unknown; headers?: Record<string, string> } | Error)[]) {
  const urls: string[] = [];
  const fetch = vi.fn(async (url: string, init: RequestInit) => {
    urls.push(url);
    if (init.signal?.aborted) throw init.signal.reason;
    const next = answers.shift();
    if (next === undefined) throw new Error('no more answers');
    if (next instanceof Error) throw next;
    return new Response(next.body === undefined ? null : JSON.stringify(next.body), {
      status: next.status,
      headers: { 'content-type': 'application/json', ...next.headers },
    });
  });
  vi.stubGlobal('fetch', fetch);
  vi.stubGlobal('sessionStorage', { getItem: () => 'token', setItem: () => {}, removeItem: () => {} });
  return urls;
}

const tooMany = (seconds?: number, headers?: Record<string, string>) => ({
  status: 429,
  body: { error: { code: 'rate_limited', message: 'too many requests', ...(seconds ? { details: { retryAfterSeconds: seconds } } : {}) } },
  headers,
});

describe('admin console: api calls', () => {
  it('names a timeout as such, a cancelled call as aborted, anything else as unreachable', async () => {
    const timeout = new DOMException('The operation timed out.', 'TimeoutError');
    expect(api.failureOfFetch(timeout, undefined).code).toBe('timeout');
    expect(api.failureOfFetch(new TypeError('Failed to fetch'), undefined).code).toBe('network');
    const cancelled = new AbortController();
    cancelled.abort();
    expect(api.failureOfFetch(cancelled.signal.reason, cancelled.signal).code).toBe('aborted');

    stubFetch([timeout]);
    await expect(api.call('GET', '/v1/admin/cluster')).rejects.toMatchObject({ code: 'timeout', status: 0 });
    stubFetch([new TypeError('Failed to fetch')]);
    await expect(api.call('GET', '/v1/admin/cluster')).rejects.toMatchObject({ code: 'network' });
  });

  it("keeps a 429's wait: from its details, else its Retry-After header", async () => {
    stubFetch([tooMany(4), tooMany(undefined, { 'retry-after': '2' }), { status: 429, body: 'nope', headers: { 'retry-after': '3' } }]);
    await expect(api.call('GET', '/x')).rejects.toMatchObject({ code: 'rate_limited', retryAfterSeconds: 4, message: 'too many requests' });
    await expect(api.call('GET', '/x')).rejects.toMatchObject({ code: 'rate_limited', retryAfterSeconds: 2 });
    await expect(api.call('GET', '/x')).rejects.toMatchObject({ code: 'bad_response', status: 429, retryAfterSeconds: 3 });
  });

  it('sends a refused bulk read again after the wait the 429 asks for', async () => {
    const urls = stubFetch([tooMany(2), { status: 200, body: { deviceId: 'd1' } }]);
    const read = api.api.device('h1', 'd1');
    await vi.advanceTimersByTimeAsync(1_900);
    expect(urls).toEqual(['/v1/homes/h1/devices/d1']);
    await vi.advanceTimersByTimeAsync(200);
    await expect(read).resolves.toEqual({ deviceId: 'd1' });
    expect(urls.length).toBe(2);
  });

  it('gives a bulk read up after 5 refusals, with the API message', async () => {
    stubFetch([tooMany(1), tooMany(1), tooMany(1), tooMany(1), tooMany(1)]);
    const read = api.api.device('h1', 'd1');
    const outcome = read.catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await outcome).toMatchObject({ code: 'rate_limited', message: 'too many requests' });
  });

  it('does not retry other failures, and cancels a bulk read waiting for its retry', async () => {
    stubFetch([{ status: 404, body: { error: { code: 'not_found', message: 'no device d9' } } }]);
    await expect(api.api.device('h1', 'd9')).rejects.toMatchObject({ code: 'not_found', message: 'no device d9' });

    const urls = stubFetch([tooMany(5)]);
    const lookup = new AbortController();
    const read = api.api.device('h1', 'd1', lookup.signal).catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(1_000);
    lookup.abort();
    expect(await read).toMatchObject({ code: 'aborted' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(urls.length).toBe(1);
  });
});
