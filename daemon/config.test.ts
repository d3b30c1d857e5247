import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyToml, defaultConfig, loadConfig } from './config.js';
import { parseDuration } from '../common/duration.js';
import { isSkiffError } from '../common/errors.js';

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
  assert.deepEqual(d.images, { maxConcurrentDownloads: 3, pullProgressTimeoutMs: 300_000 });
  assert.equal(d.runtime.defaultHandler, 'crun');
  assert.deepEqual(Object.keys(d.runtime.handlers).sort(), ['crun', 'runc']);
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

test('bad config values are refused with the key named', () => {
  const rows: [Record<string, unknown>, RegExp][] = [
    [{ sockett: '/x' }, /sockett: unknown option/],
    [{ root: 'relative' }, /root: must be an absolute path/],
    [{ log_level: 'loud' }, /log_level: must be one of/],
    [{ cgroup_driver: 'both' }, /cgroup_driver: must be "cgroupfs"/],
    [{ cgroup_driver: 'systemd' }, /cgroup_driver: the systemd driver .* is not implemented yet/],
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
