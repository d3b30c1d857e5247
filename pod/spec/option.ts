// The shape every spec option has — containerd's `oci.SpecOpts`, without the context and client:
// a function that edits the spec from the input, applied in order by buildContainerSpec — and the
// few things all options share: the security context and how they report bad input.
import type * as v1 from '../../cri/gen/v1.js';
import { SkiffError } from '../../common/errors.js';
import type { Spec } from './oci-spec.js';
import type { ContainerSpecInput } from './types.js';

export type SpecOption = (spec: Spec, input: ContainerSpecInput) => void;

/** The container's Linux security context, or undefined when the request has none. */
export function securityContext(input: ContainerSpecInput): v1.LinuxContainerSecurityContext__Output | undefined {
  return input.config.linux?.security_context ?? undefined;
}

export function isPrivileged(input: ContainerSpecInput): boolean {
  return securityContext(input)?.privileged === true;
}

/** INVALID_ARGUMENT naming the container. */
export function invalid(input: ContainerSpecInput, message: string): SkiffError {
  return new SkiffError('SKIFF_INVALID_ARGUMENT', `container ${containerLabel(input)}: ${message}`);
}

export function unimplemented(input: ContainerSpecInput, message: string): SkiffError {
  return new SkiffError('SKIFF_UNIMPLEMENTED', `container ${containerLabel(input)}: ${message}`);
}

function containerLabel(input: ContainerSpecInput): string {
  const name = input.config.metadata?.name;
  return name ? `"${name}"` : input.id;
}

/** A decimal id (int64 on the wire, a string once decoded) within [0, max], else undefined. */
export function parseId(value: string, max: number): number | undefined {
  if (!/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= max ? n : undefined;
}

/** runc (and so containerd) refuses uids and gids above 2^31-1. */
export const MAX_ID = 0x7fffffff;
