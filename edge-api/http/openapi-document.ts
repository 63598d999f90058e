/** The API's OpenAPI 3.1 document, generated from the routes' own schemas, and the route that serves it. */
import { ADMIN_SCHEME, APP_SCHEME, type EdgeApp } from './api-schemas.ts';
import { etagMatches, strongEtag } from './etag-match.ts';

/** Where the document is served (unauthenticated: it describes the API, it holds no data). */
export const OPENAPI_PATH = '/openapi.json';

const INFO = {
  title: 'IoT actor runtime: app and operator API',
  version: '1',
  description:
    'Homes, hubs, devices (shadows and commands), automation rules and scenes, live events, app tokens, the audit log and ' +
    'the cluster ring. Every error is `{error: {code, message, details?}}` with a stable `code`; an `invalid_argument` ' +
    'lists every bad field in `details.fields`.',
};

/** Registers the security schemes and serves the document at OPENAPI_PATH; call after every route is declared. */
export function registerOpenApiDocument(app: EdgeApp): void {
  app.openAPIRegistry.registerComponent('securitySchemes', ADMIN_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'The operator token (ADMIN_TOKEN). Passes every route.',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', APP_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'An app token from POST /v1/tokens, granted homes and scopes (read, control, rules); a route lists the scope it needs.',
  });
  // Built and serialized once, on the first request: the routes do not change after start.
  let served: { readonly json: string; readonly etag: string } | undefined;
  app.get(OPENAPI_PATH, (c) => {
    served ??= serialize(app.getOpenAPI31Document({ openapi: '3.1.0', info: INFO, servers: [{ url: '/' }] }));
    // Revalidated on every use (a deploy changes it), answered 304 while it has not changed.
    c.header('Cache-Control', 'no-cache');
    c.header('ETag', served.etag);
    if (etagMatches(c.req.header('if-none-match'), served.etag)) return c.body(null, 304);
    return c.body(served.json, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });
}

function serialize(document: unknown): { json: string; etag: string } {
  const json = JSON.stringify(document);
  return { json, etag: strongEtag(json) };
}
