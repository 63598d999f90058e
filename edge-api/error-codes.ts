/** One table for the edges: every stable error code with its HTTP status and gRPC status. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { DomainError } from '../actors/types.ts';
import type { RuntimeError } from '../runtime/result.ts';

/** Every code an app or a hub can see. Stable: clients switch on them. */
export type ErrorCode =
  | DomainError['code']
  | RuntimeError['code']
  | 'unauthenticated'
  /** An app token past its `expiresAt` (HTTP 401). */
  | 'token_expired'
  /** An app token that was revoked (HTTP 401). */
  | 'token_revoked'
  /** A request body whose Content-Type is not application/json (HTTP 415). */
  | 'unsupported_media_type'
  /** Request headers over Node's limit (16 KiB), refused before any route runs (HTTP 431). */
  | 'headers_too_large'
  | 'forbidden'
  | 'payload_too_large'
  | 'rate_limited'
  /** A newer connection took over (a hub's second stream on the same node). */
  | 'superseded'
  | 'internal';

interface Mapping {
  readonly http: number;
  readonly grpc: GrpcStatus;
}

const table: Record<ErrorCode, Mapping> = {
  invalid_argument: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  unauthenticated: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED },
  token_expired: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED },
  token_revoked: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED },
  unsupported_media_type: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT },
  headers_too_large: { http: 431, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  idempotency_conflict: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS },
  forbidden: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED },
  permission_denied: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED },
  not_found: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  already_exists: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS },
  failed_precondition: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION },
  version_conflict: { http: 412, grpc: GrpcStatus.ABORTED },
  payload_too_large: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  resource_exhausted: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  rate_limited: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  superseded: { http: 409, grpc: GrpcStatus.ABORTED },
  overloaded: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  unavailable: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  stopping: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  timeout: { http: 503, grpc: GrpcStatus.DEADLINE_EXCEEDED },
  actor_crashed: { http: 500, grpc: GrpcStatus.INTERNAL },
  internal: { http: 500, grpc: GrpcStatus.INTERNAL },
};

export const httpStatusOf = (code: ErrorCode): number => table[code].http;
export const grpcStatusOf = (code: ErrorCode): GrpcStatus => table[code].grpc;
/** The name of a gRPC status (`INVALID_ARGUMENT`, ...), as the hub contract's `Error.code` carries it. */
export const grpcStatusName = (status: GrpcStatus): string => GrpcStatus[status] ?? 'UNKNOWN';
/** The gRPC status name of an error code. */
export const grpcStatusNameOf = (code: ErrorCode): string => grpcStatusName(table[code].grpc);
export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(table, code);
