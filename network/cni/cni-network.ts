// Pod networking through CNI plugins (CNI spec 0.3.0–1.1.0, libcni's behaviour where the spec
// leaves room): the network is the first config list in the conf dir; ADD runs its plugins in
// order, each getting the previous one's result; DEL runs them in reverse with the cached ADD
// result, using the *cached* config list, so a pod added before a config change or a restart is
// removed with what added it. CHECK, STATUS and GC as in spec 1.1.0. Operations on one container
// id are serialized (spec: no parallel operations for the same container).
import { statfs } from 'node:fs/promises';
import { SkiffError, isSkiffError, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { CACHE_KIND, ResultCache, decodeConfig, encodeConfig, type CacheEntry, type CacheRecord } from './cache.js';
import { ConfDir } from './conf-dir.js';
import { parseConfList, versionAtLeast, type CniNetworkConfigList, type CniPluginConf } from './config.js';
import { CNI_ERROR_CODES, CniPluginError, execPlugin, findPlugin, type CniCommand } from './exec.js';
import { convertResult, parseResult, type CniResult } from './result.js';
import {
  DEFAULT_IFNAME,
  checkRef,
  normalizeCapabilities,
  podArgs,
  type CniAddRequest,
  type CniAttachmentRef,
  type CniDelRequest,
  type CniPod,
} from './request.js';
import { PluginVersions } from './versions.js';

const log = logger('cni');

const NSFS_MAGIC = 0x6e736673;

export interface CniNetworkOptions {
  /** Where network config lists are: the first *.conflist/*.conf/*.json by name is used. */
  confDir: string;
  /** Where plugin executables are, searched in order (also passed to plugins as CNI_PATH). */
  binDirs: string[];
  /** skiff's own CNI state: results/<network>-<containerId>-<ifName>, libcni's layout. */
  cacheDir: string;
  /** Bound on each plugin run; the plugin and its children are killed after it. Default 60 s. */
  pluginTimeoutMs?: number;
}

export interface CniStatus {
  ready: boolean;
  /** Set when not ready: kubelet's NetworkReady condition reason and message. */
  reason?: string;
  message?: string;
}

export interface CniGcReport {
  /** Cached attachments not in the valid set, DELeted and forgotten. */
  removed: { containerId: string; ifName: string; network: string }[];
  /** What failed (each DEL or plugin GC); the rest still ran. */
  errors: SkiffError[];
}

type Obj = Record<string, unknown>;

/** What one invocation passes besides the config: libcni's RuntimeConf. */
interface Runtime {
  containerId: string;
  ifName: string;
  netns: string;
  cniArgs: [string, string][];
  capabilityArgs: Obj;
}

export class CniNetwork {
  private readonly confDir: ConfDir;
  private readonly cache: ResultCache;
  private readonly binDirs: string[];
  private readonly timeoutMs: number;
  private readonly versions: PluginVersions;
  private readonly locks = new Map<string, Promise<void>>();
  /** Sequence number of each container's latest ADD start, so GC never undoes an ADD newer than itself. */
  private readonly addSeq = new Map<string, number>();
  private seq = 0;

  constructor(opts: CniNetworkOptions) {
    this.confDir = new ConfDir(opts.confDir);
    this.cache = new ResultCache(opts.cacheDir);
    this.binDirs = [...opts.binDirs];
    this.timeoutMs = opts.pluginTimeoutMs ?? 60_000;
    this.versions = new PluginVersions((list, plugin) => this.runPlugin(list, plugin, 'VERSION', undefined));
  }

  /** The network config list in use, re-read when the conf dir changed; undefined if none. */
  async config(): Promise<CniNetworkConfigList | undefined> {
    return (await this.confDir.current()).chosen;
  }

  /** Adds the sandbox to the network; on failure the chain is DELeted (best effort) and the plugin's error thrown. */
  async add(req: CniAddRequest): Promise<CniResult> {
    const ifName = checkRef(req);
    if (!req.netnsPath) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `CNI ADD of sandbox "${req.containerId}": no netns path`);
    const cniArgs = podArgs(req);
    const capabilityArgs = normalizeCapabilities(req.capabilities ?? {});
    this.addSeq.set(req.containerId, ++this.seq);
    return this.locked(req.containerId, async () => {
      const list = await this.config();
      if (!list) throw new SkiffError('SKIFF_NOT_READY', `no CNI network config found in ${this.confDir.dir}`);
      // An earlier attachment of this id (a retried ADD, or one a crash interrupted) goes first.
      for (const e of await this.cache.find(req.containerId, ifName)) await this.delEntry(e, req.netnsPath);

      const rt: Runtime = { containerId: req.containerId, ifName, netns: req.netnsPath, cniArgs, capabilityArgs };
      const record: CacheRecord = {
        kind: CACHE_KIND,
        containerId: req.containerId,
        config: encodeConfig(list.json),
        ifName,
        networkName: list.name,
        netns: req.netnsPath,
        cniArgs,
        capabilityArgs,
      };
      const started = performance.now();
      const path = await this.cache.write(record); // before ADD: what to DEL with if we crash midway
      try {
        let prev: Obj | undefined;
        let last = list.plugins[0];
        for (const plugin of list.plugins) {
          last = plugin;
          const out = await this.runPlugin(list, plugin, 'ADD', rt, prev && convertResult(prev, list.cniVersion));
          if (!out) throw new CniPluginError(list.name, plugin.type, 'ADD', 'returned no result');
          // libcni's fixupResultVersion: a result naming no version is in the config's.
          prev = typeof out.cniVersion === 'string' && out.cniVersion ? out : { ...out, cniVersion: list.cniVersion };
        }
        let result: CniResult;
        try {
          result = parseResult(prev ?? {}, list.cniVersion);
        } catch (err) {
          throw new CniPluginError(list.name, last.type, 'ADD', `returned an invalid result: ${errorMessage(err)}`);
        }
        await this.cache.write({ ...record, result: prev });
        log.debug({ sandbox: req.containerId, network: list.name, ms: Math.round(performance.now() - started) }, 'CNI ADD');
        return result;
      } catch (err) {
        await this.rollback(list, rt, path);
        throw err;
      }
    });
  }

  /** Removes the sandbox from the network it was added to (the cached config). Idempotent. */
  async del(req: CniDelRequest): Promise<void> {
    const ifName = checkRef(req);
    await this.locked(req.containerId, async () => {
      const entries = await this.cache.find(req.containerId, ifName);
      if (entries.length === 0) log.debug({ sandbox: req.containerId, ifName }, 'CNI DEL: no cached attachment, nothing to do');
      for (const e of entries) await this.delEntry(e, req.netnsPath);
      this.addSeq.delete(req.containerId);
    });
  }

  /**
   * CHECK with the cached config and result. False when there was nothing to run: the config
   * disables CHECK or predates it (spec 0.4.0). Throws the plugin's error when a check fails.
   */
  async check(req: CniPod): Promise<boolean> {
    const ifName = checkRef(req);
    return this.locked(req.containerId, async () => {
      const [e] = await this.cache.find(req.containerId, ifName);
      if (!e?.record) throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${req.containerId}" has no CNI attachment on ${ifName}`);
      const rec = e.record;
      if (!rec.result) throw new SkiffError('SKIFF_FAILED_PRECONDITION', `sandbox "${req.containerId}": its CNI ADD did not finish`);
      const list = cachedList(rec);
      if (list.disableCheck || !versionAtLeast(list.cniVersion, '0.4.0')) return false;
      const rt = runtimeOf(rec, req.netnsPath);
      const prev = convertResult(rec.result, list.cniVersion);
      for (const plugin of list.plugins) await this.runPlugin(list, plugin, 'CHECK', rt, prev);
      return true;
    });
  }

  /**
   * Network readiness: a config exists, its plugins are installed and speak its version, and —
   * for spec 1.1.0 configs — each plugin's STATUS succeeds.
   */
  async status(): Promise<CniStatus> {
    const notReady = (message: string): CniStatus => ({ ready: false, reason: 'NetworkPluginNotReady', message });
    const list = await this.config();
    if (!list) return notReady(`no CNI network config found in ${this.confDir.dir}`);
    for (const plugin of list.plugins) {
      let path: string;
      try {
        path = await findPlugin(list.name, plugin.type, this.binDirs, 'STATUS');
      } catch (err) {
        return notReady(errorMessage(err));
      }
      const supported = await this.versions.get(list, plugin, path);
      if (supported && !supported.includes(list.cniVersion)) {
        return notReady(
          `CNI network "${list.name}": plugin ${plugin.type} does not support CNI version ${list.cniVersion} (it supports ${supported.join(', ')})`,
        );
      }
    }
    if (versionAtLeast(list.cniVersion, '1.1.0')) {
      for (const plugin of list.plugins) {
        try {
          await this.runPlugin(list, plugin, 'STATUS', undefined);
        } catch (err) {
          if (!(err instanceof CniPluginError)) throw err;
          const meaning = err.cniCode !== undefined ? CNI_ERROR_CODES[err.cniCode] : undefined;
          return notReady(err.cniCode !== undefined ? `${err.message} (CNI error ${err.cniCode}${meaning ? `: ${meaning}` : ''})` : err.message);
        }
      }
    }
    return { ready: true };
  }

  /**
   * Garbage collection (libcni GCNetworkList): every cached attachment not in `valid` is DELeted
   * with its cached config and forgotten, unusable cache files are removed, then — for spec 1.1.0
   * configs without disableGC — each plugin gets GC with `cni.dev/valid-attachments`. `valid` must
   * include sandboxes being set up right now; an ADD that starts after gc() began is never undone.
   */
  async gc(valid: Iterable<CniAttachmentRef>): Promise<CniGcReport> {
    const startSeq = this.seq;
    const validKeys = new Map<string, { containerID: string; ifname: string }>();
    for (const a of valid) {
      const ifname = a.ifName ?? DEFAULT_IFNAME;
      validKeys.set(`${a.containerId}\0${ifname}`, { containerID: a.containerId, ifname });
    }
    const report: CniGcReport = { removed: [], errors: [] };
    const keep = (err: unknown): void => {
      if (!isSkiffError(err)) throw err;
      report.errors.push(err);
    };
    for (const e of await this.cache.list()) {
      if (!e.record) {
        log.warn({ file: e.path, reason: e.invalid }, 'removing an unusable CNI cache file');
        await this.cache.remove(e.path);
        continue;
      }
      const { containerId, ifName, networkName } = e.record;
      if (validKeys.has(`${containerId}\0${ifName}`)) continue;
      await this.locked(containerId, async () => {
        if ((this.addSeq.get(containerId) ?? 0) > startSeq) return;
        const now = await this.cache.read(e.path); // it may have gone while we waited for the lock
        if (!now?.record) return;
        try {
          await this.delEntry(now, undefined);
          this.addSeq.delete(containerId);
          report.removed.push({ containerId, ifName, network: networkName });
          log.info({ sandbox: containerId, ifName, network: networkName }, 'CNI GC: removed a stale attachment');
        } catch (err) {
          keep(err);
        }
      });
    }
    const list = await this.config();
    if (list && versionAtLeast(list.cniVersion, '1.1.0') && !list.disableGC) {
      const attachments = [...validKeys.values()];
      // libcni sends both keys: "cni.dev/attachments" was the name in an early 1.1 draft (cni#1101).
      const extra = { 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments };
      for (const plugin of list.plugins) {
        try {
          await this.runPlugin(list, plugin, 'GC', undefined, undefined, extra);
        } catch (err) {
          keep(err);
        }
      }
    }
    return report;
  }

  /** DELs one cached attachment, newest plugin first, then forgets it. Throws on the first plugin failure. */
  private async delEntry(e: CacheEntry, netnsPath: string | undefined): Promise<void> {
    const rec = e.record;
    if (!rec) return;
    let list: CniNetworkConfigList;
    try {
      list = cachedList(rec);
    } catch (err) {
      // Nothing can be run without a config: say so once, and forget the record.
      log.error({ file: e.path, err }, 'cached CNI config is unusable; the attachment cannot be DELeted');
      await this.cache.remove(e.path);
      return;
    }
    const rt = runtimeOf(rec, netnsPath);
    rt.netns = await usableNetns(rt.netns);
    // Spec 0.4.0 added prevResult on DEL.
    const prev = rec.result && versionAtLeast(list.cniVersion, '0.4.0') ? convertResult(rec.result, list.cniVersion) : undefined;
    const started = performance.now();
    for (const plugin of [...list.plugins].reverse()) await this.runPlugin(list, plugin, 'DEL', rt, prev);
    await this.cache.remove(e.path);
    log.debug({ sandbox: rec.containerId, network: list.name, ms: Math.round(performance.now() - started) }, 'CNI DEL');
  }

  /** After a failed ADD: DEL every plugin (newest first), each failure logged and the rest still run. */
  private async rollback(list: CniNetworkConfigList, rt: Runtime, path: string): Promise<void> {
    let clean = true;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.runPlugin(list, plugin, 'DEL', rt, undefined);
      } catch (err) {
        clean = false;
        log.warn({ sandbox: rt.containerId, network: list.name, plugin: plugin.type, err }, 'CNI DEL after a failed ADD failed');
      }
    }
    // A record left behind lets a later del() or gc() try again with the same config.
    if (clean) await this.cache.remove(path);
  }

  private runPlugin(
    list: CniNetworkConfigList,
    plugin: CniPluginConf,
    command: CniCommand,
    rt: Runtime | undefined,
    prevResult?: Obj,
    extra?: Obj,
  ): Promise<Obj | undefined> {
    // libcni buildOneConfig: the list's name and version in every plugin, the previous result, and
    // runtimeConfig with only the capabilities this plugin declares.
    const conf: Obj = { ...plugin.conf, ...extra, name: list.name, cniVersion: list.cniVersion };
    if (prevResult) conf.prevResult = prevResult;
    const env: Record<string, string> = {};
    if (rt) {
      const runtimeConfig: Obj = {};
      for (const cap of plugin.capabilities) if (rt.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = rt.capabilityArgs[cap];
      if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
      env.CNI_CONTAINERID = rt.containerId;
      env.CNI_NETNS = rt.netns;
      env.CNI_IFNAME = rt.ifName;
      env.CNI_ARGS = rt.cniArgs.map(([k, v]) => `${k}=${v}`).join(';');
    }
    const stdin = command === 'VERSION' ? JSON.stringify({ cniVersion: list.cniVersion }) : JSON.stringify(conf);
    return execPlugin({ network: list.name, type: plugin.type, command, binDirs: this.binDirs, env, stdin, timeoutMs: this.timeoutMs });
  }

  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const mine = before.then(() => gate);
    this.locks.set(id, mine);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(id) === mine) this.locks.delete(id);
    }
  }
}

function cachedList(rec: CacheRecord): CniNetworkConfigList {
  return parseConfList(decodeConfig(rec.config), 'cache');
}

function runtimeOf(rec: CacheRecord, netnsPath: string | undefined): Runtime {
  return {
    containerId: rec.containerId,
    ifName: rec.ifName,
    netns: netnsPath ?? rec.netns ?? '',
    cniArgs: rec.cniArgs ?? [],
    capabilityArgs: rec.capabilityArgs ?? {},
  };
}

/** The path if it is a network namespace still (a pin whose mount is gone is only a file); else ''. */
async function usableNetns(path: string): Promise<string> {
  if (!path) return '';
  try {
    return (await statfs(path)).type === NSFS_MAGIC ? path : '';
  } catch {
    return '';
  }
}
