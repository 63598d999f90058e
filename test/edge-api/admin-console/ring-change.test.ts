import { beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';

/** A browser module of the console, imported as it is served (plain JS, no DOM at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

let changeOf: (op: string, id: unknown, weight: unknown) => any;
let handoffProgress: (status: unknown, epoch: number, moving: number) => any;
let followStatus: (tracking: unknown, status: unknown) => any;
let keepsPolling: (shown: boolean, tracking: unknown) => boolean;
let planOutdated: (previewed: unknown, fresh: unknown) => boolean;
let describeError: (err: unknown, overrides?: Record<string, string>) => { title: string; detail: string };
let ApiError: new (status: number, code: string, message: string) => Error;
let InputError: new (key: string, params?: Record<string, unknown>) => Error;

beforeAll(async () => {
  ({ changeOf, handoffProgress, followStatus, keepsPolling, planOutdated } = await load('ring-change.js'));
  ({ describeError, InputError } = await load('errors.js'));
  ({ ApiError } = await load('api.js'));
});

describe('admin console: the ring change of the Resize form', () => {
  it('builds the RingChange of each operation, the node id trimmed', () => {
    expect(changeOf('add', ' n4 ', '')).toEqual({ change: { add: [{ id: 'n4' }] } });
    expect(changeOf('add', 'n4', '2.5')).toEqual({ change: { add: [{ id: 'n4', weight: 2.5 }] } });
    expect(changeOf('drain', 'n2', '')).toEqual({ change: { drain: ['n2'] } });
    expect(changeOf('remove', 'n2', '')).toEqual({ change: { remove: ['n2'] } });
    expect(changeOf('reweight', 'n1', '3')).toEqual({ change: { weights: { n1: 3 } } });
  });

  it('keeps an id such as __proto__ an own key of weights', () => {
    const { change } = changeOf('reweight', '__proto__', '2');
    expect(Object.keys(change.weights)).toEqual(['__proto__']);
    expect(JSON.stringify(change)).toBe('{"weights":{"__proto__":2}}');
  });

  it.each([
    ['add', '', '', 'resize.needNodeId'],
    ['drain', '   ', '', 'resize.needNodeId'],
    ['add', 'n4', '0', 'resize.badWeight'],
    ['add', 'n4', '-1', 'resize.badWeight'],
    ['add', 'n4', 'abc', 'resize.badWeight'],
    ['add', 'n4', 'Infinity', 'resize.badWeight'],
    ['reweight', 'n1', '', 'resize.needWeight'],
    ['split', 'n1', '', 'resize.badOperation'],
  ])('refuses %s of %j with weight %j: %s', (op, id, weight, problem) => {
    expect(changeOf(op, id, weight)).toEqual({ problem });
  });
});

describe('admin console: handoff progress', () => {
  const node = (id: string, assigned: number, owned: number, alive = true) => ({
    id,
    alive,
    state: 'active',
    shardsAssigned: assigned,
    shardsOwned: owned,
  });
  const status = (epoch: number, inFlight: boolean, nodes: unknown[]) => ({ epoch, handoffs: { pending: 0, done: 0, inFlight }, nodes });

  it('counts the shards the new owners still lack while a change moves', () => {
    const p = handoffProgress(status(4, true, [node('n1', 48, 64), node('n4', 64, 16)]), 4, 64);
    expect(p).toEqual({ phase: 'moving', done: false, moved: 16, moving: 64, percent: 25, down: [] });
  });

  it("is done by the API's rule: the status of the applied epoch or later, nothing in flight", () => {
    expect(handoffProgress(status(4, true, [node('n1', 64, 64), node('n4', 64, 64)]), 4, 64)).toMatchObject({ done: false, percent: 99 });
    expect(handoffProgress(status(3, false, [node('n1', 128, 128)]), 4, 64)).toMatchObject({ done: false, moved: 0, percent: 0 });
    expect(handoffProgress(status(4, false, [node('n1', 64, 64), node('n4', 64, 64)]), 4, 64)).toEqual({
      phase: 'done',
      done: true,
      moved: 64,
      moving: 64,
      percent: 100,
      down: [],
    });
    expect(handoffProgress(status(5, false, [node('n1', 128, 128)]), 4, 64)).toMatchObject({ phase: 'done', done: true });
  });

  it('warns of a dead node that still has shards assigned, also once done: those shards are not served', () => {
    const p = handoffProgress(status(4, false, [node('n1', 40, 40), node('n3', 24, 0, false), node('n9', 0, 0, false)]), 4, 20);
    expect(p).toMatchObject({ phase: 'done', done: true, down: [{ id: 'n3', shards: 24 }] });
    // A dead node's shards are not counted as missing moves: they are shown as down instead.
    const moving = handoffProgress(status(4, true, [node('n1', 40, 30), node('n3', 24, 0, false)]), 4, 20);
    expect(moving).toMatchObject({ phase: 'moving', moved: 10, down: [{ id: 'n3', shards: 24 }] });
  });

  it("does not count a newer change's shards against ours: it names the newer epoch", () => {
    const p = handoffProgress(status(6, true, [node('n1', 64, 10), node('n4', 64, 64)]), 4, 64);
    expect(p).toMatchObject({ phase: 'newer', done: false, newerEpoch: 6, moved: undefined, percent: undefined });
  });

  it('is done at once for a change that moves nothing, once the ring is settled', () => {
    expect(handoffProgress(status(4, false, [node('n1', 256, 256)]), 4, 0)).toMatchObject({
      done: true,
      moved: 0,
      moving: 0,
      percent: 100,
    });
    expect(handoffProgress(status(4, true, [node('n1', 256, 256)]), 4, 0)).toMatchObject({ done: false, percent: 0 });
  });

  it('follows a change applied here until done, keeping the last count while a newer one moves, then stops', () => {
    let tracking = { epoch: 4, moving: 64, origin: 'here' } as any;
    tracking = followStatus(tracking, status(4, true, [node('n1', 48, 64), node('n4', 64, 32)]));
    expect(tracking.progress).toMatchObject({ phase: 'moving', moved: 32, percent: 50 });
    expect(keepsPolling(false, tracking)).toBe(true);
    tracking = followStatus(tracking, status(5, true, [node('n1', 48, 0), node('n4', 64, 64)]));
    expect(tracking.progress).toMatchObject({ phase: 'newer', newerEpoch: 5, moved: 32, percent: 50 });
    tracking = followStatus(tracking, status(5, false, [node('n1', 48, 48), node('n4', 64, 64)]));
    expect(tracking).toMatchObject({ epoch: 4, origin: 'here', progress: { done: true, percent: 100 } });
    expect(keepsPolling(false, tracking)).toBe(false);
    expect(keepsPolling(true, tracking)).toBe(true);
    // Done stays done (no longer followed) while nothing else moves.
    expect(followStatus(tracking, status(5, false, [node('n1', 48, 48), node('n4', 64, 64)]))).toBe(tracking);
  });

  it('shows a change in flight that this tab did not apply (elsewhere, or before a reload)', () => {
    expect(followStatus(undefined, status(7, false, [node('n1', 64, 64)]))).toBeUndefined();
    expect(keepsPolling(false, undefined)).toBe(false);
    expect(keepsPolling(true, undefined)).toBe(true);
    let tracking = followStatus(undefined, status(7, true, [node('n1', 48, 64), node('n2', 16, 0)]));
    expect(tracking).toMatchObject({ epoch: 7, origin: 'seen', moving: 16, progress: { phase: 'moving', moved: 0, percent: 0 } });
    tracking = followStatus(tracking, status(7, true, [node('n1', 48, 56), node('n2', 16, 8)]));
    expect(tracking).toMatchObject({ moving: 16, progress: { moved: 8, percent: 50 } });
    tracking = followStatus(tracking, status(7, false, [node('n1', 48, 48), node('n2', 16, 16)]));
    expect(tracking.progress).toMatchObject({ done: true, moved: 16 });
    // A later change seen in flight replaces the finished one.
    const next = followStatus(tracking, status(8, true, [node('n1', 40, 48), node('n2', 24, 16)]));
    expect(next).toMatchObject({ epoch: 8, origin: 'seen', moving: 8, progress: { phase: 'moving', moved: 0 } });
  });

  it('sees that the ring moved on since the preview by its epoch', () => {
    expect(planOutdated({ epoch: 4 }, { epoch: 4 })).toBe(false);
    expect(planOutdated({ epoch: 4 }, { epoch: 5 })).toBe(true);
  });
});

describe('admin console: error texts', () => {
  it("shows the translated meaning of the code, then the API's own message", () => {
    expect(describeError(new ApiError(401, 'unauthenticated', 'invalid bearer token'))).toEqual({
      title: 'Wrong admin token: the node refused it.',
      detail: 'invalid bearer token',
    });
    expect(describeError(new ApiError(400, 'invalid_argument', 'change unknown node n9')).title).toBe('The request is invalid.');
  });

  it('lets a call say what its 409 means', () => {
    const busy = new ApiError(409, 'failed_precondition', 'a ring change is still moving shards (3 pending): retry when it is done');
    expect(describeError(busy, { failed_precondition: 'resize.busy' })).toEqual({
      title: 'Another ring change is still moving shards: wait until it is done, then apply again.',
      detail: busy.message,
    });
  });

  it('names unknown codes, unreachable nodes and bad answers without raw data', () => {
    expect(describeError(new ApiError(418, 'teapot', 'short and stout'))).toEqual({
      title: 'The request failed (HTTP 418, teapot).',
      detail: 'short and stout',
    });
    expect(describeError(new ApiError(0, 'timeout', '')).title).toBe('The node did not answer in time: try again.');
    expect(describeError(new ApiError(0, 'network', ''))).toEqual({
      title: 'The node cannot be reached: check that it runs and your network connection.',
      detail: '',
    });
    expect(describeError(new ApiError(502, 'bad_response', '')).title).toBe('The node answered HTTP 502 without a readable answer.');
    expect(describeError(new InputError('homes.needHomeId'))).toEqual({ title: 'Enter a home id.', detail: '' });
    expect(describeError(new TypeError('x is undefined'))).toEqual({
      title: 'Something went wrong in the console. Reload the page.',
      detail: '',
    });
  });
});
