/** Unwraps domain replies (`Outcome` values) in tests, failing loudly on the wrong variant. */
import type { DomainError, Outcome } from '../../actors/types.ts';

export function valueOf<T>(reply: Outcome<unknown> | undefined): T {
  if (!reply?.ok) throw new Error(`expected ok, got ${JSON.stringify(reply)}`);
  return reply.value as T;
}

export function errorOf(reply: Outcome<unknown> | undefined): DomainError {
  if (reply === undefined || reply.ok) throw new Error(`expected an error, got ${JSON.stringify(reply)}`);
  return reply.error;
}
