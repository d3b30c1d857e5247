// The conf dir: which file is the network (byte order across .conflist/.conf/.json), .conf
// up-conversion, invalid files skipped with a reason, version negotiation, and changes picked up
// without a restart while an unchanged dir is not read again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, unlink, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfDir, loadConfDir } from './conf-dir.js';
import { parseConf, parseConfList } from './config.js';
import { CniNetwork } from './cni-network.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cni-conf-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const list = (name: string, version = '1.0.0', types = ['bridge']): string =>
  JSON.stringify({ cniVersion: version, name, plugins: types.map((type) => ({ type })) });
const single = (name: string, type = 'bridge', version = '0.4.0'): string => JSON.stringify({ cniVersion: version, name, type, bridge: 'br9' });

test('the first config file by name wins, whatever its extension; other files and directories are ignored', async () => {
  const cases: { files: Record<string, string>; dirs?: string[]; want: string | undefined }[] = [
    { files: { '20-b.conflist': list('b'), '10-a.conf': single('a'), '30-c.json': single('c') }, want: 'a' },
    { files: { '20-b.conflist': list('b'), '30-c.json': single('c') }, want: 'b' },
    { files: { '99.json': single('j'), '99.conflist': list('l') }, want: 'l' }, // "99.conflist" < "99.json"
    { files: { 'B.conf': single('upper'), 'a.conf': single('lower') }, want: 'upper' }, // byte order: 'B' < 'a'
    { files: { '10-a.conf': single('conf'), '10-a.conflist': list('conflist') }, want: 'conf' }, // a prefix sorts first
    { files: { '00-readme.txt': 'hello', '01-x.conf.bak': '{', '50.conf': single('only') }, want: 'only' },
    { files: { '50.conflist': list('late') }, dirs: ['01-dir.conf'], want: 'late' },
    { files: { 'notes.md': '#' }, want: undefined },
  ];
  for (const c of cases) {
    await withDir(async (dir) => {
      for (const [name, text] of Object.entries(c.files)) await writeFile(join(dir, name), text);
      for (const d of c.dirs ?? []) await mkdir(join(dir, d));
      const load = await loadConfDir(dir);
      assert.equal(load.chosen?.name, c.want, JSON.stringify(Object.keys(c.files)));
    });
  }
});

test('a missing conf dir has no config', async () => {
  const load = await loadConfDir('/nonexistent/skiff-cni-conf');
  assert.equal(load.chosen, undefined);
  assert.deepEqual(load.skipped, []);
});

test('a .conf becomes a list of one plugin with its name and version', () => {
  const l = parseConf(single('mynet', 'bridge', '0.3.1'), '/x/10.conf');
  assert.equal(l.name, 'mynet');
  assert.equal(l.cniVersion, '0.3.1');
  assert.equal(l.plugins.length, 1);
  assert.equal(l.plugins[0].type, 'bridge');
  assert.equal(l.plugins[0].conf.bridge, 'br9');
  assert.deepEqual(JSON.parse(l.json), { name: 'mynet', cniVersion: '0.3.1', plugins: [JSON.parse(single('mynet', 'bridge', '0.3.1'))] });
});

test('invalid files are skipped with the reason, and the next valid one is used', async () => {
  await withDir(async (dir) => {
    const files: Record<string, string> = {
      '01-json.conflist': '{"name": "x", ',
      '02-array.conflist': '[1]',
      '03-noname.conflist': JSON.stringify({ cniVersion: '1.0.0', plugins: [{ type: 'bridge' }] }),
      '04-noplugins.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'n' }),
      '05-empty.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [] }),
      '06-notype.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ bridge: 'x' }] }),
      '07-version.conflist': JSON.stringify({ cniVersion: '2.0.0', name: 'n', plugins: [{ type: 'bridge' }] }),
      '08-noversion.conflist': JSON.stringify({ name: 'n', plugins: [{ type: 'bridge' }] }),
      '09-path.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../../bin/sh' }] }),
      '10-list-in.conf': list('misplaced'),
      '11-badname.conflist': list('bad name'),
      '12-flag.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'n', disableCheck: 'maybe', plugins: [{ type: 'bridge' }] }),
      '20-good.conflist': list('good'),
      '30-later-bad.conflist': '{',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const load = await loadConfDir(dir);
    assert.equal(load.chosen?.name, 'good');
    const reasons = Object.fromEntries(load.skipped.map((s) => [s.file.slice(dir.length + 1), s.reason]));
    assert.deepEqual(Object.keys(reasons), Object.keys(files).slice(0, 12), 'every earlier file is skipped, none after the chosen one is read');
    assert.match(reasons['01-json.conflist'], /invalid JSON/);
    assert.match(reasons['02-array.conflist'], /not a JSON object/);
    assert.match(reasons['03-noname.conflist'], /no "name"/);
    assert.match(reasons['04-noplugins.conflist'], /no "plugins"/);
    assert.match(reasons['05-empty.conflist'], /no plugins/);
    assert.match(reasons['06-notype.conflist'], /plugin 0 has no "type"/);
    assert.match(reasons['07-version.conflist'], /unsupported CNI version 2\.0\.0/);
    assert.match(reasons['08-noversion.conflist'], /no "cniVersion"/);
    assert.match(reasons['09-path.conflist'], /invalid type/);
    assert.match(reasons['10-list-in.conf'], /belongs in a \.conflist/);
    assert.match(reasons['11-badname.conflist'], /invalid network name/);
    assert.match(reasons['12-flag.conflist'], /"disableCheck" must be a boolean/);
  });
});

test('cniVersions: the highest version skiff speaks is used (spec 1.1.0 negotiation)', () => {
  const l = parseConfList(JSON.stringify({ cniVersion: '0.4.0', cniVersions: ['1.0.0', '1.1.0', '9.0.0'], name: 'n', plugins: [{ type: 'x' }] }), 's');
  assert.equal(l.cniVersion, '1.1.0');
  const cached = JSON.parse(l.json) as Record<string, unknown>;
  assert.equal(cached.cniVersion, '1.1.0', 'the cached list names the negotiated version');
  assert.equal(cached.cniVersions, undefined);
  assert.equal(parseConfList(JSON.stringify({ cniVersions: ['0.3.1'], name: 'n', plugins: [{ type: 'x' }] }), 's').cniVersion, '0.3.1');
});

test('flags and capabilities: libcni accepts "true"/"false" strings; only true capabilities count', () => {
  const l = parseConfList(
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'n',
      disableCheck: 'True',
      disableGC: true,
      plugins: [{ type: 'portmap', capabilities: { portMappings: true, bandwidth: false } }],
    }),
    's',
  );
  assert.equal(l.disableCheck, true);
  assert.equal(l.disableGC, true);
  assert.deepEqual(l.plugins[0].capabilities, ['portMappings']);
});

test('a config change is picked up without a restart; an unchanged dir is not read again', async () => {
  await withDir(async (dir) => {
    const cni = new CniNetwork({ confDir: join(dir, 'net.d'), binDirs: [], cacheDir: join(dir, 'cache') });
    assert.equal(await cni.config(), undefined, 'no dir yet');

    await mkdir(join(dir, 'net.d'));
    await writeFile(join(dir, 'net.d', '20-b.conflist'), list('b'));
    assert.equal((await cni.config())?.name, 'b', 'a new file');

    await writeFile(join(dir, 'net.d', '10-a.conf'), single('a'));
    assert.equal((await cni.config())?.name, 'a', 'an earlier file');

    await writeFile(join(dir, 'net.d', '10-a.conf'), single('a2', 'macvlan'));
    const edited = await cni.config();
    assert.equal(edited?.name, 'a2', 'an in-place edit');
    assert.equal(edited.plugins[0].type, 'macvlan');

    await writeFile(join(dir, 'net.d', '.10-a.conf.tmp'), single('a3'));
    await rename(join(dir, 'net.d', '.10-a.conf.tmp'), join(dir, 'net.d', '10-a.conf'));
    assert.equal((await cni.config())?.name, 'a3', 'a replace by rename');

    await sleep(120); // past the racy window: now the load is trusted
    const first = await cni.config();
    const second = await cni.config();
    assert.equal(first, second, 'nothing changed: the same object, no new read');

    await writeFile(join(dir, 'net.d', '10-a.conf'), '{ broken');
    assert.equal((await cni.config())?.name, 'b', 'the edited file is now invalid: skipped');

    await unlink(join(dir, 'net.d', '10-a.conf'));
    await unlink(join(dir, 'net.d', '20-b.conflist'));
    assert.equal(await cni.config(), undefined, 'all files gone');
  });
});

test('concurrent config() calls share one read', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, '10.conflist'), list('n'));
    const confDir = new ConfDir(dir);
    const loads = await Promise.all([confDir.current(), confDir.current(), confDir.current()]);
    assert.equal(loads[0], loads[1]);
    assert.equal(loads[1], loads[2]);
  });
});
