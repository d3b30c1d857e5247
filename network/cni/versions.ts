// What spec versions each plugin executable supports (CNI VERSION), asked once per executable and
// asked again only when the file changes — readiness checks run every few seconds.
import { stat } from 'node:fs/promises';
import { logger } from '../../common/log.js';
import type { CniNetworkConfigList, CniPluginConf } from './config.js';

const log = logger('cni');

type AskVersion = (list: CniNetworkConfigList, plugin: CniPluginConf) => Promise<Record<string, unknown> | undefined>;

export class PluginVersions {
  private readonly known = new Map<string, { key: string; versions: string[] | undefined }>();

  constructor(private readonly ask: AskVersion) {}

  /** The plugin's supported versions; undefined when it does not say (the caller then assumes nothing). */
  async get(list: CniNetworkConfigList, plugin: CniPluginConf, path: string): Promise<string[] | undefined> {
    const st = await stat(path, { bigint: true });
    const key = `${st.ino}:${st.size}:${st.mtimeNs}`;
    const hit = this.known.get(path);
    if (hit?.key === key) return hit.versions;
    let versions: string[] | undefined;
    try {
      const out = await this.ask(list, plugin);
      const sv = out?.supportedVersions;
      if (Array.isArray(sv) && sv.every((v) => typeof v === 'string')) versions = sv;
    } catch (err) {
      // A plugin that cannot answer VERSION is not judged by it; ADD will tell.
      log.warn({ plugin: plugin.type, path, err }, 'CNI VERSION failed');
      return undefined;
    }
    this.known.set(path, { key, versions });
    return versions;
  }
}
