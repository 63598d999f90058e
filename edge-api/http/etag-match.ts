/** `If-None-Match` against a served entity tag: the weak comparison of RFC 9110, for GETs of documents and assets. */

/**
 * Whether an `If-None-Match` header matches `etag` (a strong tag `"…"`): `*`, the tag, or the tag
 * marked weak (`W/"…"`, as proxies that compress rewrite it), alone or in a comma-separated list.
 */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((part) => {
    const tag = part.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
