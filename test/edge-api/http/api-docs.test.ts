/** `/docs` (Swagger UI from the installed package, nothing from another host), its asset allow-list, and the landing page at `/`. */
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { gunzipSync } from 'node:zlib';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS_ASSET_NAMES } from '../../../edge-api/http/api-docs.ts';
import { closeEdges, startEdge, type Edge } from './harness.ts';

const swaggerUiDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

let edge: Edge;
beforeAll(() => {
  edge = startEdge();
});
afterAll(closeEdges);

const get = (path: string, headers: Record<string, string> = {}) => edge.app.request(path, { headers });

/** The local URLs a page references in `src` and `href` attributes. */
const referenced = (html: string): string[] => [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);

/** Any absolute URL (`http://`, `https://`) or protocol-relative one (`//host`) in an attribute. */
const OTHER_HOST = /https?:\/\/|\b(?:src|href)="\/\//i;

const CONTENT_TYPE: Record<string, RegExp> = {
  css: /^text\/css; charset=utf-8$/,
  js: /^text\/javascript; charset=utf-8$/,
  png: /^image\/png$/,
};

async function expectNotFound(res: Response): Promise<void> {
  expect(res.status).toBe(404);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await res.json();
  expect(body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
  expect(JSON.stringify(body)).not.toContain('swagger-api');
}

describe('GET /docs', () => {
  it('serves our page, with a CSP that allows scripts, styles and requests from this node only', async () => {
    const res = await get('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/i);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:"]) {
      expect(csp).toContain(directive);
    }
    const html = await res.text();
    expect(html).toContain('id="swagger-ui"');
    // No inline script: every <script> loads a file (the CSP would refuse an inline one).
    expect([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]).every((tag) => / src="\/docs\/assets\/[^"]+"/.test(tag))).toBe(true);
    expect(html).not.toMatch(OTHER_HOST);
    expect(html).not.toMatch(/\bstyle="/);
  });

  it('serves every asset the page references, with its content type, caching headers and no auth', async () => {
    const html = await (await get('/docs')).text();
    const assets = referenced(html).filter((u) => u.startsWith('/docs/assets/'));
    expect(assets).toEqual(
      expect.arrayContaining(['/docs/assets/swagger-ui.css', '/docs/assets/swagger-ui-bundle.js', '/docs/assets/docs-init.js']),
    );
    for (const url of assets) {
      const res = await get(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type'), url).toMatch(CONTENT_TYPE[url.split('.').pop()!]!);
      // Fixed names: every file is revalidated by its ETag, so an upgrade never pairs a new script with an old bundle.
      expect(res.headers.get('cache-control'), url).toBe('no-cache');
      expect(res.headers.get('etag'), url).toMatch(/^"[\w-]+"$/);
      expect(res.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect((await res.arrayBuffer()).byteLength, url).toBeGreaterThan(0);
    }
    // Every local link of the page answers too (the admin console is another module's: only that it is linked).
    for (const url of referenced(html).filter((u) => !u.startsWith('/docs/assets/') && u !== '/admin')) {
      expect((await get(url)).status, url).toBe(200);
    }
  });

  it('serves Swagger UI byte for byte from the installed swagger-ui-dist', async () => {
    for (const name of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
      const served = new Uint8Array(await (await get(`/docs/assets/${name}`)).arrayBuffer());
      expect(Buffer.from(served).equals(await readFile(join(swaggerUiDir, name))), name).toBe(true);
    }
    // Its stylesheet's images are inline data: nothing to fetch from elsewhere.
    const css = await (await get('/docs/assets/swagger-ui.css')).text();
    const urls = [...css.matchAll(/url\(\s*["']?([^"')]*)/g)].map((m) => m[1]!);
    expect(urls.filter((u) => !u.startsWith('data:'))).toEqual([]);
  });

  it('has an init script and stylesheet of ours that name no other host', async () => {
    for (const name of ['docs-init.js', 'edge.css']) {
      expect(await (await get(`/docs/assets/${name}`)).text(), name).not.toMatch(/https?:\/\//);
    }
  });

  it('starts Swagger UI on /openapi.json with no online validator, no document from the query, and requests to this origin only', async () => {
    const script = await (await get('/docs/assets/docs-init.js')).text();
    const calls: Record<string, any>[] = [];
    const SwaggerUIBundle = Object.assign((config: Record<string, any>) => calls.push(config), { presets: { apis: 'apis-preset' } });
    const window: Record<string, unknown> = {};
    runInNewContext(script, {
      window,
      SwaggerUIBundle,
      URL,
      location: { href: 'http://10.0.0.5:8080/docs', origin: 'http://10.0.0.5:8080' },
    });

    expect(calls).toHaveLength(1);
    const config = calls[0]!;
    expect(config).toMatchObject({
      url: '/openapi.json',
      dom_id: '#swagger-ui',
      validatorUrl: null,
      queryConfigEnabled: false,
      layout: 'BaseLayout',
      presets: ['apis-preset'],
    });
    expect(config).not.toHaveProperty('configUrl');
    const intercept = config.requestInterceptor as (r: { url: string }) => { url: string };
    for (const url of ['/openapi.json', '/v1/homes/flat-1', 'http://10.0.0.5:8080/v1/tokens']) {
      expect(intercept({ url })).toEqual({ url });
    }
    for (const url of ['https://validator.swagger.io/validator', 'http://10.0.0.5:9090/v1/tokens', '//evil.example/x']) {
      expect(() => intercept({ url }), url).toThrow(/only sends requests to http:\/\/10\.0\.0\.5:8080/);
    }
  });

  it('redirects /docs/ to /docs', async () => {
    const res = await get('/docs/');
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe('/docs');
  });
});

describe('GET /docs/assets/:name', () => {
  it('answers 304 to a matching If-None-Match', async () => {
    const first = await get('/docs/assets/swagger-ui.css');
    const etag = first.headers.get('etag')!;
    const again = await get('/docs/assets/swagger-ui.css', { 'if-none-match': `"other", ${etag}` });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    expect((await get('/docs/assets/swagger-ui.css', { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('matches a weak If-None-Match (W/"…", as a compressing proxy rewrites it) and *', async () => {
    for (const name of ['swagger-ui.css', 'docs-init.js']) {
      const etag = (await get(`/docs/assets/${name}`)).headers.get('etag')!;
      expect((await get(`/docs/assets/${name}`, { 'if-none-match': `W/${etag}` })).status, name).toBe(304);
      expect((await get(`/docs/assets/${name}`, { 'if-none-match': `"x", W/${etag}` })).status, name).toBe(304);
      expect((await get(`/docs/assets/${name}`, { 'if-none-match': '*' })).status, name).toBe(304);
      expect((await get(`/docs/assets/${name}`, { 'if-none-match': 'W/"x"' })).status, name).toBe(200);
    }
  });

  it('sends text gzipped to a client that accepts it, and as is to one that refuses it', async () => {
    const plain = Buffer.from(await (await get('/docs/assets/swagger-ui-bundle.js')).arrayBuffer());
    const zipped = await get('/docs/assets/swagger-ui-bundle.js', { 'accept-encoding': 'br, gzip' });
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(zipped.headers.get('vary')).toBe('Accept-Encoding');
    const bytes = Buffer.from(await zipped.arrayBuffer());
    expect(bytes.length).toBeLessThan(plain.length / 2);
    expect(gunzipSync(bytes).equals(plain)).toBe(true);
    const refused = await get('/docs/assets/swagger-ui-bundle.js', { 'accept-encoding': 'gzip;q=0, br' });
    expect(refused.headers.get('content-encoding')).toBeNull();
    expect(Buffer.from(await refused.arrayBuffer()).equals(plain)).toBe(true);
  });

  it('serves only its allow-list: package files not on it, unknown names and traversals get 404 in the one error shape', async () => {
    expect([...DOCS_ASSET_NAMES].sort()).toEqual(
      ['docs-init.js', 'edge.css', 'favicon-16x16.png', 'favicon-32x32.png', 'swagger-ui-bundle.js', 'swagger-ui.css'].sort(),
    );
    const refused = [
      'package.json',
      'index.html',
      'swagger-initializer.js', // the package's own: it loads petstore.swagger.io
      'swagger-ui.js',
      'swagger-ui-bundle.js.map',
      'oauth2-redirect.html',
      'SWAGGER-UI.CSS',
      'swagger-ui.css%00',
      '..%2fpackage.json',
      '..%2F..%2Fpackage.json',
      '%2e%2e%2fpackage.json',
      '..%5cpackage.json',
      '%2fetc%2fpasswd',
      '..%252fpackage.json',
      'constructor',
      '__proto__',
      'x/../../package.json',
      'swagger-ui.css/',
      'a/b',
      '',
    ];
    for (const name of refused) await expectNotFound(await get(`/docs/assets/${name}`));
  });

  it('refuses a raw ../ path sent to the real server, unnormalised', async () => {
    const server: ServerType = serve({ fetch: edge.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      for (const path of ['/docs/assets/../../package.json', '/docs/assets/..%2f..%2fpackage.json', '/docs/assets/%2e%2e/package.json']) {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          });
          req.on('error', reject);
          req.end();
        });
        expect(status, path).toBe(404);
        expect(JSON.parse(body), path).toMatchObject({ error: { code: 'not_found' } });
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('GET /', () => {
  it('is an HTML landing page linking to /docs, /admin and /openapi.json, in English with a line of 中文', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/i);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('<html lang="en">');
    const links = referenced(html);
    expect(links).toEqual(expect.arrayContaining(['/docs', '/admin', '/openapi.json']));
    expect(html).toMatch(/lang="zh"[^>]*>[^<]*[\u4e00-\u9fff]/);
    expect(html).not.toMatch(OTHER_HOST);
    expect(html).not.toMatch(/<script\b/);
    for (const url of links.filter((u) => u !== '/admin')) expect((await get(url)).status, url).toBe(200);
  });

  it('answers other unknown top-level paths with the one 404', async () => {
    await expectNotFound(await get('/index.html'));
    await expectNotFound(await get('/docs/swagger-ui.css'));
  });
});
