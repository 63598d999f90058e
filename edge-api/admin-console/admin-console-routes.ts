/** The admin console: a page and its assets at `/admin`, served by the node (no build step, no CDN). */
import type { EdgeApp } from '../http/api-schemas.ts';

/** Registers `/admin` and `/admin/assets/…`. */
export function registerAdminConsole(app: EdgeApp): void {
  void app;
}
