// CNI results, pure: reading a plugin's ADD result of any spec version into one shape, and
// converting a result to the version a configuration speaks (libcni's GetAsVersion), so a plugin
// always gets its prevResult in its own version.
//   0.1.0/0.2.0   {ip4: {ip, gateway, routes}, ip6: {...}, dns}
//   0.3.x/0.4.0   {interfaces, ips: [{version: "4"|"6", address, gateway, interface}], routes, dns}
//   1.0.0/1.1.0   as 0.3.x without ips[].version; 1.1.0 adds interface mtu/socketPath/pciID and
//                 route mtu/advmss/priority/table/scope (kept in `raw`, passed through unchanged)
import { isIP } from 'node:net';
import { compareVersions, versionAtLeast } from './config.js';

export interface CniIp {
  /** The address without its prefix: `10.88.0.5`, `fd00::5`. */
  address: string;
  prefixLen: number;
  family: 4 | 6;
  gateway?: string;
  /** Name of the interface it is on, when the result says (ips[].interface indexes interfaces). */
  interface?: string;
}

export interface CniInterface {
  name: string;
  mac?: string;
  /** The netns path for a container interface; absent for a host interface. */
  sandbox?: string;
  mtu?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDnsResult {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  /** The version the result was written in. */
  cniVersion: string;
  ips: CniIp[];
  interfaces: CniInterface[];
  routes: CniRoute[];
  dns?: CniDnsResult;
  /** The result exactly as the last plugin of the chain printed it. */
  raw: Readonly<Record<string, unknown>>;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${what} is not a list`);
  return v;
}

function str(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new Error(`${what} is not a string`);
  return v;
}

function strings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`${what} is not a list of strings`);
  return v;
}

/** `10.88.0.5/16` → address, prefix length and family; throws on anything else. */
export function parseCidr(cidr: string): { address: string; prefixLen: number; family: 4 | 6 } {
  const slash = cidr.lastIndexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = isIP(address);
  const prefix = slash < 0 ? '' : cidr.slice(slash + 1);
  const prefixLen = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (family === 0 || !(prefixLen <= (family === 4 ? 32 : 128))) throw new Error(`invalid address "${cidr}"`);
  return { address, prefixLen, family: family as 4 | 6 };
}

function parseDns(v: unknown): CniDnsResult | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Error('dns is not an object');
  const dns: CniDnsResult = {};
  const nameservers = strings(v.nameservers, 'dns.nameservers');
  const domain = str(v.domain, 'dns.domain');
  const search = strings(v.search, 'dns.search');
  const options = strings(v.options, 'dns.options');
  if (nameservers?.length) dns.nameservers = nameservers;
  if (domain) dns.domain = domain;
  if (search?.length) dns.search = search;
  if (options?.length) dns.options = options;
  return Object.keys(dns).length ? dns : undefined;
}

function parseRoute(r: unknown, what: string): CniRoute {
  if (!isObject(r)) throw new Error(`${what} is not an object`);
  const dst = str(r.dst, `${what}.dst`);
  if (!dst) throw new Error(`${what} has no dst`);
  const gw = str(r.gw, `${what}.gw`);
  return gw ? { dst, gw } : { dst };
}

/** Reads a result of any version 0.1.0–1.1.0 (`fallbackVersion` when it names none). Throws on malformed input. */
export function parseResult(raw: Obj, fallbackVersion: string): CniResult {
  const cniVersion = typeof raw.cniVersion === 'string' && raw.cniVersion ? raw.cniVersion : fallbackVersion;
  const routes: CniRoute[] = [];
  const ips: CniIp[] = [];
  const interfaces: CniInterface[] = [];
  if (compareVersions(cniVersion, '0.3.0') < 0) {
    for (const key of ['ip4', 'ip6'] as const) {
      const c = raw[key];
      if (c === undefined || c === null) continue;
      if (!isObject(c)) throw new Error(`${key} is not an object`);
      const cidr = str(c.ip, `${key}.ip`);
      if (!cidr) throw new Error(`${key} has no ip`);
      const gateway = str(c.gateway, `${key}.gateway`);
      ips.push({ ...parseCidr(cidr), ...(gateway ? { gateway } : {}) });
      list(c.routes, `${key}.routes`).forEach((r, i) => routes.push(parseRoute(r, `${key}.routes[${i}]`)));
    }
  } else {
    list(raw.interfaces, 'interfaces').forEach((x, i) => {
      if (!isObject(x)) throw new Error(`interfaces[${i}] is not an object`);
      const name = str(x.name, `interfaces[${i}].name`);
      if (!name) throw new Error(`interfaces[${i}] has no name`);
      const mac = str(x.mac, `interfaces[${i}].mac`);
      const sandbox = str(x.sandbox, `interfaces[${i}].sandbox`);
      interfaces.push({ name, ...(mac ? { mac } : {}), ...(sandbox ? { sandbox } : {}), ...(typeof x.mtu === 'number' ? { mtu: x.mtu } : {}) });
    });
    list(raw.ips, 'ips').forEach((x, i) => {
      if (!isObject(x)) throw new Error(`ips[${i}] is not an object`);
      const cidr = str(x.address, `ips[${i}].address`);
      if (!cidr) throw new Error(`ips[${i}] has no address`);
      const gateway = str(x.gateway, `ips[${i}].gateway`);
      const ip: CniIp = { ...parseCidr(cidr), ...(gateway ? { gateway } : {}) };
      if (typeof x.interface === 'number') {
        const itf = interfaces[x.interface];
        if (!itf) throw new Error(`ips[${i}].interface ${x.interface} is not in interfaces`);
        ip.interface = itf.name;
      }
      ips.push(ip);
    });
    list(raw.routes, 'routes').forEach((r, i) => routes.push(parseRoute(r, `routes[${i}]`)));
  }
  const dns = parseDns(raw.dns);
  return { cniVersion, ips, interfaces, routes, ...(dns ? { dns } : {}), raw };
}

/**
 * The result in version `to` (for a prevResult). 0.1/0.2 results become the list form; ips get
 * their "version" for 0.3.x/0.4.0 and lose it from 1.0.0 on. Targets before 0.3.0 (which have no
 * chaining) get the result unchanged.
 */
export function convertResult(raw: Obj, to: string): Obj {
  const from = typeof raw.cniVersion === 'string' && raw.cniVersion ? raw.cniVersion : to;
  if (compareVersions(to, '0.3.0') < 0) return raw;
  let out: Obj;
  if (compareVersions(from, '0.3.0') < 0) {
    const parsed = parseResult(raw, from);
    out = {
      interfaces: [],
      ips: parsed.ips.map((ip) => ({ address: `${ip.address}/${ip.prefixLen}`, ...(ip.gateway ? { gateway: ip.gateway } : {}) })),
      routes: parsed.routes,
      ...(raw.dns !== undefined ? { dns: raw.dns } : {}),
    };
  } else {
    out = { ...raw };
  }
  if (Array.isArray(out.ips)) {
    const withVersion = !versionAtLeast(to, '1.0.0');
    out.ips = out.ips.map((ip: unknown) => {
      if (!isObject(ip)) return ip;
      const { version: _version, ...rest } = ip;
      if (!withVersion) return rest;
      const family = typeof ip.address === 'string' ? isIP(ip.address.split('/')[0]) : 0;
      return { version: family === 6 ? '6' : '4', ...rest };
    });
  }
  out.cniVersion = to;
  return out;
}
