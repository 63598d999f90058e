import type { Context } from 'hono';
import { describe, expect, it } from 'vitest';
import { requestBodyLimit } from '../../../edge-api/http/request-body-limit.ts';

/** A context whose raw request must not be touched: reading it is what costs on @hono/node-server. */
function untouchableContext(method: string): Context {
  return {
    req: {
      method,
      get raw(): never {
        throw new Error('c.req.raw was read');
      },
    },
  } as unknown as Context;
}

describe('requestBodyLimit', () => {
  it('passes GET and HEAD on without reading the raw request', async () => {
    const limit = requestBodyLimit(16);
    for (const method of ['GET', 'HEAD']) {
      let called = false;
      await limit(untouchableContext(method), async () => {
        called = true;
      });
      expect(called, method).toBe(true);
    }
  });

  it('checks every other method', async () => {
    const limit = requestBodyLimit(16);
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      await expect(
        limit(untouchableContext(method), async () => {}),
        method,
      ).rejects.toThrow(/c\.req\.raw was read/);
    }
  });
});
