// Which URLs serve a registry domain: its configured mirrors in order, then the registry itself.
// The defaults follow containerd's core/remotes/docker/config/hosts.go (ConfigureHosts).
import { isIP } from 'node:net';
import { SkiffError } from '../../common/errors.js';

export interface RegistryHostsConfig {
  /** Registry domain ("docker.io", "127.0.0.1:5000") → endpoint base URLs tried before the registry itself. */
  mirrors: Record<string, string[]>;
  /** Domains (host[:port]) contacted over plain http. */
  insecure: string[];
}

/** One place to fetch a domain's content from. `base` has no trailing slash and no `/v2`. */
export interface Endpoint {
  base: string;
  domain: string;
  mirror: boolean;
}

/** Splits "host:port", "[v6]:port", "host" into hostname (brackets removed) and port. */
export function splitHostPort(hostport: string): { host: string; port: string | undefined } {
  const v6 = /^\[([^\]]*)\](?::(\d*))?$/.exec(hostport);
  if (v6) return { host: v6[1], port: v6[2] || undefined };
  const colon = hostport.lastIndexOf(':');
  // More than one colon without brackets: a bare IPv6 address, which has no port.
  if (colon === -1 || hostport.indexOf(':') !== colon) return { host: hostport, port: undefined };
  return { host: hostport.slice(0, colon), port: hostport.slice(colon + 1) || undefined };
}

/** localhost or a loopback address (containerd docker.IsLocalhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h) || h === '::ffff:127.0.0.1';
  return false;
}

/**
 * The scheme of a registry contacted directly. https unless the domain is listed as insecure, or
 * is a loopback host with a port other than 443: containerd then uses http, since a registry on a
 * local port (`registry:2`, kind's local registry) almost always serves plain http. (containerd
 * also skips TLS verification for loopback https; skiff does not — list the domain as insecure.)
 */
function registryScheme(domain: string, insecure: readonly string[]): 'http' | 'https' {
  if (insecure.includes(domain)) return 'http';
  const { host, port } = splitHostPort(domain);
  if (isLoopback(host) && port !== undefined && port !== '443') return 'http';
  return 'https';
}

function mirrorEndpoint(domain: string, raw: string, insecure: readonly string[]): Endpoint {
  // containerd hosts.toml: a host without a scheme is https; we also honour the insecure list.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)
    ? raw
    : `${insecure.includes(raw.split('/')[0]) ? 'http' : 'https'}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (err) {
    throw new SkiffError('SKIFF_CONFIG_INVALID', `registry mirror "${raw}" of ${domain} is not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SkiffError('SKIFF_CONFIG_INVALID', `registry mirror "${raw}" of ${domain}: only http and https are supported`);
  }
  // A mirror may live under a path prefix; the API root is that prefix + /v2, and a configured
  // trailing /v2 is not doubled (containerd parseHostConfig).
  const path = url.pathname.replace(/\/+$/, '').replace(/\/v2$/, '');
  return { base: `${url.protocol}//${url.host}${path}`, domain, mirror: true };
}

/**
 * The endpoints to try for `domain`, in order: each configured mirror, then the registry itself
 * (docker.io is served by registry-1.docker.io).
 */
export function endpointsFor(domain: string, cfg: RegistryHostsConfig): Endpoint[] {
  const insecure = cfg.insecure ?? [];
  const mirrors = (cfg.mirrors?.[domain] ?? []).map((m) => mirrorEndpoint(domain, m, insecure));
  const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain;
  return [...mirrors, { base: `${registryScheme(domain, insecure)}://${host}`, domain, mirror: false }];
}
