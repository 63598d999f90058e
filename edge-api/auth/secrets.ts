/** Bearer secrets: random, shown once, stored only as a SHA-256 digest; compared in constant time. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new secret with a readable prefix (`hub_…`, `app_…`): 32 random bytes, base64url. */
export const newSecret = (prefix: string): string => `${prefix}_${randomBytes(32).toString('base64url')}`;

/** The stored form of a secret: hex SHA-256. Secrets have 256 bits of entropy, so no salt is needed. */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** Constant-time comparison of two strings (different lengths compare unequal). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The token from an `authorization: Bearer <token>` header or metadata value, if well formed. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/**
 * The public id of an app token: `tok_` and the first 24 hex digits of its digest. Safe to show
 * and log (it reveals nothing of the secret), stable for the token's life, and derivable from
 * the digest alone, so tokens minted before ids existed have one too.
 */
export const tokenIdOf = (digest: string): string => `tok_${digest.slice(0, 24)}`;
