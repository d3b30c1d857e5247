// sha256 digests as skiff stores content: `sha256:<64 lowercase hex>` (image-spec descriptor.md).
// Anything else is refused before it can become part of a path.
import { createHash } from 'node:crypto';
import { SkiffError } from '../common/errors.js';

export const SHA256_DIGEST = /^sha256:([a-f0-9]{64})$/;

export function isSha256Digest(s: unknown): s is string {
  return typeof s === 'string' && SHA256_DIGEST.test(s);
}

/** The hex part of a sha256 digest. */
export function digestHex(digest: string): string {
  const m = SHA256_DIGEST.exec(digest);
  if (!m) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `unsupported or malformed digest "${digest}"`);
  return m[1];
}

export function sha256Digest(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}
