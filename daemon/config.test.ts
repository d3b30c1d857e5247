import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyToml, defaultConfig, loadConfig } from './config.js';
import { parseDuration } from '../common/duration.js';
import { isSkiffError } from '../common/errors.js';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';

test('parseDuration reads Go-style durations', () => {
  const rows: [string, number][] = [
    ['0', 0],
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
  ];
  for (const [s, ms] of rows) assert.equal(parseDuration(s), ms, s);
  for (const bad of ['', '5', '5x', 'm', '1s junk']) assert.throws(() => parseDuration(bad), /invalid duration/, bad);
});

test('every config field has an embedded default', () => {
  const d = defaultConfig();
  assert.equal(d.socket, '/run/skiff/skiff.sock');
  assert.equal(d.root, '/var/lib/skiff');
  assert.equal(d.state, '/run/skiff');
  assert.equal(d.logLevel, 'info');
  assert.equal(d.cgroupDriver, 'cgroupfs');
  assert.deepEqual(d.registry, { mirrors: {}, insecure: [], retries: 3 });
  assert.deepEqual(d.cdi, { specDirs: ['/etc/cdi', '/var/run/cdi'] });
  assert.deepEqual(d.images, { maxConcurrentDownloads: 3, pullProgressTimeoutMs: 300_000 });
  assert.equal(d.runtime.defaultHandler, 'crun');
  assert.deepEqual(Object.keys(d.runtime.handlers).sort(), ['crun', 'runc']);
  assert.deepEqual(d.network, {
    mode: 'auto',
    bridge: 'skiff0',
    subnets: ['10.88.0.0/16'],
    mtu: 1500,
    natBackend: 'auto',
    cniConfDir: '/etc/cni/net.d',
    cniBinDirs: ['/opt/cni/bin', '/usr/lib/cni'],
  });
});

test('[network] overrides: dual-stack subnets, bridge, MTU, NAT backend, CNI dirs', () => {
  const cfg = applyToml(
    defaultConfig(),
    { network: { mode: 'builtin', bridge: 'cni-br0', subnets: ['10.200.0.0/16', 'fd00:200::/64'], mtu: 9000, nat_backend: 'iptables', cni_conf_dir: '/etc/skiff/cni', cni_bin_dirs: ['/opt/x'] } },
    'n.toml',
  );
  assert.deepEqual(cfg.network, {
    mode: 'builtin',
    bridge: 'cni-br0',
    subnets: ['10.200.0.0/16', 'fd00:200::/64'],
    mtu: 9000,
    natBackend: 'iptables',
    cniConfDir: '/etc/skiff/cni',
    cniBinDirs: ['/opt/x'],
  });
});

test('a TOML document overrides defaults field by field', () => {
  const cfg = applyToml(
    defaultConfig(),
    {
      root: '/srv/skiff',
      log_level: 'debug',
      images: { pull_progress_timeout: '30s' },
      registry: { insecure: ['127.0.0.1:5000'], mirrors: { 'docker.io': { endpoints: ['http://127.0.0.1:5001'] } } },
    },
    'test.toml',
  );
  assert.equal(cfg.root, '/srv/skiff');
  assert.equal(cfg.socket, '/run/skiff/skiff.sock');
  assert.equal(cfg.logLevel, 'debug');
  assert.equal(cfg.images.pullProgressTimeoutMs, 30_000);
  assert.equal(cfg.images.maxConcurrentDownloads, 3);
  assert.deepEqual(cfg.registry.insecure, ['127.0.0.1:5000']);
  assert.deepEqual(cfg.registry.mirrors, { 'docker.io': ['http://127.0.0.1:5001'] });
  const rt = applyToml(defaultConfig(), { runtime: { default_handler: 'fast', handlers: { fast: { kind: 'crun', path: '/opt/crun' } } } }, 't.toml');
  assert.equal(rt.runtime.defaultHandler, 'fast');
  assert.deepEqual(rt.runtime.handlers.fast, { kind: 'crun', path: '/opt/crun' });
  assert.ok(rt.runtime.handlers.runc, 'the built-in handlers stay');
});

test('cgroup_driver = "systemd" is accepted (slice naming, paths handed to the runtime)', () => {
  assert.equal(applyToml(defaultConfig(), { cgroup_driver: 'systemd' }, 'test').cgroupDriver, 'systemd');
  assert.equal(applyToml(defaultConfig(), { cgroup_driver: 'cgroupfs' }, 'test').cgroupDriver, 'cgroupfs');
});

test('[metrics] address: host:port, or "off" / "" to serve no /metrics', () => {
  assert.equal(defaultConfig().metrics.address, '127.0.0.1:9105');
  assert.equal(applyToml(defaultConfig(), { metrics: { address: '0.0.0.0:9200' } }, 'm.toml').metrics.address, '0.0.0.0:9200');
  assert.equal(applyToml(defaultConfig(), { metrics: { address: '[::1]:0' } }, 'm.toml').metrics.address, '[::1]:0');
  assert.equal(applyToml(defaultConfig(), { metrics: { address: 'off' } }, 'm.toml').metrics.address, '');
  assert.equal(applyToml(defaultConfig(), { metrics: { address: '' } }, 'm.toml').metrics.address, '');
  assert.equal(applyToml(defaultConfig(), { metrics: {} }, 'm.toml').metrics.address, '127.0.0.1:9105');
});

test('bad config values are refused with the key named', () => {
  const rows: [Record<string, unknown>, RegExp][] = [
    [{ sockett: '/x' }, /sockett: unknown option/],
    [{ root: 'relative' }, /root: must be an absolute path/],
    [{ log_level: 'loud' }, /log_level: must be one of/],
    [{ cgroup_driver: 'both' }, /cgroup_driver: must be one of cgroupfs, systemd, got "both"/],
    [{ images: { max_concurrent_downloads: 0 } }, /images.max_concurrent_downloads/],
    [{ images: { pull_progress_timeout: 'soon' } }, /images.pull_progress_timeout: invalid duration/],
    [{ images: { pull_progress_timeout: '-1s' } }, /images.pull_progress_timeout: must not be negative/],
    [{ images: { typo: 1 } }, /images.typo: unknown option/],
    [{ registry: { insecure: 'host' } }, /registry.insecure: must be a list/],
    [{ registry: { mirrors: { 'docker.io': { endpoints: ['ftp://x'] } } } }, /is not an http/],
    [{ registry: { mirrors: { 'docker.io': ['http://x'] } } }, /must be a table/],
    [{ runtime: { default_handler: 'kata' } }, /runtime.default_handler: "kata" is not a configured handler/],
    [{ runtime: { handlers: { fast: { kind: 'youki', path: '/usr/bin/youki' } } } }, /runtime.handlers.fast.kind: must be "crun" or "runc"/],
    [{ runtime: { handlers: { fast: { kind: 'crun' } } } }, /runtime.handlers.fast.path: is required/],
    [{ runtime: { handlers: { Bad_Name: { kind: 'crun', path: '/x' } } } }, /DNS labels/],
    [{ network: { mode: 'flannel' } }, /network.mode: must be one of auto, builtin, cni/],
    [{ network: { bridge: 'a-very-long-bridge-name' } }, /network.bridge: .* is not a valid interface name/],
    [{ network: { bridge: 'br/0' } }, /network.bridge/],
    [{ network: { subnets: ['10.0.0.0'] } }, /network.subnets: "10.0.0.0" is not a CIDR/],
    [{ network: { subnets: ['10.0.0.300/8'] } }, /network.subnets: "10.0.0.300\/8" is not a CIDR/],
    [{ network: { subnets: ['10.0.0.0/8', '10.1.0.0/16'] } }, /want one IPv4 and\/or one IPv6 CIDR/],
    [{ network: { subnets: [] } }, /want one IPv4/],
    [{ network: { mtu: 70000 } }, /network.mtu: must be an integer between 576 and 65535/],
    [{ network: { nat_backend: 'pf' } }, /network.nat_backend: must be one of/],
    [{ network: { cni_bin_dirs: ['bin'] } }, /network.cni_bin_dirs: must be absolute/],
    [{ network: { typo: 1 } }, /network.typo: unknown option/],
    [{ streaming: { address: 'localhost' } }, /streaming.address: "localhost" is not host:port/],
    [{ streaming: { tls_cert: '/etc/c.pem' } }, /tls_cert and tls_key go together/],
    [{ streaming: { token_ttl: '0s' } }, /streaming.token_ttl: must be above zero/],
    [{ streaming: { token_ttl: 'soon' } }, /streaming.token_ttl/],
    [{ streaming: { stream_idle_timeout: '-1s' } }, /streaming.stream_idle_timeout/],
    [{ metrics: { address: 'localhost' } }, /metrics.address: "localhost" is not host:port, "" or "off"/],
    [{ metrics: { address: ':9105' } }, /metrics.address: ":9105" is not host:port/],
    [{ metrics: { address: '127.0.0.1:70000' } }, /metrics.address/],
    [{ metrics: { address: 9105 } }, /metrics.address: 9105 is not host:port/],
    [{ metrics: { port: 9105 } }, /metrics.port: unknown option/],
  ];
  for (const [doc, re] of rows) {
    assert.throws(
      () => applyToml(defaultConfig(), doc, 'f.toml'),
      (err: unknown) => isSkiffError(err, 'SKIFF_CONFIG_INVALID') && re.test(err.message) && err.message.startsWith('f.toml: '),
      JSON.stringify(doc),
    );
  }
});

test('loadConfig layers defaults, file and flags; a named missing file is an error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-config-'));
  try {
    const path = join(dir, 'skiff.toml');
    await writeFile(path, 'root = "/from/file"\nstate = "/state/file"\n[registry]\nretries = 5\n');
    const { config, source } = await loadConfig({ config: path, state: '/state/flag' });
    assert.equal(source, path);
    assert.equal(config.root, '/from/file');
    assert.equal(config.state, '/state/flag');
    assert.equal(config.registry.retries, 5);
    await assert.rejects(loadConfig({ config: join(dir, 'missing.toml') }), /cannot read config file/);
    await writeFile(path, 'root = [unterminated');
    await assert.rejects(loadConfig({ config: path }), /not valid TOML/);
    await assert.rejects(loadConfig({ config: join(dir, 'none.toml'), logLevel: 'x' }), /cannot read/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('deploy/skiff.example.toml parses and shows exactly the embedded defaults', async () => {
  const path = fileURLToPath(new URL('../../deploy/skiff.example.toml', import.meta.url));
  const doc = parseToml(await readFile(path, 'utf8'));
  assert.deepEqual(applyToml(defaultConfig(), doc, path), defaultConfig());
});
