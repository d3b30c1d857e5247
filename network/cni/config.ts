// CNI network configuration lists: parsing and validation of one file's text, pure. CNI spec
// "Section 1: Network configuration format"; a single-plugin `.conf`/`.json` becomes a list of one,
// as libcni's ConfListFromConf does. Version negotiation (spec 1.1.0 `cniVersions`): the highest
// version both the file and skiff know.

/** CNI spec versions skiff speaks, oldest first. */
export const CNI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** One plugin of a list: its `type` (the executable's name), declared capabilities, whole object. */
export interface CniPluginConf {
  type: string;
  /** Capabilities the plugin declares (`"capabilities": {"portMappings": true}`), only the true ones. */
  capabilities: string[];
  /** The plugin's configuration object as written, before the runtime injects anything. */
  conf: Readonly<Record<string, unknown>>;
}

/** A network configuration list, ready to run. */
export interface CniNetworkConfigList {
  name: string;
  /** The negotiated version: sent to every plugin, and the version results are read in. */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  plugins: CniPluginConf[];
  /** The file it came from (or `cache` for a cached copy). */
  source: string;
  /** The list as JSON with the negotiated `cniVersion`: what the result cache keeps. */
  json: string;
}

// CNI spec: container ids and network names start alphanumeric, then [A-Za-z0-9_.-].
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validId(s: string): boolean {
  return ID_RE.test(s);
}

/** CNI spec: an interface name is not empty, not `.`/`..`, under 16 bytes, no `/`, `:` or space. */
export function validIfName(s: string): boolean {
  return s.length > 0 && Buffer.byteLength(s) < 16 && s !== '.' && s !== '..' && !/[/:\s]/.test(s);
}

/** -1, 0 or 1, for versions of the form MAJOR.MINOR.PATCH. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** libcni accepts a boolean or the strings "true"/"false" for these flags. */
function flag(obj: Record<string, unknown>, key: string): boolean {
  const v = obj[key];
  if (v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && (v.toLowerCase() === 'true' || v.toLowerCase() === 'false')) return v.toLowerCase() === 'true';
  throw new Error(`"${key}" must be a boolean, got ${JSON.stringify(v)}`);
}

/** The highest of `cniVersion` and `cniVersions` that skiff knows (spec 1.1.0 negotiation). */
function negotiateVersion(obj: Record<string, unknown>): string {
  const offered: string[] = [];
  if (obj.cniVersion !== undefined) {
    if (typeof obj.cniVersion !== 'string') throw new Error(`"cniVersion" must be a string`);
    offered.push(obj.cniVersion);
  }
  if (obj.cniVersions !== undefined) {
    if (!Array.isArray(obj.cniVersions) || !obj.cniVersions.every((v) => typeof v === 'string')) {
      throw new Error(`"cniVersions" must be a list of strings`);
    }
    offered.push(...(obj.cniVersions));
  }
  if (offered.length === 0) throw new Error('no "cniVersion"');
  const known = offered.filter((v) => (CNI_VERSIONS as readonly string[]).includes(v));
  if (known.length === 0) throw new Error(`unsupported CNI version ${offered.join(', ')} (skiff speaks ${CNI_VERSIONS.join(', ')})`);
  return known.sort(compareVersions)[known.length - 1];
}

function parsePlugin(p: unknown, i: number): CniPluginConf {
  if (!isObject(p)) throw new Error(`plugin ${i} is not an object`);
  if (typeof p.type !== 'string' || p.type === '') throw new Error(`plugin ${i} has no "type"`);
  // The type names an executable in the bin dirs; it must not reach outside them.
  if (p.type.includes('/') || p.type === '.' || p.type === '..') throw new Error(`plugin ${i} has an invalid type "${p.type}"`);
  const capabilities: string[] = [];
  if (p.capabilities !== undefined) {
    if (!isObject(p.capabilities)) throw new Error(`plugin ${i} ("${p.type}"): "capabilities" must be an object`);
    for (const [k, v] of Object.entries(p.capabilities)) if (v === true) capabilities.push(k);
  }
  return { type: p.type, capabilities, conf: p };
}

function parseJSONObject(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new Error('not a JSON object');
  return v;
}

/** A `.conflist`: `{name, cniVersion, plugins: [...]}`. Throws an Error naming what is wrong. */
export function parseConfList(text: string, source: string): CniNetworkConfigList {
  const obj = parseJSONObject(text);
  if (typeof obj.name !== 'string' || obj.name === '') throw new Error('no "name"');
  if (!validId(obj.name)) throw new Error(`invalid network name "${obj.name}"`);
  const cniVersion = negotiateVersion(obj);
  if (!Array.isArray(obj.plugins)) throw new Error('no "plugins" list');
  if (obj.plugins.length === 0) throw new Error('no plugins in the list');
  const plugins = obj.plugins.map(parsePlugin);
  const normalized: Record<string, unknown> = { ...obj, cniVersion };
  delete normalized.cniVersions;
  return {
    name: obj.name,
    cniVersion,
    disableCheck: flag(obj, 'disableCheck'),
    disableGC: flag(obj, 'disableGC'),
    plugins,
    source,
    json: JSON.stringify(normalized),
  };
}

/** A single-plugin `.conf`/`.json`, up-converted to a list of one (libcni ConfListFromConf). */
export function parseConf(text: string, source: string): CniNetworkConfigList {
  const obj = parseJSONObject(text);
  if (obj.type === undefined && Array.isArray(obj.plugins)) {
    throw new Error('no "type": a network configuration list belongs in a .conflist file');
  }
  const list: Record<string, unknown> = { name: obj.name, plugins: [obj] };
  if (obj.cniVersion !== undefined) list.cniVersion = obj.cniVersion;
  if (obj.cniVersions !== undefined) list.cniVersions = obj.cniVersions;
  return parseConfList(JSON.stringify(list), source);
}

export const CONF_EXTENSIONS = ['.conflist', '.conf', '.json'] as const;

/** Parses a conf dir file by its extension; undefined for names that are not CNI configs. */
export function parseConfFile(name: string, text: string, source: string): CniNetworkConfigList | undefined {
  if (name.endsWith('.conflist')) return parseConfList(text, source);
  if (name.endsWith('.conf') || name.endsWith('.json')) return parseConf(text, source);
  return undefined;
}
