// Platform normalization and the choice of one manifest from a manifest list / OCI index, with
// the rules of containerd's `platforms` package (database.go normalizeArch, compare.go Only), so
// that a node pulls the same image variant here as it would under containerd's CRI plugin.
import { endianness } from 'node:os';
import { SkiffError } from '../common/errors.js';
import { MANIFEST_MEDIA_TYPES, type Descriptor, type Index, type Platform } from './oci.js';

// Node's process.arch → Go's GOARCH, which is what image-spec platform.architecture holds.
const GOARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc: 'ppc',
  s390: 's390',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
  mips64el: 'mips64le',
};

/** The platform of this node: linux, process.arch under its Go name, and the arm variant. */
export function defaultPlatform(): Platform {
  let architecture = GOARCH[process.arch] ?? process.arch;
  let variant: string | undefined;
  // Node only runs little-endian on Linux ppc64; Go tells the two apart by name.
  if (process.arch === 'ppc64') architecture = endianness() === 'LE' ? 'ppc64le' : 'ppc64';
  if (process.arch === 'arm') {
    // The ARM level Node was built for (process.config); containerd reads /proc/cpuinfo instead,
    // but a Node binary built for v7 cannot run on an older CPU anyway.
    const v = (process.config.variables as { arm_version?: unknown }).arm_version;
    variant = `v${typeof v === 'string' || typeof v === 'number' ? v : 7}`;
  }
  return normalizePlatform(variant ? { os: 'linux', architecture, variant } : { os: 'linux', architecture });
}

/**
 * The canonical form (containerd database.go): lowercase, `x86_64` → amd64, `aarch64` → arm64,
 * `armhf` → arm/v7, `armel` → arm/v6; arm64/v8 and amd64/v1 drop their variant (the common case is
 * written without one) while a plain `arm` means arm/v7. An empty os means linux, the only OS a
 * Linux node runs. os.version and os.features are kept as they are.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = (p.os || 'linux').toLowerCase() === 'macos' ? 'darwin' : (p.os || 'linux').toLowerCase();
  let architecture = (p.architecture ?? '').toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version'] !== undefined) out['os.version'] = p['os.version'];
  if (p['os.features'] !== undefined) out['os.features'] = [...p['os.features']];
  return out;
}

// arm64 variant → the major versions it covers and the highest minor of each (compare.go): v9.x
// cores also run v8.(x+5) code, capped at v8.9.
const ARM64_VERSIONS: Readonly<Record<string, ReadonlyArray<[number, number]>>> = {
  v8: [[8, 0]],
  'v8.0': [[8, 0]],
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8, 9].map((m) => [`v8.${m}`, [[8, m]]])),
  v9: [[9, 0], [8, 5]],
  'v9.0': [[9, 0], [8, 5]],
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7].map((m) => [`v9.${m}`, [[9, m], [8, Math.min(m + 5, 9)]]])),
};

/**
 * The platforms a node of platform `p` (normalized) can run, best first (compare.go
 * platformVector): amd64/vN runs vN…v1 then 386; arm/vN runs vN…v5; arm64 runs its own and lower
 * arm64 levels, then 32-bit arm from v8 down.
 */
function compatible(p: Platform): Platform[] {
  const { os, architecture: arch } = p;
  const variant = p.variant ?? '';
  const level = Number.parseInt(variant.replace(/^v/, ''), 10);
  switch (arch) {
    case 'amd64': {
      const out: Platform[] = [p];
      if (/^v\d+$/.test(variant) && level > 1) {
        for (let v = level - 1; v >= 1; v--) out.push({ os, architecture: 'amd64', variant: `v${v}` });
      }
      out.push({ os, architecture: '386' });
      return out;
    }
    case 'arm': {
      const out: Platform[] = [p];
      if (/^v\d+$/.test(variant) && level > 5) {
        for (let v = level - 1; v >= 5; v--) out.push({ os, architecture: 'arm', variant: `v${v}` });
      }
      return out;
    }
    case 'arm64': {
      const key = variant || 'v8';
      const versions = ARM64_VERSIONS[key];
      if (!versions) return [];
      const out: Platform[] = [];
      for (const [major, maxMinor] of versions) {
        for (let minor = maxMinor; minor >= 0; minor--) {
          out.push({ os, architecture: 'arm64', variant: minor === 0 ? `v${major}` : `v${major}.${minor}` });
        }
      }
      return [...out, ...compatible({ os, architecture: 'arm', variant: 'v8' })];
    }
    default:
      return [p];
  }
}

function samePlatform(a: Platform, b: Platform): boolean {
  const x = normalizePlatform(a);
  const y = normalizePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && (x.variant ?? '') === (y.variant ?? '');
}

/** How well `have` suits a node of platform `want`: 0 is best, -1 is "cannot run". */
function rank(have: Platform, want: Platform): number {
  return compatible(normalizePlatform(want)).findIndex((c) => samePlatform(have, c));
}

/** Whether a node of platform `want` can run an image built for `have` (containerd Only()). */
export function platformMatches(have: Platform, want: Platform): boolean {
  return rank(have, want) !== -1;
}

/** `os/arch[/variant]`, as crictl and containerd print platforms. */
export function formatPlatform(p: Platform): string {
  return [p.os || 'unknown', p.architecture || 'unknown', p.variant].filter(Boolean).join('/');
}

/**
 * Picks the manifest of `index` that suits a node of platform `want`: among the entries whose
 * platform is compatible, the best one by containerd's order (exact match first, then lower
 * variants, then the 32-bit fallback), the first listed on a tie. Attestation manifests
 * (`unknown/unknown`) never match. As in containerd (images.Manifest), an entry without a platform
 * is a candidate only when no entry with a platform matches; its config then says what it is, and
 * the caller must check that config's os/architecture with `platformMatches`.
 * No candidate → SKIFF_PLATFORM_NOT_FOUND listing the platforms the index offers.
 */
export function selectManifest(index: Index, want: Platform): Descriptor {
  const manifests = Array.isArray(index.manifests) ? index.manifests : [];
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of manifests) {
    if (!d.platform) continue;
    const r = rank(d.platform, want);
    if (r !== -1 && r < bestRank) {
      best = d;
      bestRank = r;
    }
  }
  if (best) return best;

  const untyped = manifests.find((d) => !d.platform && (!d.mediaType || MANIFEST_MEDIA_TYPES.has(d.mediaType)));
  if (untyped) return untyped;

  const available = [
    ...new Set(
      manifests
        .filter((d) => d.platform && !(d.platform.os === 'unknown' && d.platform.architecture === 'unknown'))
        .map((d) => formatPlatform(d.platform as Platform)),
    ),
  ];
  throw new SkiffError(
    'SKIFF_PLATFORM_NOT_FOUND',
    `no manifest for platform ${formatPlatform(normalizePlatform(want))} ` +
      `(available: ${available.length ? available.join(', ') : 'none'})`,
  );
}
