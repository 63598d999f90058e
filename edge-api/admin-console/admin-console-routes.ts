/** The admin console: a page and its assets at `/admin`, served by the node (no build step, no CDN). */
import { readdir, readFile } from 'node:fs/promises';
import type { Context } from 'hono';
import type { EdgeApp } from '../http/api-schemas.ts';
import { etagMatches, strongEtag } from '../http/etag-match.ts';
import { errorResponse, notFound } from '../http/http-error.ts';

/** Where the page and its assets live: next to this module, in source (tests) and in dist (the build copies it). */
export const CONSOLE_STATIC_DIR = new URL('./static/', import.meta.url);

/** The file types the console is made of; any other file in the directory is not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
};

/** A servable name: one path segment, no dot files, a known extension. */
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.([a-z]+)$/;

/**
 * The page's policy: everything from this origin only, no inline script (nor inline handlers), no
 * plugins, no framing. Styles set through the CSSOM (shard colours, bar widths) are not inline
 * styles and need no exception.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly contentType: string;
  readonly etag: string;
}

/** Reads every servable file of `dir` once: the allow-list is what is there (by name and type) at first use. */
async function loadAssets(dir: URL): Promise<ReadonlyMap<string, Asset>> {
  const assets = new Map<string, Asset>();
  // No directory (a dist built without copying it): nothing to serve, every path answers 404.
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    const type = entry.isFile() ? CONTENT_TYPES[ASSET_NAME.exec(entry.name)?.[1] ?? ''] : undefined;
    if (type === undefined) continue;
    const body = new Uint8Array(await readFile(new URL(entry.name, dir)));
    const etag = strongEtag(body);
    assets.set(entry.name, { body, contentType: type, etag });
  }
  return assets;
}

/** Headers of every console response; the page also gets the CSP and the framing refusal. */
function send(c: Context, asset: Asset, page: boolean): Response {
  c.header('Cache-Control', 'no-cache');
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('ETag', asset.etag);
  if (page) {
    c.header('Content-Security-Policy', CONSOLE_CSP);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
  }
  // no-cache revalidates: an unchanged file answers 304 without its body.
  if (etagMatches(c.req.header('if-none-match'), asset.etag)) return c.body(null, 304);
  c.header('Content-Type', asset.contentType);
  return c.body(asset.body, 200);
}

/**
 * Registers `GET /admin` (and `/admin/`: the page) and `GET /admin/assets/<file>` (its scripts,
 * styles and icon). Unauthenticated: the files hold no data; the page's API calls carry the admin
 * token the operator types. Files are read from `dir` at the first request and kept in memory;
 * a name not in the directory, a dot file or a path with more segments answers 404 in the edge's
 * error shape.
 */
export function registerAdminConsole(app: EdgeApp, dir: URL = CONSOLE_STATIC_DIR): void {
  let loaded: Promise<ReadonlyMap<string, Asset>> | undefined;
  const assets = (): Promise<ReadonlyMap<string, Asset>> => {
    // A failed read (a dist without the directory) is retried by the next request, not cached.
    loaded ??= loadAssets(dir).catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded;
  };

  const page = async (c: Context): Promise<Response> => {
    const index = (await assets()).get('index.html');
    return index ? send(c, index, true) : errorResponse(c, notFound('the admin console is not installed'));
  };
  app.get('/admin', page);
  app.get('/admin/', page);

  app.get('/admin/assets/*', async (c) => {
    const name = c.req.path.slice('/admin/assets/'.length);
    const asset = name === 'index.html' ? undefined : (await assets()).get(name);
    return asset ? send(c, asset, false) : errorResponse(c, notFound('no such admin console asset'));
  });
}
