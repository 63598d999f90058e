/** The API reference at `/docs` (assets served by the node itself) and the edge's landing page at `/`. */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Context } from 'hono';
import type { EdgeApp } from './api-schemas.ts';
import { DOCS_ASSETS, DOCS_HTML, DOCS_INIT_JS, EDGE_CSS, LANDING_HTML } from './docs-pages.ts';
import { etagMatches, strongEtag } from './etag-match.ts';
import { errorResponse, notFound } from './http-error.ts';

const gzipAsync = promisify(gzip);

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const PNG = 'image/png';

/** Where the assets come from: a file of the installed `swagger-ui-dist`, or text of ours. */
type Source = { readonly file: string } | { readonly text: string };

/**
 * Every asset `/docs/assets/:name` serves, by name: anything else is 404. A name is looked up in
 * this table, never joined to a path, so no request reaches another file.
 */
const ASSETS: ReadonlyMap<string, { readonly type: string; readonly source: Source }> = new Map([
  ['swagger-ui.css', { type: CSS, source: { file: 'swagger-ui.css' } }],
  ['swagger-ui-bundle.js', { type: JS, source: { file: 'swagger-ui-bundle.js' } }],
  ['favicon-32x32.png', { type: PNG, source: { file: 'favicon-32x32.png' } }],
  ['favicon-16x16.png', { type: PNG, source: { file: 'favicon-16x16.png' } }],
  ['docs-init.js', { type: JS, source: { text: DOCS_INIT_JS } }],
  ['edge.css', { type: CSS, source: { text: EDGE_CSS } }],
]);

/** The asset names `/docs/assets/` serves. */
export const DOCS_ASSET_NAMES: readonly string[] = [...ASSETS.keys()];

/**
 * Browsers revalidate the pages and every asset by its ETag (a 304 without the body): names are
 * fixed, so a `max-age` would let a browser pair a new page or init script with the bundle of the
 * previous `swagger-ui-dist` after an upgrade.
 */
const CACHE_CONTROL = 'no-cache';

/**
 * The pages' Content-Security-Policy: scripts, styles, fetches and images from this node only
 * (Swagger UI's stylesheet inlines its icons as `data:` images). No inline script or style: the
 * init script and our stylesheet are files.
 */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const LANDING_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Loaded {
  readonly type: string;
  readonly body: Uint8Array<ArrayBuffer>;
  /** The body gzipped, for clients that accept it (text only). */
  readonly gzipped?: Uint8Array<ArrayBuffer>;
  readonly etag: string;
}

/** The package's directory, resolved once (from source and from dist alike: Node resolves it from node_modules). */
let packageDir: string | undefined;
const swaggerUiDir = (): string => (packageDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json')));

/** Each asset read (and compressed) once per process, on its first request; a failed read is retried by the next one. */
const loaded = new Map<string, Promise<Loaded>>();

async function load(type: string, source: Source): Promise<Loaded> {
  const body = 'file' in source ? new Uint8Array(await readFile(join(swaggerUiDir(), source.file))) : new TextEncoder().encode(source.text);
  const etag = strongEtag(body);
  const gzipped = type === PNG ? undefined : new Uint8Array(await gzipAsync(body));
  return { type, body, etag, ...(gzipped === undefined ? {} : { gzipped }) };
}

function asset(name: string): Promise<Loaded> | undefined {
  const entry = ASSETS.get(name);
  if (entry === undefined) return undefined;
  let p = loaded.get(name);
  if (p === undefined) {
    p = load(entry.type, entry.source);
    loaded.set(name, p);
    p.catch(() => loaded.delete(name));
  }
  return p;
}

/** True when the client takes gzip (`Accept-Encoding: gzip`, not `gzip;q=0`). */
function acceptsGzip(c: Context): boolean {
  const m = /(?:^|,)\s*gzip\s*(?:;\s*q\s*=\s*([\d.]+))?\s*(?:,|$)/i.exec(c.req.header('accept-encoding') ?? '');
  return m !== null && (m[1] === undefined || Number(m[1]) > 0);
}

async function serveAsset(c: Context, name: string): Promise<Response> {
  const pending = asset(name);
  if (pending === undefined) return errorResponse(c, notFound(`no docs asset ${name}`));
  const a = await pending;
  const headers: Record<string, string> = {
    'Content-Type': a.type,
    'Cache-Control': CACHE_CONTROL,
    ETag: a.etag,
    'X-Content-Type-Options': 'nosniff',
  };
  if (a.gzipped) headers.Vary = 'Accept-Encoding';
  if (etagMatches(c.req.header('if-none-match'), a.etag)) return c.body(null, 304, headers);
  if (a.gzipped && acceptsGzip(c)) return c.body(a.gzipped, 200, { ...headers, 'Content-Encoding': 'gzip' });
  return c.body(a.body, 200, headers);
}

function page(c: Context, html: string, csp: string): Response {
  c.header('Cache-Control', CACHE_CONTROL);
  c.header('Content-Security-Policy', csp);
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'no-referrer');
  return c.html(html);
}

/**
 * Registers `/` (the landing page), `/docs` (Swagger UI over `/openapi.json`) and
 * `/docs/assets/:name` (the allow-listed assets). Unauthenticated: they hold no data, and the
 * API calls the reference makes carry the token the reader types into it.
 */
export function registerApiDocs(app: EdgeApp): void {
  app.get('/', (c) => page(c, LANDING_HTML, LANDING_CSP));
  app.get('/docs', (c) => page(c, DOCS_HTML, DOCS_CSP));
  app.get('/docs/', (c) => c.redirect('/docs', 301));
  app.get(`${DOCS_ASSETS}:name`, (c) => serveAsset(c, c.req.param('name')));
}
