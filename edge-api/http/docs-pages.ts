/** The text of the edge's own pages: the landing page at `/`, the `/docs` page and its Swagger UI init script, and their stylesheet. */
import { OPENAPI_PATH } from './openapi-document.ts';

/** Where `/docs` and the landing page load their assets from. */
export const DOCS_ASSETS = '/docs/assets/';

/**
 * Swagger UI's settings, as the init script passes them. No online validator badge (it would send
 * the document to validator.swagger.io), no `?url=`/`?configUrl=` from the query string (the page
 * shows this node's document only), no top bar to load another document from.
 */
export const SWAGGER_UI_CONFIG = {
  url: OPENAPI_PATH,
  dom_id: '#swagger-ui',
  deepLinking: true,
  layout: 'BaseLayout',
  validatorUrl: null,
  queryConfigEnabled: false,
  tryItOutEnabled: false,
  persistAuthorization: false,
  displayRequestDuration: true,
} as const;

/**
 * The init script (a file, not an inline script, so the page's CSP allows scripts from this
 * origin only). Its request interceptor refuses any request ("Try it out" included) to another
 * origin; the CSP's `connect-src 'self'` refuses them too.
 */
export const DOCS_INIT_JS = `// Swagger UI over this node's ${OPENAPI_PATH}: no online validator, no document from the query string, requests to this origin only.
'use strict';
(function () {
  var config = ${JSON.stringify(SWAGGER_UI_CONFIG)};
  config.presets = [SwaggerUIBundle.presets.apis];
  config.requestInterceptor = function (request) {
    if (new URL(request.url, location.href).origin !== location.origin) {
      throw new Error('the API reference only sends requests to ' + location.origin);
    }
    return request;
  };
  window.ui = SwaggerUIBundle(config);
})();
`;

/** Our stylesheet, for `/` and `/docs` (a file: the pages' CSP allows no inline style). */
export const EDGE_CSS = `body { margin: 0; background: #fafafa; font-family: system-ui, sans-serif; color: #1b1b1b; }
.landing { max-width: 44rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; }
.landing a { color: #1f5fbf; }
.landing li { margin: 0.4rem 0; }
.docs-header { padding: 0.6rem 1rem; border-bottom: 1px solid #ddd; background: #fff; font-size: 0.95rem; }
.docs-header a { margin-right: 1rem; color: #1f5fbf; }
`;

const head = (title: string, extra = '') => `<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" type="image/png" href="${DOCS_ASSETS}favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="${DOCS_ASSETS}favicon-16x16.png" sizes="16x16">
${extra}<link rel="stylesheet" href="${DOCS_ASSETS}edge.css">
</head>`;

/** The `/docs` page: Swagger UI's stylesheet and bundle, then our init script, all from this node. */
export const DOCS_HTML = `<!doctype html>
<html lang="en">
${head('API reference · IoT actor runtime', `<link rel="stylesheet" href="${DOCS_ASSETS}swagger-ui.css">\n`)}
<body>
<nav class="docs-header"><a href="/">Home</a><a href="/admin">Admin console</a><a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a></nav>
<div id="swagger-ui"></div>
<script src="${DOCS_ASSETS}swagger-ui-bundle.js"></script>
<script src="${DOCS_ASSETS}docs-init.js"></script>
</body>
</html>
`;

/** The landing page at `/`: where the API reference, the admin console and the document are. */
export const LANDING_HTML = `<!doctype html>
<html lang="en">
${head('IoT actor runtime')}
<body>
<main class="landing">
<h1>IoT actor runtime</h1>
<p>This node serves the app and operator HTTP API.</p>
<p lang="zh">物联网 Actor 运行时：<a href="/docs">API 文档</a> · <a href="/admin">管理控制台</a></p>
<ul>
<li><a href="/docs">API reference</a>: every operation with its examples (Swagger UI, served by this node).</li>
<li><a href="/admin">Admin console</a>: the cluster, resizing it, homes (sign in with the admin token).</li>
<li><a href="${OPENAPI_PATH}">OpenAPI 3.1 document</a> (JSON).</li>
<li><a href="/healthz">/healthz</a> and <a href="/readyz">/readyz</a>: liveness and readiness.</li>
</ul>
</main>
</body>
</html>
`;
