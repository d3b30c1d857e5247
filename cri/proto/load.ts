// Loads cri/proto/api.proto at run time into grpc-js service and message definitions, typed with
// the interfaces that scripts/gen-types.mjs generates from the same file. The daemon's server and
// the skiff client both start here, so they always agree on the wire format.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../gen/api.js';

/** runtime.v1 in grpc-js form: `RuntimeService`, `ImageService` constructors and message types. */
export type CriPackage = ProtoGrpcType['runtime']['v1'];

// Identical to the proto-loader-gen-types flags in scripts/gen-types.mjs; the generated types are
// only true for objects decoded with these options (int64 as decimal strings, enums as names).
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * The .proto is not copied into dist/: from dist/cri/proto/load.js it is three levels up and back
 * down into cri/proto/.
 */
export const API_PROTO_PATH = fileURLToPath(new URL('../../../cri/proto/api.proto', import.meta.url));

let cached: CriPackage | undefined;

/** Parses api.proto once per process; later calls return the same package object. */
export function loadCri(): CriPackage {
  if (!cached) {
    const definition = protoLoader.loadSync(API_PROTO_PATH, LOADER_OPTIONS);
    const root = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    cached = root.runtime.v1;
  }
  return cached;
}
