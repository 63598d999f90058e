import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterEach, describe, expect, it } from 'vitest';
import { CONSOLE_STATIC_DIR, registerAdminConsole } from '../../../edge-api/admin-console/admin-console-routes.ts';
import { handleErrors, routeNotFound } from '../../../edge-api/http/http-error.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { closeEdges, startEdge } from '../http/harness.ts';

afterEach(closeEdges);

const get = (path: string, headers: Record<string, string> = {}) => startEdge().app.request(path, { headers });

/** The CSP directives of a header value, by name. */
function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0] !== '')
      .map(([name, ...values]) => [name!, values]),
  );
}

async function expectNotFound(res: Response): Promise<void> {
  expect(res.status).toBe(404);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await res.json();
  expect(body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
}

const staticFiles = async (): Promise<string[]> => (await readdir(CONSOLE_STATIC_DIR)).filter((f) => !f.startsWith('.'));

describe('admin console: the page', () => {
  it.each(['/admin', '/admin/'])('serves %s as HTML without a token, with a strict CSP and no framing', async (path) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const csp = directives(res.headers.get('content-security-policy') ?? '');
    expect(csp.get('default-src')).toEqual(["'self'"]);
    expect(csp.get('script-src')).toEqual(["'self'"]);
    expect(csp.get('style-src')).toEqual(["'self'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp.get('object-src')).toEqual(["'none'"]);
    expect(res.headers.get('content-security-policy')).not.toMatch(/unsafe-|\*|https?:/);
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain('<html lang="en">');
  });

  it('has no inline script, handler or style: the CSP would block them', async () => {
    const html = await (await get('/admin')).text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/admin\/assets\/[^"]+\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/javascript:/i);
    // No framework or font from elsewhere: the console works without internet access.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
  });

  it('carries every data-testid of the contract', async () => {
    const html = await (await get('/admin')).text();
    const ids = new Set([...html.matchAll(/data-testid="([^"]+)"/g)].map((m) => m[1]));
    // node-row, device-row, rule-row and decision-row are built per item by the scripts.
    for (const id of [
      'sign-in-token',
      'sign-in-button',
      'lang-switch',
      'ring-epoch',
      'shard-map',
      'plan-form',
      'plan-add-id',
      'plan-button',
      'plan-moves',
      'apply-button',
      'handoff-progress',
      'home-search',
    ]) {
      expect(ids, id).toContain(id);
    }
    expect(html).toMatch(/data-testid="handoff-progress"[^>]*data-state="moving"/);
    const scripts = (
      await Promise.all((await staticFiles()).filter((f) => f.endsWith('.js')).map((f) => readFile(new URL(f, CONSOLE_STATIC_DIR), 'utf8')))
    ).join('\n');
    for (const id of ['node-row', 'device-row', 'rule-row', 'decision-row']) expect(scripts, id).toContain(`'data-testid': '${id}'`);
  });
});

describe('admin console: assets', () => {
  it('serves every asset the page and its modules reference, each with its content type', async () => {
    const html = await (await get('/admin')).text();
    const referenced = new Set([...html.matchAll(/(?:src|href)="(\/admin\/assets\/[^"]+)"/g)].map((m) => m[1]!));
    // Follow the module graph: every relative import of a served script must be served too.
    const queue = [...referenced];
    const { app } = startEdge();
    const types: Record<string, string> = {
      js: 'text/javascript; charset=utf-8',
      css: 'text/css; charset=utf-8',
      svg: 'image/svg+xml',
    };
    while (queue.length > 0) {
      const path = queue.shift()!;
      const res = await app.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe(types[path.split('.').pop()!]);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      if (!path.endsWith('.js')) continue;
      for (const [, spec] of (await res.text()).matchAll(/^import[^'"]*'([^']+)';$/gm)) {
        expect(spec, `${path} imports ${spec}`).toMatch(/^\.\/[a-z0-9-]+\.js$/);
        const next = `/admin/assets/${spec!.slice(2)}`;
        if (!referenced.has(next)) {
          referenced.add(next);
          queue.push(next);
        }
      }
    }
    expect(referenced).toContain('/admin/assets/app.js');
    expect(referenced).toContain('/admin/assets/styles.css');
    expect(referenced).toContain('/admin/assets/i18n.js');
    // Nothing in the directory is dead weight: every file is the page or reachable from it.
    const reachable = new Set([...referenced].map((p) => p.slice('/admin/assets/'.length)));
    for (const file of await staticFiles()) if (file !== 'index.html') expect(reachable, file).toContain(file);
  });

  it('answers an unchanged asset 304 when the browser revalidates', async () => {
    const edge = startEdge();
    const first = await edge.app.request('/admin/assets/styles.css');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await edge.app.request('/admin/assets/styles.css', { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    // A proxy that compresses marks the tag weak; a list of tags may hold it: both revalidate.
    for (const header of [`W/${etag!}`, `"other", ${etag!}`]) {
      expect((await edge.app.request('/admin/assets/styles.css', { headers: { 'if-none-match': header } })).status, header).toBe(304);
    }
    const other = await edge.app.request('/admin/assets/styles.css', { headers: { 'if-none-match': '"stale"' } });
    expect(other.status).toBe(200);
  });

  it.each([
    '/admin/assets/nope.js',
    '/admin/assets/',
    '/admin/assets/index.html',
    '/admin/assets/APP.JS',
    '/admin/assets/sub/app.js',
    '/admin/assets/..%2fadmin-console-routes.ts',
    '/admin/assets/%2e%2e%2fadmin-console-routes.ts',
    '/admin/assets/%2e%2e/%2e%2e/package.json',
    '/admin/assets/..%5cadmin-console-routes.ts',
    '/admin/assets/app.js%00.css',
    '/admin/assets/../admin-console-routes.ts',
    '/admin/static/app.js',
    '/admin/index.html',
    '/admin-console-routes.ts',
  ])('answers %s 404 in the error shape', async (path) => {
    await expectNotFound(await get(path));
  });

  it('serves GET only', async () => {
    const res = await startEdge().app.request('/admin', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    await expectNotFound(res);
  });
});

describe('admin console: the allow-list', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  function consoleApp(dir: URL) {
    const app = new OpenAPIHono();
    registerAdminConsole(app, dir);
    app.notFound(routeNotFound);
    app.onError(handleErrors(silentLogger));
    return app;
  }

  it('serves only page, script, style and icon files at the top of the directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'admin-console-'));
    dirs.push(dir);
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    await writeFile(join(dir, 'app.js'), 'export {};');
    await writeFile(join(dir, 'secret.txt'), 'secret');
    await writeFile(join(dir, 'notes.md'), '# notes');
    await writeFile(join(dir, 'types.d.ts'), 'export {};');
    await writeFile(join(dir, '.hidden.js'), 'export {};');
    await writeFile(join(dir, 'Upper.js'), 'export {};');
    await mkdir(join(dir, 'nested.js'));
    await writeFile(join(dir, 'nested.js', 'inner.js'), 'export {};');
    const app = consoleApp(pathToFileURL(`${dir}/`));
    expect((await app.request('/admin')).status).toBe(200);
    expect((await app.request('/admin/assets/app.js')).status).toBe(200);
    for (const name of ['secret.txt', 'notes.md', 'types.d.ts', '.hidden.js', 'Upper.js', 'nested.js', 'nested.js/inner.js']) {
      await expectNotFound(await app.request(`/admin/assets/${name}`));
    }
  });

  it('reads the files once: a file added later is not served', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'admin-console-'));
    dirs.push(dir);
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>first</title>');
    const app = consoleApp(pathToFileURL(`${dir}/`));
    expect(await (await app.request('/admin')).text()).toContain('first');
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>second</title>');
    await writeFile(join(dir, 'late.js'), 'export {};');
    expect(await (await app.request('/admin')).text()).toContain('first');
    await expectNotFound(await app.request('/admin/assets/late.js'));
  });

  it('answers 404 when the console is not installed (no directory, or no page in it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'admin-console-'));
    dirs.push(dir);
    await expectNotFound(await consoleApp(pathToFileURL(`${dir}/missing/`)).request('/admin'));
    await writeFile(join(dir, 'app.js'), 'export {};');
    await expectNotFound(await consoleApp(pathToFileURL(`${dir}/`)).request('/admin'));
  });
});
