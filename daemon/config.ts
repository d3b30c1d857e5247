// skiffd configuration: embedded defaults, overridden by an optional TOML file, overridden by
// flags. Unknown keys are errors: a misspelt option silently ignored is worse than a refusal.
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import type { Level } from 'pino';
import { SkiffError, errnoCode, errorMessage } from '../common/errors.js';
import { LOG_LEVELS } from '../common/log.js';
import { parseDuration } from '../common/duration.js';
import type { NetworkConfig } from '../network/service.js';

export const DEFAULT_CONFIG_PATH = '/etc/skiff/skiff.toml';

export interface DaemonConfig {
  /** Unix socket path of the CRI gRPC server. */
  socket: string;
  /** Persistent state: images, snapshots, pod and container records. */
  root: string;
  /** Volatile state: sockets, netns pins, bundles. */
  state: string;
  logLevel: Level;
  cgroupDriver: 'cgroupfs' | 'systemd';
  images: {
    maxConcurrentDownloads: number;
    /** A pull receiving no byte for this long is cancelled; 0 disables. */
    pullProgressTimeoutMs: number;
  };
  runtime: {
    /** The handler of pods whose RuntimeClass names none. */
    defaultHandler: string;
    /** RuntimeClass handler name → OCI runtime. */
    handlers: Record<string, { kind: 'crun' | 'runc'; path: string }>;
  };
  /** Pod networking (network/service.ts); its data dir is under root. */
  network: Omit<NetworkConfig, 'dataDir'>;
  streaming: {
    /** host:port of the exec/attach/port-forward server (port 0: any free one). */
    address: string;
    /** PEM files for HTTPS; both or neither. */
    tlsCert?: string;
    tlsKey?: string;
    /** How long a URL from Exec/Attach/PortForward stays usable (kubelet's stream cache: 1 min). */
    tokenTtlMs: number;
    /** A SPDY session with no frame for this long is closed (containerd's stream_idle_timeout: 4 h). */
    idleTimeoutMs: number;
  };
  metrics: {
    /** host:port of the Prometheus /metrics endpoint (port 0: any free one); "" when off. */
    address: string;
  };
  cdi: {
    /** CDI spec dirs, lowest priority first: a device defined in a later dir wins. */
    specDirs: string[];
  };
  registry: {
    /** Registry domain → mirror endpoint URLs tried first, in order. */
    mirrors: Record<string, string[]>;
    /** Registry domains spoken to over plain HTTP. */
    insecure: string[];
    retries: number;
  };
}

export function defaultConfig(): DaemonConfig {
  return {
    socket: '/run/skiff/skiff.sock',
    root: '/var/lib/skiff',
    state: '/run/skiff',
    logLevel: 'info',
    cgroupDriver: 'cgroupfs',
    images: { maxConcurrentDownloads: 3, pullProgressTimeoutMs: 5 * 60_000 },
    runtime: {
      defaultHandler: 'crun',
      handlers: { crun: { kind: 'crun', path: '/usr/bin/crun' }, runc: { kind: 'runc', path: '/usr/bin/runc' } },
    },
    network: {
      mode: 'auto',
      bridge: 'skiff0',
      subnets: ['10.88.0.0/16'],
      mtu: 1500,
      natBackend: 'auto',
      cniConfDir: '/etc/cni/net.d',
      // containerd's default, then where Debian's containernetworking-plugins puts them.
      cniBinDirs: ['/opt/cni/bin', '/usr/lib/cni'],
    },
    // Loopback, as kubelet's own streaming server defaults to: kubelet proxies to it.
    streaming: { address: '127.0.0.1:0', tokenTtlMs: 60_000, idleTimeoutMs: 4 * 3600_000 },
    // Loopback, on a port that neither kubelet (10248, 10250, 10255) nor containerd's usual 1338 takes.
    metrics: { address: '127.0.0.1:9105' },
    registry: { mirrors: {}, insecure: [], retries: 3 },
    // containerd's cdi_spec_dirs and the CDI library's defaults: static specs, then generated ones.
    cdi: { specDirs: ['/etc/cdi', '/var/run/cdi'] },
  };
}

/** A Linux interface name: 1 to 15 bytes, no '/', ':', whitespace, and not "." or "..". */
export function validIfName(name: string): boolean {
  return /^[^/:\s]{1,15}$/.test(name) && name !== '.' && name !== '..' && Buffer.byteLength(name) <= 15;
}

/** A CIDR's syntax (address/prefix, IPv4 or IPv6); what it may hold is the IPAM's to check. */
export function validCidr(cidr: string): boolean {
  const m = /^([0-9a-fA-F.:]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(m[1]);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && Number(m[2]) <= 32;
  return m[1].includes(':') && Number(m[2]) <= 128;
}

type Table = Record<string, unknown>;

class ConfigReader {
  constructor(private readonly source: string) {}

  fail(key: string, why: string): never {
    throw new SkiffError('SKIFF_CONFIG_INVALID', `${this.source}: ${key}: ${why}`);
  }

  table(t: Table, key: string): Table | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'must be a table');
    return v as Table;
  }

  only(t: Table, prefix: string, keys: string[]): void {
    for (const k of Object.keys(t)) {
      if (!keys.includes(k)) this.fail(prefix + k, `unknown option (known: ${keys.join(', ')})`);
    }
  }

  string(t: Table, key: string, name = key): string | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') this.fail(name, 'must be a non-empty string');
    return v;
  }

  absPath(t: Table, key: string): string | undefined {
    const v = this.string(t, key);
    if (v !== undefined && !v.startsWith('/')) this.fail(key, `must be an absolute path, got "${v}"`);
    return v;
  }

  positiveInt(t: Table, key: string, name: string, allowZero = false): number | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 1000) {
      this.fail(name, `must be an integer between ${allowZero ? 0 : 1} and 1000`);
    }
    return n;
  }

  intRange(t: Table, key: string, name: string, min: number, max: number): number | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) this.fail(name, `must be an integer between ${min} and ${max}`);
    return n;
  }

  oneOf<T extends string>(t: Table, key: string, name: string, values: readonly T[]): T | undefined {
    const v = this.string(t, key, name);
    if (v !== undefined && !values.includes(v as T)) this.fail(name, `must be one of ${values.join(', ')}, got "${v}"`);
    return v as T | undefined;
  }

  duration(t: Table, key: string, name: string): number | undefined {
    const v = this.string(t, key, name);
    if (v === undefined) return undefined;
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      this.fail(name, errorMessage(err));
    }
    if (ms < 0) this.fail(name, `must not be negative, got "${v}"`);
    return Math.round(ms);
  }

  stringList(v: unknown, name: string): string[] {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) this.fail(name, 'must be a list of strings');
    return v as string[];
  }
}

/** Applies a parsed TOML document to `base`. */
export function applyToml(base: DaemonConfig, doc: Table, source: string): DaemonConfig {
  const r = new ConfigReader(source);
  const cfg = structuredClone(base);
  r.only(doc, '', ['socket', 'root', 'state', 'log_level', 'cgroup_driver', 'images', 'runtime', 'network', 'streaming', 'metrics', 'registry', 'cdi']);
  cfg.socket = r.absPath(doc, 'socket') ?? cfg.socket;
  cfg.root = r.absPath(doc, 'root') ?? cfg.root;
  cfg.state = r.absPath(doc, 'state') ?? cfg.state;
  const level = r.string(doc, 'log_level');
  if (level !== undefined) cfg.logLevel = checkLevel(level, (why) => r.fail('log_level', why));
  // systemd: slice and scope names (pod/cgroups/naming.ts), handed to the runtime as paths.
  cfg.cgroupDriver = r.oneOf(doc, 'cgroup_driver', 'cgroup_driver', ['cgroupfs', 'systemd'] as const) ?? cfg.cgroupDriver;
  const images = r.table(doc, 'images');
  if (images) {
    r.only(images, 'images.', ['max_concurrent_downloads', 'pull_progress_timeout']);
    cfg.images.maxConcurrentDownloads =
      r.positiveInt(images, 'max_concurrent_downloads', 'images.max_concurrent_downloads') ?? cfg.images.maxConcurrentDownloads;
    cfg.images.pullProgressTimeoutMs =
      r.duration(images, 'pull_progress_timeout', 'images.pull_progress_timeout') ?? cfg.images.pullProgressTimeoutMs;
  }
  const runtime = r.table(doc, 'runtime');
  if (runtime) {
    r.only(runtime, 'runtime.', ['default_handler', 'handlers']);
    const handlers = r.table(runtime, 'handlers');
    if (handlers) {
      for (const [name, v] of Object.entries(handlers)) {
        const key = `runtime.handlers.${name}`;
        if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(name)) r.fail(key, 'handler names are DNS labels, as RuntimeClass handlers are');
        if (typeof v !== 'object' || v === null || Array.isArray(v)) r.fail(key, 'must be a table with kind and path');
        r.only(v as Table, key + '.', ['kind', 'path']);
        const kind = r.string(v as Table, 'kind', key + '.kind');
        if (kind !== 'crun' && kind !== 'runc') r.fail(key + '.kind', `must be "crun" or "runc", got "${kind}"`);
        const path = r.absPath(v as Table, 'path') ?? r.fail(key + '.path', 'is required');
        cfg.runtime.handlers[name] = { kind: kind as 'crun' | 'runc', path };
      }
    }
    cfg.runtime.defaultHandler = r.string(runtime, 'default_handler', 'runtime.default_handler') ?? cfg.runtime.defaultHandler;
    if (!cfg.runtime.handlers[cfg.runtime.defaultHandler]) {
      r.fail('runtime.default_handler', `"${cfg.runtime.defaultHandler}" is not a configured handler (${Object.keys(cfg.runtime.handlers).join(', ')})`);
    }
  }
  const network = r.table(doc, 'network');
  if (network) {
    r.only(network, 'network.', ['mode', 'bridge', 'subnets', 'mtu', 'nat_backend', 'cni_conf_dir', 'cni_bin_dirs']);
    const n = cfg.network;
    n.mode = r.oneOf(network, 'mode', 'network.mode', ['auto', 'builtin', 'cni'] as const) ?? n.mode;
    const bridge = r.string(network, 'bridge', 'network.bridge');
    if (bridge !== undefined && !validIfName(bridge)) r.fail('network.bridge', `"${bridge}" is not a valid interface name (1-15 characters, no "/", ":" or spaces)`);
    n.bridge = bridge ?? n.bridge;
    if (network.subnets !== undefined) {
      n.subnets = r.stringList(network.subnets, 'network.subnets');
      const bad = n.subnets.find((c) => !validCidr(c));
      if (bad !== undefined) r.fail('network.subnets', `"${bad}" is not a CIDR (address/prefix)`);
      const v4 = n.subnets.filter((c) => !c.includes(':')).length;
      if (n.subnets.length === 0 || v4 > 1 || n.subnets.length - v4 > 1) r.fail('network.subnets', 'want one IPv4 and/or one IPv6 CIDR');
    }
    n.mtu = r.intRange(network, 'mtu', 'network.mtu', 576, 65535) ?? n.mtu;
    n.natBackend = r.oneOf(network, 'nat_backend', 'network.nat_backend', ['auto', 'nftables', 'iptables'] as const) ?? n.natBackend;
    n.cniConfDir = r.absPath(network, 'cni_conf_dir') ?? n.cniConfDir;
    if (network.cni_bin_dirs !== undefined) {
      n.cniBinDirs = r.stringList(network.cni_bin_dirs, 'network.cni_bin_dirs');
      const rel = n.cniBinDirs.find((d) => !d.startsWith('/'));
      if (rel !== undefined) r.fail('network.cni_bin_dirs', `must be absolute paths, got "${rel}"`);
    }
  }
  const streaming = r.table(doc, 'streaming');
  if (streaming) {
    r.only(streaming, 'streaming.', ['address', 'tls_cert', 'tls_key', 'token_ttl', 'stream_idle_timeout']);
    const address = r.string(streaming, 'address', 'streaming.address');
    if (address !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(address)) r.fail('streaming.address', `"${address}" is not host:port`);
    cfg.streaming.address = address ?? cfg.streaming.address;
    const cert = r.absPath(streaming, 'tls_cert');
    const key = r.absPath(streaming, 'tls_key');
    if ((cert === undefined) !== (key === undefined)) r.fail('streaming.tls_cert', 'tls_cert and tls_key go together');
    if (cert && key) cfg.streaming = { ...cfg.streaming, tlsCert: cert, tlsKey: key };
    const ttl = r.duration(streaming, 'token_ttl', 'streaming.token_ttl');
    if (ttl === 0) r.fail('streaming.token_ttl', 'must be above zero: a URL that expires at once is of no use');
    cfg.streaming.tokenTtlMs = ttl ?? cfg.streaming.tokenTtlMs;
    cfg.streaming.idleTimeoutMs = r.duration(streaming, 'stream_idle_timeout', 'streaming.stream_idle_timeout') ?? cfg.streaming.idleTimeoutMs;
  }
  const metrics = r.table(doc, 'metrics');
  if (metrics) {
    r.only(metrics, 'metrics.', ['address']);
    const address = metrics.address;
    if (address === '' || address === 'off') cfg.metrics.address = '';
    else if (address !== undefined) {
      const m = typeof address === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(address) : null;
      if (!m || Number(m[2]) > 65535) r.fail('metrics.address', `${JSON.stringify(address)} is not host:port, "" or "off"`);
      cfg.metrics.address = address as string;
    }
  }
  const registry = r.table(doc, 'registry');
  if (registry) {
    r.only(registry, 'registry.', ['mirrors', 'insecure', 'retries']);
    if (registry.insecure !== undefined) cfg.registry.insecure = r.stringList(registry.insecure, 'registry.insecure');
    cfg.registry.retries = r.positiveInt(registry, 'retries', 'registry.retries', true) ?? cfg.registry.retries;
    const mirrors = r.table(registry, 'mirrors');
    if (mirrors) {
      for (const [domain, v] of Object.entries(mirrors)) {
        const name = `registry.mirrors."${domain}"`;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) r.fail(name, 'must be a table with endpoints = [...]');
        r.only(v as Table, name + '.', ['endpoints']);
        const endpoints = r.stringList((v as Table).endpoints, name + '.endpoints');
        for (const e of endpoints) {
          if (!/^https?:\/\/[^/]+/.test(e)) r.fail(name + '.endpoints', `"${e}" is not an http:// or https:// URL`);
        }
        cfg.registry.mirrors[domain] = endpoints;
      }
    }
  }
  const cdi = r.table(doc, 'cdi');
  if (cdi) {
    r.only(cdi, 'cdi.', ['spec_dirs']);
    if (cdi.spec_dirs !== undefined) {
      const dirs = r.stringList(cdi.spec_dirs, 'cdi.spec_dirs');
      const rel = dirs.find((d) => !d.startsWith('/'));
      if (rel !== undefined) r.fail('cdi.spec_dirs', `must be absolute paths, got "${rel}"`);
      cfg.cdi.specDirs = dirs;
    }
  }
  return cfg;
}

function checkLevel(level: string, fail: (why: string) => never): Level {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) fail(`must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  return level as Level;
}

export interface Flags {
  config?: string;
  socket?: string;
  root?: string;
  state?: string;
  logLevel?: string;
}

/**
 * Defaults, then the config file (`--config`, else /etc/skiff/skiff.toml if it exists), then
 * flags. A config file named by flag must exist.
 */
export async function loadConfig(flags: Flags): Promise<{ config: DaemonConfig; source: string }> {
  let cfg = defaultConfig();
  let source = 'embedded defaults';
  const path = flags.config ?? DEFAULT_CONFIG_PATH;
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' || flags.config !== undefined) {
      throw new SkiffError('SKIFF_CONFIG_INVALID', `cannot read config file ${path}: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (text !== undefined) {
    let doc: Table;
    try {
      doc = parseToml(text);
    } catch (err) {
      throw new SkiffError('SKIFF_CONFIG_INVALID', `${path}: not valid TOML: ${errorMessage(err)}`, { cause: err });
    }
    cfg = applyToml(cfg, doc, path);
    source = path;
  }
  const fl = new ConfigReader('flags');
  const flagTable: Table = {};
  if (flags.socket !== undefined) flagTable.socket = flags.socket;
  if (flags.root !== undefined) flagTable.root = flags.root;
  if (flags.state !== undefined) flagTable.state = flags.state;
  if (flags.logLevel !== undefined) flagTable.log_level = flags.logLevel;
  cfg.socket = fl.absPath(flagTable, 'socket') ?? cfg.socket;
  cfg.root = fl.absPath(flagTable, 'root') ?? cfg.root;
  cfg.state = fl.absPath(flagTable, 'state') ?? cfg.state;
  const level = fl.string(flagTable, 'log_level', '--log-level');
  if (level !== undefined) cfg.logLevel = checkLevel(level, (why) => fl.fail('--log-level', why));
  return { config: cfg, source };
}
