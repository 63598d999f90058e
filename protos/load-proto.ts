/** Loads our .proto files with one set of proto-loader options, used everywhere. */
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { join } from 'node:path';

/**
 * uint64/int64 decode as decimal strings (never `Long` objects, never lossy numbers); enums as
 * strings; defaults filled in; `oneofs: true` adds the name of the set field (e.g. `body`).
 */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const PROTO_DIR = import.meta.dirname;

/** The package definition of one of our proto files (e.g. `hub.proto`), for servers and reflection. */
export function loadProtoDefinition(file: string): PackageDefinition {
  return loadSync(join(PROTO_DIR, file), PROTO_LOADER_OPTIONS);
}

export function loadProto(file: string): GrpcObject {
  return loadPackageDefinition(loadProtoDefinition(file));
}
