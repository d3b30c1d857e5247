// Pushes test images to a registry with the distribution-spec push API: blobs by POST + monolithic
// PUT (or a cross-repository mount), then the image config and manifest, or an index over images.
import type { BuiltLayer, Compression } from './layer.js';
import { sha256 } from './layer.js';
import type { TestRegistry } from './registry.js';

export type ImageFormat = 'oci' | 'docker';

export interface Credentials {
  user: string;
  password: string;
}

/** The runtime part of an image config (image-spec config.md `config`). */
export interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

/** What a test may set in the image config: the runtime fields plus the platform. */
export type ImageConfigInput = RuntimeConfig & { architecture?: string; os?: string; variant?: string };

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PushedImage {
  /** `127.0.0.1:PORT/repo:tag`. */
  ref: string;
  repo: string;
  tag: string;
  manifestDigest: string;
  manifestMediaType: string;
  /** The exact manifest bytes pushed (their sha256 is manifestDigest). */
  manifestBytes: Buffer;
  configDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  diffIDs: string[];
  chainIDs: string[];
}

export interface PushedIndex {
  ref: string;
  repo: string;
  tag: string;
  manifestDigest: string;
  mediaType: string;
  index: ImageIndex;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageConfig {
  created: string;
  architecture: string;
  os: string;
  variant?: string;
  config: RuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: { created: string; created_by: string }[];
}

export const MEDIA_TYPES = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
  },
} as const;

// Docker schema 2 has no zstd layer type (manifest-v2-2.md lists tar and tar+gzip only).
const DOCKER_LAYER_TYPES: Partial<Record<Compression, string>> = {
  none: 'application/vnd.docker.image.rootfs.diff.tar',
  gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

/** Every Accept value a pull of anything pushed here needs. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.oci.manifest,
  MEDIA_TYPES.oci.index,
  MEDIA_TYPES.docker.manifest,
  MEDIA_TYPES.docker.index,
].join(', ');

/** image-spec config.md: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function computeChainIDs(diffIDs: string[]): string[] {
  const chain: string[] = [];
  for (const diffID of diffIDs) {
    const prev = chain.at(-1);
    chain.push(prev === undefined ? diffID : sha256(`${prev} ${diffID}`));
  }
  return chain;
}

/** A small client for one registry's push endpoints. */
export class PushClient {
  constructor(
    private readonly reg: TestRegistry,
    private readonly auth: Credentials | undefined = reg.auth,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    if (!this.auth) return extra;
    // Sent up front: htpasswd auth answers Basic challenges, so there is no token dance to do.
    const token = Buffer.from(`${this.auth.user}:${this.auth.password}`).toString('base64');
    return { ...extra, authorization: `Basic ${token}` };
  }

  private async request(method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Response> {
    const url = new URL(path, this.reg.url);
    return fetch(url, { method, headers: this.headers(init.headers), body: init.body, redirect: 'manual' });
  }

  private async fail(what: string, res: Response): Promise<never> {
    const body = await res.text().catch(() => '');
    throw new Error(`${what}: ${res.status} ${res.statusText} ${body.slice(0, 500)}`);
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`);
    await res.arrayBuffer();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return this.fail(`HEAD blob ${repo}@${digest}`, res);
  }

  /** distribution-spec: POST an upload session, then PUT the whole blob to its Location. */
  async pushBlob(repo: string, blob: Buffer, digest = sha256(blob)): Promise<string> {
    if (await this.hasBlob(repo, digest)) return digest;
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`);
    if (start.status !== 202) return this.fail(`start upload to ${repo}`, start);
    await start.arrayBuffer();
    await this.finishUpload(repo, start, blob, digest);
    return digest;
  }

  private async finishUpload(repo: string, session: Response, blob: Buffer, digest: string): Promise<void> {
    const location = session.headers.get('location');
    if (!location) throw new Error(`upload to ${repo}: no Location header`);
    // Location may be absolute or relative and already carries query state (`_state=`).
    const url = new URL(location, this.reg.url);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url.pathname + url.search, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      body: blob,
    });
    if (put.status !== 201) return this.fail(`PUT blob ${repo}@${digest}`, put);
    await put.arrayBuffer();
  }

  /**
   * Makes a blob of `fromRepo` available in `repo`: a cross-repository mount when the registry
   * agrees (201), otherwise a download and upload.
   */
  async copyBlob(fromRepo: string, repo: string, digest: string): Promise<void> {
    if (await this.hasBlob(repo, digest)) return;
    const mount = await this.request('POST', `/v2/${repo}/blobs/uploads/?mount=${digest}&from=${fromRepo}`);
    if (mount.status === 201) {
      await mount.arrayBuffer();
      return;
    }
    if (mount.status !== 202) return this.fail(`mount ${digest} from ${fromRepo} into ${repo}`, mount);
    await mount.arrayBuffer();
    const get = await this.request('GET', `/v2/${fromRepo}/blobs/${digest}`);
    if (get.status !== 200) return this.fail(`GET blob ${fromRepo}@${digest}`, get);
    await this.finishUpload(repo, mount, Buffer.from(await get.arrayBuffer()), digest);
  }

  /** PUT a manifest (or index) under a tag or digest; checks the digest the registry reports. */
  async pushManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (res.status !== 201) return this.fail(`PUT manifest ${repo}:${reference}`, res);
    await res.arrayBuffer();
    const reported = res.headers.get('docker-content-digest');
    if (reported && reported !== digest) {
      throw new Error(`PUT manifest ${repo}:${reference}: registry says ${reported}, we computed ${digest}`);
    }
    return digest;
  }
}

function layerMediaType(layer: BuiltLayer, format: ImageFormat): string {
  if (format === 'oci') return layer.mediaType;
  const type = DOCKER_LAYER_TYPES[layer.compression];
  if (!type) throw new Error(`Docker schema 2 has no media type for ${layer.compression} layers; use format 'oci'`);
  return type;
}

const CREATED = '2024-01-01T00:00:00Z';
const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

function imageConfig(layers: BuiltLayer[], input: ImageConfigInput = {}): ImageConfig {
  const { architecture = 'amd64', os = 'linux', variant, ...runtime } = input;
  return {
    created: CREATED,
    architecture,
    os,
    ...(variant ? { variant } : {}),
    config: { Env: DEFAULT_ENV, Cmd: ['sh'], ...runtime },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
    history: layers.map((_, i) => ({ created: CREATED, created_by: `skiff test layer ${i}` })),
  };
}

/** Pushes layers, config and manifest; returns everything a test needs to check a pull. */
export async function pushImage(
  reg: TestRegistry,
  repo: string,
  tag: string,
  img: { layers: BuiltLayer[]; config?: ImageConfigInput; format?: ImageFormat; auth?: Credentials },
): Promise<PushedImage> {
  const format = img.format ?? 'oci';
  const client = new PushClient(reg, img.auth ?? reg.auth);
  for (const layer of img.layers) await client.pushBlob(repo, layer.blob, layer.digest);
  const config = imageConfig(img.layers, img.config);
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await client.pushBlob(repo, configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES[format].manifest,
    config: { mediaType: MEDIA_TYPES[format].config, digest: configDigest, size: configBytes.length },
    layers: img.layers.map((l) => ({ mediaType: layerMediaType(l, format), digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await client.pushManifest(repo, tag, manifest.mediaType, manifestBytes);
  const diffIDs = img.layers.map((l) => l.diffID);
  return {
    ref: `${reg.host}/${repo}:${tag}`,
    repo,
    tag,
    manifestDigest,
    manifestMediaType: manifest.mediaType,
    manifestBytes,
    configDigest,
    manifest,
    config,
    diffIDs,
    chainIDs: computeChainIDs(diffIDs),
  };
}

/**
 * Pushes an OCI index or Docker manifest list over already-pushed images. Images pushed to
 * another repository are copied in first (blobs mounted, manifest put by digest), since an index
 * may only reference manifests of its own repository.
 */
export async function pushIndex(
  reg: TestRegistry,
  repo: string,
  tag: string,
  entries: { image: PushedImage; platform: Platform }[],
  format: ImageFormat,
  opts: { auth?: Credentials } = {},
): Promise<PushedIndex> {
  const client = new PushClient(reg, opts.auth ?? reg.auth);
  for (const { image } of entries) {
    if (image.repo === repo) continue;
    const digests = [image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)];
    for (const d of digests) await client.copyBlob(image.repo, repo, d);
    await client.pushManifest(repo, image.manifestDigest, image.manifestMediaType, image.manifestBytes);
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES[format].index,
    manifests: entries.map(({ image, platform }) => ({
      mediaType: image.manifestMediaType,
      digest: image.manifestDigest,
      size: image.manifestBytes.length,
      platform,
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const manifestDigest = await client.pushManifest(repo, tag, index.mediaType, bytes);
  return { ref: `${reg.host}/${repo}:${tag}`, repo, tag, manifestDigest, mediaType: index.mediaType, index };
}
