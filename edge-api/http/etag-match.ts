/** Entity tags of served documents and assets, and `If-None-Match` against one: the weak comparison of RFC 9110. */
import { createHash } from 'node:crypto';

/** The strong entity tag of `bytes`: 22 characters of their SHA-256 (the same on every node). */
export const strongEtag = (bytes: string | Uint8Array): string =>
  `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`;

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
