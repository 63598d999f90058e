/** Expected per-message failures are values, not exceptions. */

/** Stable codes of failures the actor host reports to callers. */
export type RuntimeErrorCode =
  /** The actor's mailbox is full: back off and retry (gRPC RESOURCE_EXHAUSTED, HTTP 429). */
  | 'overloaded'
  /** No reply before the deadline; the message may or may not have been applied. */
  | 'timeout'
  /** The persistence store failed: nothing from this message was acknowledged as durable. */
  | 'unavailable'
  /** The message crashed the actor on every attempt and was rejected. */
  | 'actor_crashed'
  /** The message (or its reply) is larger than a transport carries, e.g. the peer message limit (HTTP 413). */
  | 'payload_too_large'
  /** The host is shutting down and accepts no new work. */
  | 'stopping';

export interface RuntimeError {
  readonly code: RuntimeErrorCode;
  readonly message: string;
}

export type Result<T, E = RuntimeError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });

export const fail = <E = RuntimeError>(error: E): Result<never, E> => ({ ok: false, error });

export const runtimeError = (code: RuntimeErrorCode, message: string): Result<never> => fail({ code, message });
