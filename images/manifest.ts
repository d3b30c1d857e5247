// Reading what a registry sent: manifests, indexes and image configs are untrusted JSON, checked
// here before any field of them is used (image-spec manifest.md, image-index.md, config.md).
import { SkiffError } from '../common/errors.js';
import { isSha256Digest, sha256Digest } from './digest.js';
import { LAYER_MEDIA_TYPES, MediaType, type Descriptor, type ImageConfig, type Index, type Manifest } from './oci.js';

export function parseJSON(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `${what} is not valid JSON`, { cause: err });
  }
}

function validDescriptor(d: unknown): d is Descriptor {
  if (typeof d !== 'object' || d === null) return false;
  const x = d as Partial<Descriptor>;
  return typeof x.mediaType === 'string' && isSha256Digest(x.digest) && typeof x.size === 'number' && Number.isSafeInteger(x.size) && x.size >= 0;
}

/** True when a fetched top-level document is an index / manifest list rather than a manifest. */
export function isIndex(mediaType: string, doc: { mediaType?: unknown; manifests?: unknown }): boolean {
  const type = mediaType || (typeof doc.mediaType === 'string' ? doc.mediaType : '');
  return type === MediaType.OCI_INDEX || type === MediaType.DOCKER_MANIFEST_LIST || (!type && Array.isArray(doc.manifests));
}

export function validateIndex(j: unknown, name: string): Index {
  const x = j as Partial<Index>;
  if (x.schemaVersion !== 2 || !Array.isArray(x.manifests) || !x.manifests.every(validDescriptor)) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: malformed image index`);
  }
  return x as Index;
}

export function validateManifest(j: unknown, mediaType: string, name: string): Manifest {
  const m = j as Omit<Partial<Manifest>, 'schemaVersion'> & { schemaVersion?: number };
  if (m.schemaVersion === 1 || /v1\+(prettyj|j)ws/.test(mediaType)) {
    throw new SkiffError('SKIFF_MANIFEST_UNSUPPORTED', `pull ${name}: Docker schema 1 manifests are not supported`);
  }
  const type = mediaType || m.mediaType || '';
  if (type !== MediaType.OCI_MANIFEST && type !== MediaType.DOCKER_MANIFEST && type !== '') {
    throw new SkiffError('SKIFF_MANIFEST_UNSUPPORTED', `pull ${name}: unsupported manifest media type "${type}"`);
  }
  if (m.schemaVersion !== 2 || !validDescriptor(m.config) || !Array.isArray(m.layers) || !m.layers.every(validDescriptor)) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: malformed image manifest`);
  }
  for (const l of m.layers) {
    if (!LAYER_MEDIA_TYPES.has(l.mediaType)) {
      throw new SkiffError('SKIFF_MANIFEST_UNSUPPORTED', `pull ${name}: layer ${l.digest} has unsupported media type "${l.mediaType}"`);
    }
  }
  return m as unknown as Manifest;
}

export function validateConfig(j: unknown, manifest: Manifest, name: string): ImageConfig {
  const c = j as Partial<ImageConfig>;
  const diffIDs = c.rootfs?.diff_ids;
  if (!Array.isArray(diffIDs) || !diffIDs.every(isSha256Digest)) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: image config has no valid rootfs.diff_ids`);
  }
  if (diffIDs.length !== manifest.layers.length) {
    throw new SkiffError(
      'SKIFF_MANIFEST_INVALID',
      `pull ${name}: manifest has ${manifest.layers.length} layers but config lists ${diffIDs.length} diff_ids`,
    );
  }
  return { ...c, os: c.os ?? 'linux', architecture: c.architecture ?? '' } as ImageConfig;
}

/** image-spec config.md: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function computeChainIDs(diffIDs: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : sha256Digest(`${out[out.length - 1]} ${d}`));
  return out;
}
