// Image references, parsed and normalized the way Docker and containerd do it
// (distribution/reference: regexp.go grammar, normalize.go familiar-name rules), so that a name
// kubelet sends resolves to the same registry, repository, tag and digest as it would elsewhere.
import { SkiffError } from '../common/errors.js';

export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
// The Docker Hub's old index name; normalize.go rewrites it to the default domain.
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
// reference.go NameTotalLengthMax: counted on the whole normalized name, domain included.
const NAME_TOTAL_LENGTH_MAX = 255;
// Not an upstream rule: bounds the work of the backtracking regexps below on hostile input.
// Every valid reference is far shorter (255 name + 128 tag + a digest).
const INPUT_LENGTH_MAX = 1024;

// The grammar of distribution/reference regexp.go, built from the same pieces.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const ipv6Address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainAndPort = `(?:${domainName}|${ipv6Address})(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;

const referenceRe = new RegExp(`^(${namePattern})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const anchoredNameRe = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
// A bare image id; normalize.go refuses it so that an id is never mistaken for a repository.
const identifierRe = /^[a-f0-9]{64}$/;

// go-digest's registered algorithms and the hex length of each (digest-spec: algorithms).
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(input: string, reason: string): SkiffError {
  return new SkiffError('SKIFF_IMAGE_REF_INVALID', `invalid image reference "${input}": ${reason}`);
}

/** Why `s` is not a valid digest, or undefined when it is one (go-digest Validate). */
function digestProblem(s: string): string | undefined {
  const colon = s.indexOf(':');
  if (colon <= 0 || colon === s.length - 1) return 'invalid checksum digest format';
  const algorithm = s.slice(0, colon);
  const encoded = s.slice(colon + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return `unsupported digest algorithm "${algorithm}"`;
  if (encoded.length !== length) return 'invalid checksum digest length';
  if (!/^[a-f0-9]+$/.test(encoded)) return 'invalid checksum digest format';
  return undefined;
}

/** True for `sha256:<64 lowercase hex>` and the other registered algorithms at their lengths. */
export function isDigest(s: string): boolean {
  return digestProblem(s) === undefined;
}

/**
 * normalize.go splitDockerDomain: the first path component is a registry domain only when it looks
 * like one — contains "." or ":", is "localhost", or has an uppercase letter (repository paths are
 * lowercase-only, so such a component cannot be one). Everything else lives on Docker Hub, where a
 * single-component name is an official image under "library/".
 */
function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  let domain = DEFAULT_DOMAIN;
  let remainder = name;
  if (slash !== -1) {
    const first = name.slice(0, slash);
    if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
      domain = first;
      remainder = name.slice(slash + 1);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Parses and normalizes an image reference as `docker pull` and containerd's CRI plugin do:
 * `busybox` → docker.io/library/busybox, `index.docker.io/x/y` → docker.io/x/y. A tag and a
 * digest may both be present and are both kept; the caller decides which one to pull by.
 * Throws SKIFF_IMAGE_REF_INVALID naming the input and the reason.
 */
export function parseReference(s: string): Reference {
  if (s === '') throw invalid(s, 'repository name must have at least one component');
  if (s.length > INPUT_LENGTH_MAX) throw invalid(s.slice(0, 64) + '…', 'reference is too long');
  if (identifierRe.test(s)) throw invalid(s, 'cannot specify 64-byte hexadecimal strings');

  const { domain, remainder } = splitDomain(s);
  const colon = remainder.indexOf(':');
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) throw invalid(s, `repository name (${remote}) must be lowercase`);

  const full = `${domain}/${remainder}`;
  const m = referenceRe.exec(full);
  if (!m) {
    if (referenceRe.test(full.toLowerCase())) throw invalid(s, 'repository name must be lowercase');
    throw invalid(s, 'invalid reference format');
  }
  const name = m[1];
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(s, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const parts = anchoredNameRe.exec(name);
  if (!parts?.[1] || !parts[2]) throw invalid(s, 'invalid reference format');

  const ref: Reference = { domain: parts[1], path: parts[2] };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) {
    const problem = digestProblem(m[3]);
    if (problem) throw invalid(s, problem);
    ref.digest = m[3];
  }
  return ref;
}

/** `domain/path[:tag][@digest]`, e.g. `docker.io/library/busybox:latest`. */
export function formatReference(r: Reference): string {
  let s = repository(r);
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** The repository name without tag or digest: `docker.io/library/busybox`. */
export function repository(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** Adds the `latest` tag when the reference names neither a tag nor a digest (TagNameOnly). */
export function withDefaultTag(r: Reference): Reference {
  if (r.tag !== undefined || r.digest !== undefined) return { ...r };
  return { ...r, tag: 'latest' };
}
