/**
 * The served OpenAPI document: valid OpenAPI 3.1, in step with the routes the app serves, every
 * operation with a summary, security and examples, and the README's curl calls in it. A failure
 * lists every operation that lacks the checked thing.
 */
import { readFile } from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_RING_NODES } from '../../../cluster/hash-ring.ts';
import { httpStatusOf, type ErrorCode } from '../../../edge-api/error-codes.ts';
import { ADMIN, closeEdges, startEdge, type Edge } from './harness.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

interface Operation {
  /** `METHOD /path/{param}`, as the failure lists name it. */
  readonly key: string;
  readonly method: string;
  readonly path: string;
  readonly op: Record<string, any>;
  /** Path-level parameters (apply to every operation of the path). */
  readonly pathParameters: readonly any[];
}

let edge: Edge;
let doc: Record<string, any>;
let operations: Operation[];

beforeAll(async () => {
  edge = startEdge();
  const res = await edge.app.request('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = (await res.json()) as Record<string, any>;
  operations = Object.entries(doc.paths ?? {}).flatMap(([path, item]: [string, any]) =>
    METHODS.filter((m) => item[m] !== undefined).map((m) => ({
      key: `${m.toUpperCase()} ${path}`,
      method: m,
      path,
      op: item[m],
      pathParameters: item.parameters ?? [],
    })),
  );
});
afterAll(closeEdges);

/** `METHOD /path/{param}` of every route the app serves under /v1: handlers, not `use` middleware (method ALL, `*` paths). */
function servedV1(): string[] {
  const keys = edge.app.routes
    .filter((r) => r.method !== 'ALL' && !r.path.includes('*') && r.path.startsWith('/v1/'))
    .map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`);
  return [...new Set(keys)].sort();
}

/** True when the media type objects of `content` all carry an example (`example` or a non-empty `examples`). */
function everyMediaTypeHasExample(content: Record<string, any> | undefined): boolean {
  const types = Object.values(content ?? {});
  return types.length > 0 && types.every((mt) => mt.example !== undefined || Object.keys(mt.examples ?? {}).length > 0);
}

/** The example values of a media type object. */
const examplesOf = (mt: Record<string, any>): unknown[] =>
  mt.example !== undefined ? [mt.example] : Object.values(mt.examples ?? {}).map((e: any) => e.value);

/** `key: what` for every operation where `problem(op)` names a problem. */
function lacking(problem: (o: Operation) => string | undefined): string[] {
  return operations.flatMap((o) => {
    const p = problem(o);
    return p === undefined ? [] : [`${o.key}: ${p}`];
  });
}

describe('GET /openapi.json', () => {
  it('is valid OpenAPI 3.1 by the OpenAPI schema validator', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? [], 'schema errors').toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it('documents every /v1 route the app serves', () => {
    const documented = new Set(operations.map((o) => o.key));
    expect(servedV1().length).toBeGreaterThan(20);
    expect(
      servedV1().filter((k) => !documented.has(k)),
      'served but not in the document',
    ).toEqual([]);
  });

  it('serves every operation it documents', () => {
    const served = new Set(servedV1());
    expect(
      operations.map((o) => o.key).filter((k) => !served.has(k)),
      'in the document but not served',
    ).toEqual([]);
  });

  it('gives every operation a summary and tags', () => {
    expect(
      lacking((o) => {
        const missing = [
          ...(typeof o.op.summary === 'string' && o.op.summary.trim() !== '' ? [] : ['no summary']),
          ...(Array.isArray(o.op.tags) && o.op.tags.length > 0 ? [] : ['no tags']),
        ];
        return missing.length > 0 ? missing.join(', ') : undefined;
      }),
    ).toEqual([]);
  });

  it('gives every operation a security requirement naming declared schemes', () => {
    const schemes = new Set(Object.keys(doc.components?.securitySchemes ?? {}));
    expect(schemes.size).toBeGreaterThan(0);
    expect(
      lacking((o) => {
        const security: Record<string, unknown>[] = o.op.security ?? doc.security ?? [];
        if (security.length === 0) return 'no security requirement';
        const unknown = security.flatMap((req) => Object.keys(req)).filter((name) => !schemes.has(name));
        return unknown.length > 0 ? `undeclared scheme ${unknown.join(', ')}` : undefined;
      }),
    ).toEqual([]);
  });

  it('declares every path parameter', () => {
    expect(
      lacking((o) => {
        const declared = new Set([...o.pathParameters, ...(o.op.parameters ?? [])].filter((p) => p.in === 'path').map((p) => p.name));
        const missing = [...o.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).filter((name) => !declared.has(name));
        return missing.length > 0 ? `path parameter ${missing.join(', ')} not declared` : undefined;
      }),
    ).toEqual([]);
  });

  it('gives every operation a success response with an example (none for a 204)', () => {
    expect(
      lacking((o) => {
        const successes = Object.entries(o.op.responses ?? {}).filter(([status]) => /^2\d\d$/.test(status));
        if (successes.length === 0) return 'no success response';
        const bad = successes.filter(([status, r]: [string, any]) => status !== '204' && !everyMediaTypeHasExample(r.content));
        return bad.length > 0 ? `no example for ${bad.map(([s]) => s).join(', ')}` : undefined;
      }),
    ).toEqual([]);
  });

  it('gives every error response an example in the error shape, with a code of that status', () => {
    expect(
      lacking((o) => {
        const errors = Object.entries(o.op.responses ?? {}).filter(([status]) => /^[45]\d\d$/.test(status));
        if (errors.length === 0) return 'no error responses';
        const problems: string[] = [];
        for (const [status, r] of errors as [string, any][]) {
          if (!everyMediaTypeHasExample(r.content)) {
            problems.push(`no example for ${status}`);
            continue;
          }
          for (const value of Object.values(r.content as Record<string, any>).flatMap(examplesOf) as any[]) {
            const code = value?.error?.code as ErrorCode | undefined;
            if (typeof code !== 'string' || typeof value.error.message !== 'string')
              problems.push(`${status} example not {error: {code, message}}`);
            else if (String(httpStatusOf(code)) !== status) problems.push(`${status} example has code ${code} (${httpStatusOf(code)})`);
          }
        }
        return problems.length > 0 ? problems.join('; ') : undefined;
      }),
    ).toEqual([]);
  });

  it('gives every documented request body an example', () => {
    // A declared route reads its JSON body through declareRoute's `jsonBody` step (declare-route.ts).
    const readsBody = new Set(
      edge.app.routes
        .filter((r) => r.method !== 'ALL' && r.handler.name === 'jsonBody')
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`),
    );
    expect(
      lacking((o) => {
        if (o.op.requestBody === undefined) return readsBody.has(o.key) ? 'reads a body that is not documented' : undefined;
        return everyMediaTypeHasExample(o.op.requestBody.content) ? undefined : 'no request example';
      }),
    ).toEqual([]);
  });

  it("contains every call of the README's curl examples", async () => {
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    const calls = readme
      .split('\n')
      .filter((line) => /(^|[\s;|&(])curl\s/.test(line) && line.includes('localhost:8080'))
      .map((line) => {
        const method = /\s-X\s*([A-Z]+)/.exec(line)?.[1] ?? 'GET';
        const path = /localhost:8080(\/[^\s"'?#]*)/.exec(line)![1]!;
        return { method, path };
      });
    expect(calls.length).toBeGreaterThanOrEqual(8);
    const matches = (template: string, path: string) => {
      const t = template.split('/');
      const p = path.split('/');
      return t.length === p.length && t.every((seg, i) => (/^\{\w+\}$/.test(seg) ? p[i] !== '' : seg === p[i]));
    };
    expect(
      calls
        .filter((c) => !operations.some((o) => o.method === c.method.toLowerCase() && matches(o.path, c.path)))
        .map((c) => `${c.method} ${c.path}`),
      'README curl calls not in the document',
    ).toEqual([]);
  });

  it('documents 413 and 415, with the messages the edge sends, on every operation that takes a body', async () => {
    const withBody = operations.filter((o) => o.op.requestBody !== undefined);
    expect(withBody.length).toBeGreaterThan(10);
    const example = (o: Operation, status: string, code: string) =>
      o.op.responses?.[status]?.content?.['application/json']?.examples?.[code]?.value;
    expect(
      lacking((o) => {
        if (o.op.requestBody === undefined) return undefined;
        const missing = [
          ...(example(o, '413', 'payload_too_large') === undefined ? ['413 payload_too_large'] : []),
          ...(example(o, '415', 'unsupported_media_type') === undefined ? ['415 unsupported_media_type'] : []),
        ];
        return missing.length > 0 ? `no ${missing.join(', ')}` : undefined;
      }),
    ).toEqual([]);
    // The documented messages are the ones sent (the harness runs with the default limit, 64 KiB).
    const tooLarge = await edge.json('PUT', '/v1/homes/h1', { body: { name: 'x'.repeat(70_000) } });
    expect(tooLarge.status).toBe(413);
    expect(example(withBody[0]!, '413', 'payload_too_large')).toEqual(tooLarge.body);
    // Bytes: a string body would be sent as text/plain.
    const noType = await edge.app.request('/v1/homes/h1', {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}` },
      body: new TextEncoder().encode('{}'),
    });
    expect(noType.status).toBe(415);
    expect(example(withBody[0]!, '415', 'unsupported_media_type')).toEqual(await noType.json());
  });

  it('gives every 401 an example of each token refusal, and every 429 its Retry-After header', () => {
    expect(
      lacking((o) => {
        const examples = Object.keys(o.op.responses?.['401']?.content?.['application/json']?.examples ?? {});
        const missing = ['unauthenticated', 'token_expired', 'token_revoked'].filter((code) => !examples.includes(code));
        if (missing.length > 0) return `401 lacks ${missing.join(', ')}`;
        return o.op.responses?.['429']?.headers?.['Retry-After'] === undefined ? '429 without Retry-After' : undefined;
      }),
    ).toEqual([]);
  });

  it('names a field of the operation itself in the 400 example of every operation that takes a body or a query', () => {
    const resolve = (schema: any): any => (schema?.$ref ? doc.components.schemas[schema.$ref.split('/').pop()] : schema);
    expect(
      lacking((o) => {
        const parameters = [...o.pathParameters, ...(o.op.parameters ?? [])];
        const takesQuery = parameters.some((p) => p.in === 'query');
        if (o.op.requestBody === undefined && !takesQuery) return undefined;
        const own = new Set([
          ...parameters.map((p) => p.name as string),
          ...Object.keys(resolve(o.op.requestBody?.content?.['application/json']?.schema)?.properties ?? {}),
        ]);
        const value = o.op.responses?.['400']?.content?.['application/json']?.examples?.invalid_argument?.value;
        const field = String(value?.error?.details?.field ?? '');
        const top = /^[^.[]+/.exec(field)?.[0] ?? '';
        if (!own.has(top)) return `400 example names ${field || 'no field'}, not one of ${[...own].join(', ')}`;
        return value.error.message.startsWith(`${field} `) ? undefined : '400 example message does not name its field';
      }),
    ).toEqual([]);
  });

  it('documents no invalid_argument for an operation that takes no input (no parameters, no body)', () => {
    const inputless = operations.filter(
      (o) => o.op.requestBody === undefined && [...o.pathParameters, ...(o.op.parameters ?? [])].every((p) => p.in === 'header'),
    );
    expect(inputless.map((o) => o.key)).toContain('GET /v1/admin/cluster');
    expect(
      lacking((o) =>
        inputless.includes(o) && o.op.responses?.['400'] !== undefined ? `400 documented: ${o.op.responses['400'].description}` : undefined,
      ),
    ).toEqual([]);
  });

  it('documents the bound of a ring change, and a plan example that adds up', () => {
    const change = doc.components.schemas.RingChange;
    expect(change.properties.weights.maxProperties).toBe(MAX_RING_NODES);
    for (const list of ['add', 'drain', 'remove']) expect(change.properties[list].maxItems, list).toBe(MAX_RING_NODES);
    const status = doc.paths['/v1/admin/cluster'].get.responses['200'].content['application/json'].example;
    const planOp = doc.paths['/v1/admin/ring/plan'].post;
    const plan = planOp.responses['200'].content['application/json'].example;
    const added = planOp.requestBody.content['application/json'].example.add.map((a: { id: string }) => a.id);
    expect(plan.flows.reduce((sum: number, f: { shards: number }) => sum + f.shards, 0)).toBe(plan.moving);
    expect(plan.nextNodes.map((n: { id: string }) => n.id).sort()).toEqual(
      [...status.nodes.map((n: { id: string }) => n.id), ...added].sort(),
    );
  });
});

describe('GET /openapi.json caching', () => {
  it('builds the document once, and answers with an ETag, no-cache, and 304 to a matching If-None-Match (weak too)', async () => {
    const fresh = startEdge();
    const build = vi.spyOn(fresh.app, 'getOpenAPI31Document');
    const first = await fresh.app.request('/openapi.json');
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const text = await first.text();
    const second = await fresh.app.request('/openapi.json');
    expect(await second.text()).toBe(text);
    expect(second.headers.get('etag')).toBe(etag);
    for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await fresh.app.request('/openapi.json', { headers: { 'if-none-match': header } });
      expect(again.status, header).toBe(304);
      expect(again.headers.get('etag')).toBe(etag);
      expect(await again.text()).toBe('');
    }
    expect((await fresh.app.request('/openapi.json', { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    expect(build).toHaveBeenCalledTimes(1);
  });
});
