// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on a free loopback
// port, with its own storage in a temp dir, optionally behind htpasswd basic auth.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run, spawnLogged, stopChild, tail, waitUntil } from './process.js';

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The temp dir holding config, log, htpasswd and storage; removed by stop(). */
  dir: string;
  /** Basic-auth credentials the registry demands, when it was started with them. */
  auth?: { user: string; password: string };
  stop(): Promise<void>;
  /** The registry's on-disk data file of a blob, so a test can corrupt it. */
  blobPath(digest: string): string;
}

export interface RegistryOptions {
  htpasswd?: { user: string; password: string };
  /** How long to wait for `GET /v2/` to answer. */
  startTimeoutMs?: number;
}

const REGISTRY_BIN = '/usr/bin/docker-registry';

// config.yml of distribution 2.8 (docs/configuration.md). JSON is valid YAML, so the config is
// written as JSON and no YAML library is needed.
function registryConfig(dir: string, port: number, htpasswdFile?: string): object {
  return {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      // Tests delete manifests and blobs to exercise "image gone" paths.
      delete: { enabled: true },
      // No `cache:` section: with no blob-descriptor cache a test that corrupts a blob on disk
      // sees the registry serve exactly those bytes. Upload purging only adds a background walker.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      // Signs upload-session state; set so the registry does not warn about making one up.
      secret: randomBytes(16).toString('hex'),
      headers: { 'X-Content-Type-Options': ['nosniff'] },
    },
    ...(htpasswdFile ? { auth: { htpasswd: { realm: 'skiff-test', path: htpasswdFile } } } : {}),
  };
}

// distribution lets REGISTRY_<SECTION>_<KEY> variables override config.yml, so a stray one in
// the test environment (REGISTRY_HTTP_ADDR, REGISTRY_AUTH…) would silently change our registry.
function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
}

async function probeV2(url: string): Promise<boolean> {
  const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
  await res.arrayBuffer();
  // 401 is "up, and wants credentials".
  return res.status === 200 || res.status === 401;
}

/** Starts a registry on 127.0.0.1 and resolves once `GET /v2/` answers. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-registry-'));
  const logFile = join(dir, 'registry.log');
  let htpasswdFile: string | undefined;
  try {
    if (opts.htpasswd) {
      // distribution's htpasswd backend accepts bcrypt entries only.
      const { stdout } = await run('htpasswd', ['-Bbn', opts.htpasswd.user, opts.htpasswd.password]);
      htpasswdFile = join(dir, 'htpasswd');
      await writeFile(htpasswdFile, stdout.toString('utf8').trim() + '\n', { mode: 0o600 });
    }
    // The port is free when we look but may be taken before the registry binds it: retry then.
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const configFile = join(dir, 'config.yml');
      await writeFile(configFile, JSON.stringify(registryConfig(dir, port, htpasswdFile), null, 2));
      const url = `http://127.0.0.1:${port}`;
      const child = await spawnLogged(REGISTRY_BIN, ['serve', configFile], logFile, registryEnv());
      try {
        await waitUntil('docker-registry', () => probeV2(url), {
          timeoutMs: opts.startTimeoutMs ?? 15_000,
          child,
        });
        return makeHandle(dir, port, child, opts.htpasswd);
      } catch (err) {
        await stopChild(child);
        const log = await tail(logFile);
        lastError = new Error(`${(err as Error).message}\n--- ${logFile} (tail) ---\n${log}`, { cause: err });
        if (!/address already in use/.test(log)) break;
      }
    }
    throw lastError ?? new Error('docker-registry did not start');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function makeHandle(
  dir: string,
  port: number,
  child: ChildProcess,
  auth: { user: string; password: string } | undefined,
): TestRegistry {
  let stopped: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    dir,
    ...(auth ? { auth } : {}),
    stop() {
      stopped ??= (async () => {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    blobPath(digest: string): string {
      const [algorithm, hex] = digest.split(':');
      if (!algorithm || !hex) throw new Error(`not a digest: ${digest}`);
      // distribution's filesystem layout (registry/storage/paths.go): blobs/<alg>/<2 hex>/<hex>/data.
      return join(dir, 'data', 'docker', 'registry', 'v2', 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
    },
  };
}
