// The one table of skiff's error classes. Every error that can reach a client carries a stable
// string `code`; the CRI handler wrapper maps that code to a gRPC status through this table, so no
// layer below cri/ ever builds a gRPC status itself (and a Node 'ENOENT' can never leak out as
// UNKNOWN without a message — kubernetes#46469).

/** Canonical status codes (google.rpc.Code numbering, which gRPC uses on the wire). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** code → canonical status. Add a row here before throwing a new code anywhere. */
export const ErrorTable = {
  // generic request problems
  SKIFF_INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  SKIFF_NOT_FOUND: Status.NOT_FOUND,
  SKIFF_ALREADY_EXISTS: Status.ALREADY_EXISTS,
  SKIFF_FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  SKIFF_UNIMPLEMENTED: Status.UNIMPLEMENTED,
  SKIFF_NOT_READY: Status.UNAVAILABLE,
  SKIFF_CANCELLED: Status.CANCELLED,
  SKIFF_DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  SKIFF_INTERNAL: Status.INTERNAL,
  SKIFF_NO_SPACE: Status.RESOURCE_EXHAUSTED,
  // images
  SKIFF_IMAGE_REF_INVALID: Status.INVALID_ARGUMENT,
  SKIFF_IMAGE_NOT_FOUND: Status.NOT_FOUND,
  SKIFF_IMAGE_IN_USE: Status.FAILED_PRECONDITION,
  SKIFF_MANIFEST_INVALID: Status.INVALID_ARGUMENT,
  SKIFF_MANIFEST_UNSUPPORTED: Status.INVALID_ARGUMENT,
  SKIFF_PLATFORM_NOT_FOUND: Status.NOT_FOUND,
  SKIFF_LAYER_INVALID: Status.INVALID_ARGUMENT,
  SKIFF_LAYER_UNSAFE: Status.INVALID_ARGUMENT,
  SKIFF_DIGEST_MISMATCH: Status.DATA_LOSS,
  SKIFF_REGISTRY_UNAUTHORIZED: Status.UNAUTHENTICATED,
  SKIFF_REGISTRY_DENIED: Status.PERMISSION_DENIED,
  SKIFF_REGISTRY_UNAVAILABLE: Status.UNAVAILABLE,
  SKIFF_REGISTRY_ERROR: Status.UNKNOWN,
  SKIFF_PULL_STALLED: Status.UNAVAILABLE,
  SKIFF_DOWNLOAD_INTERRUPTED: Status.UNAVAILABLE,
  // pods and containers
  SKIFF_RUNTIME_FAILED: Status.UNKNOWN,
  // a container's monitor serves as many exec/attach sessions as it can; try again later
  SKIFF_MONITOR_BUSY: Status.RESOURCE_EXHAUSTED,
  // pod networking: the address pool is used up; the host network could not be set up; a CNI
  // plugin failed (its own message, verbatim)
  SKIFF_NETWORK_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  SKIFF_NETWORK_FAILED: Status.UNKNOWN,
  SKIFF_CNI_FAILED: Status.UNKNOWN,
  // daemon
  SKIFF_CONFIG_INVALID: Status.INVALID_ARGUMENT,
  SKIFF_ALREADY_RUNNING: Status.FAILED_PRECONDITION,
} as const satisfies Record<string, StatusCode>;
export type ErrorCode = keyof typeof ErrorTable;

export class SkiffError extends Error {
  override name = 'SkiffError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  get status(): StatusCode {
    return ErrorTable[this.code];
  }
}

export function isSkiffError(err: unknown, code?: ErrorCode): err is SkiffError {
  return err instanceof SkiffError && (code === undefined || err.code === code);
}

/** Node system errors carry a string `code` such as 'ENOENT'. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
