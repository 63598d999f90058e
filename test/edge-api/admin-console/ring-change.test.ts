import { beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_STATIC_DIR } from '../../../edge-api/admin-console/admin-console-routes.ts';

/** A browser module of the console, imported as it is served (plain JS, no DOM at import). */
const load = (file: string): Promise<any> => import(new URL(file, CONSOLE_STATIC_DIR).href);

let changeOf: (op: string, id: unknown, weight: unknown) => any;
let handoffProgress: (status: unknown, epoch: number, moving: number) => any;
let describeError: (err: unknown, overrides?: Record<string, string>) => { title: string; detail: string };
let ApiError: new (status: number, code: string, message: string) => Error;
let InputError: new (key: string, params?: Record<string, unknown>) => Error;

beforeAll(async () => {
  ({ changeOf, handoffProgress } = await load('ring-change.js'));
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
    expect(p).toEqual({ done: false, moved: 16, moving: 64, percent: 25 });
  });

  it('is done only once nothing is in flight and every live node owns what it is assigned', () => {
    expect(handoffProgress(status(4, true, [node('n1', 64, 64), node('n4', 64, 64)]), 4, 64)).toMatchObject({ done: false, percent: 99 });
    expect(handoffProgress(status(4, false, [node('n1', 64, 64), node('n4', 64, 60)]), 4, 64)).toMatchObject({ done: false, moved: 60 });
    expect(handoffProgress(status(4, false, [node('n1', 64, 64), node('n4', 64, 64)]), 4, 64)).toEqual({
      done: true,
      moved: 64,
      moving: 64,
      percent: 100,
    });
  });

  it('waits for the status of the applied epoch, and leaves dead nodes out', () => {
    expect(handoffProgress(status(3, false, [node('n1', 128, 128)]), 4, 64).done).toBe(false);
    expect(handoffProgress(status(5, false, [node('n1', 128, 128), node('n2', 64, 0, false)]), 4, 64).done).toBe(true);
  });

  it('is done at once for a change that moves nothing, once the ring is settled', () => {
    expect(handoffProgress(status(4, false, [node('n1', 256, 256)]), 4, 0)).toEqual({ done: true, moved: 0, moving: 0, percent: 100 });
    expect(handoffProgress(status(4, true, [node('n1', 256, 256)]), 4, 0)).toMatchObject({ done: false, percent: 0 });
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
