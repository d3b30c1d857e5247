import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSkiffError } from '../../common/errors.js';
import { specInput } from '../spec/fixture.js';
import { cdiInjectionFor, loadCdiRegistry, requestedCdiDevices, resolveCdiDevices } from './registry.js';
import { parseCdiSpec, qualifiedNameError } from './spec.js';

async function withDirs(fn: (a: string, b: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-cdi-'));
  try {
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'run'));
    await fn(join(root, 'etc'), join(root, 'run'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const YAML_SPEC = `cdiVersion: "0.6.0"
kind: vendor.com/gpu
containerEdits:
  env: ["VENDOR_SPEC=1"]
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/gpu0
          hostPath: /dev/null
      env: ["GPU=0"]
  - name: all
    containerEdits:
      env: ["GPU=all"]
`;

const jsonSpec = (kind: string, name: string, env: string, version = '0.3.0'): string =>
  JSON.stringify({ cdiVersion: version, kind, devices: [{ name, containerEdits: { env: [env] } }] });

test('cdi registry: YAML and JSON spec files in the dirs; fully-qualified names resolve with spec edits first', () =>
  withDirs(async (etc, run) => {
    await writeFile(join(etc, 'gpu.yaml'), YAML_SPEC);
    await writeFile(join(run, 'net.json'), jsonSpec('example.org/net', 'eth', 'NET=1'));
    await writeFile(join(run, 'README.md'), 'not a spec');
    await mkdir(join(run, 'sub.json'));
    const reg = await loadCdiRegistry([etc, run, join(etc, 'missing')]);
    assert.deepEqual([...reg.devices.keys()].sort(), ['example.org/net=eth', 'vendor.com/gpu=0', 'vendor.com/gpu=all']);
    assert.deepEqual(reg.errors, []);
    const inj = resolveCdiDevices(reg, ['vendor.com/gpu=0', 'example.org/net=eth', 'vendor.com/gpu=all']);
    assert.deepEqual(
      inj.edits.map((e) => e.env),
      [['VENDOR_SPEC=1'], ['GPU=0'], undefined, ['NET=1'], ['GPU=all']],
      'each spec edits once, before its first device',
    );
    assert.deepEqual(inj.edits[1].deviceNodes, [{ path: '/dev/gpu0', hostPath: '/dev/null' }]);
  }));

test('cdi registry: a device in a later dir wins; the same device twice in one dir is a conflict and unusable', () =>
  withDirs(async (etc, run) => {
    await writeFile(join(etc, 'a.json'), jsonSpec('vendor.com/gpu', 'x', 'FROM=etc'));
    await writeFile(join(run, 'a.json'), jsonSpec('vendor.com/gpu', 'x', 'FROM=run'));
    await writeFile(join(etc, 'b.json'), jsonSpec('vendor.com/gpu', 'y', 'Y=1'));
    await writeFile(join(etc, 'c.yaml'), jsonSpec('vendor.com/gpu', 'y', 'Y=2'));
    const reg = await loadCdiRegistry([etc, run]);
    assert.deepEqual(resolveCdiDevices(reg, ['vendor.com/gpu=x']).edits.at(-1)?.env, ['FROM=run']);
    assert.equal(reg.devices.has('vendor.com/gpu=y'), false);
    assert.match(reg.errors.join('\n'), /conflicting device "vendor.com\/gpu=y"/);
  }));

test('cdi registry: a broken spec file is skipped and named when a device cannot be resolved', () =>
  withDirs(async (etc) => {
    await writeFile(join(etc, 'bad.yaml'), 'cdiVersion: "9.9.9"\nkind: vendor.com/gpu\ndevices: []\n');
    await writeFile(join(etc, 'ok.json'), jsonSpec('vendor.com/nic', 'a', 'A=1'));
    const reg = await loadCdiRegistry([etc]);
    assert.ok(reg.devices.has('vendor.com/nic=a'));
    assert.throws(
      () => resolveCdiDevices(reg, ['vendor.com/gpu=0', 'vendor.com/nic=a', 'other.io/x=1']),
      (err: unknown) =>
        isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') &&
        /^CDI device injection failed: unresolvable CDI devices vendor.com\/gpu=0, other.io\/x=1 \(skipped: failed to load CDI Spec .*bad.yaml: invalid version "9.9.9"\)$/.test(err.message),
    );
  }));

test('cdi: CDI_devices then cdi.k8s.io/ annotations, each name once; a bad annotation name fails', async () => {
  const config = specInput({
    config: {
      CDI_devices: [{ name: 'vendor.com/gpu=0' }, { name: 'vendor.com/gpu=0' }],
      annotations: { 'cdi.k8s.io/gpu': 'vendor.com/gpu=0,vendor.com/gpu=1', other: 'x' },
    },
  }).config;
  assert.deepEqual(requestedCdiDevices(config), ['vendor.com/gpu=0', 'vendor.com/gpu=1']);
  const bad = specInput({ config: { annotations: { 'cdi.k8s.io/x': 'gpu0' } } }).config;
  assert.throws(() => requestedCdiDevices(bad), /failed to parse CDI device annotations: invalid CDI device name "gpu0" in annotation "cdi.k8s.io\/x"/);
  assert.equal(await cdiInjectionFor(['/nonexistent'], specInput().config), undefined, 'no devices: the dirs are not read');
  await assert.rejects(
    cdiInjectionFor(['/nonexistent'], config),
    (err: unknown) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') && err.message === 'container "app": CDI device injection failed: unresolvable CDI devices vendor.com/gpu=0, vendor.com/gpu=1',
  );
});

test('cdi qualified names: vendor.com/class=name as the CDI parser checks them', () => {
  for (const ok of ['vendor.com/gpu=0', 'nvidia.com/gpu=all', 'a/b=c', 'example.org/net.v2=eth:0', 'v/c=MIG-1_a.b']) assert.equal(qualifiedNameError(ok), undefined, ok);
  const bad: [string, RegExp][] = [
    ['gpu0', /unqualified device/],
    ['/dev/null', /unqualified device/],
    ['vendor.com=x', /unqualified device/],
    ['1vendor/gpu=0', /invalid vendor. "1vendor", should start with letter/],
    ['vendor/gp$u=0', /invalid class. invalid character '\$'/],
    ['vendor/gpu=-0', /should start with a letter or digit/],
    ['vendor/gpu=a/b', /invalid character '\/' in device name/],
  ];
  for (const [name, re] of bad) assert.match(qualifiedNameError(name) ?? '', re, name);
});

const badSpecs: [string, string, RegExp][] = [
  ['unknown version', '{"cdiVersion":"0.9.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"env":["A=1"]}}]}', /invalid version "0.9.0"/],
  ['missing kind', '{"cdiVersion":"0.3.0","devices":[{"name":"a","containerEdits":{"env":["A=1"]}}]}', /invalid kind "", want vendor.com\/class/],
  ['bad vendor', '{"cdiVersion":"0.3.0","kind":"-v/c","devices":[{"name":"a","containerEdits":{"env":["A=1"]}}]}', /invalid vendor. "-v", should start with letter/],
  ['no devices', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[]}', /invalid spec, no devices/],
  ['duplicate device', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"env":["A=1"]}},{"name":"a","containerEdits":{"env":["A=1"]}}]}', /multiple device "a"/],
  ['empty device edits', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{}}]}', /invalid device "a": empty container edits/],
  ['unknown field (strict)', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"env":["A=1"],"evn":[]}}]}', /unknown field "evn"/],
  ['bad env', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"env":["=1"]}}]}', /invalid environment variable "=1"/],
  ['bad hook name', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"hooks":[{"hookName":"preStart","path":"/x"}]}}]}', /invalid hook name "preStart"/],
  ['negative major', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"deviceNodes":[{"path":"/dev/a","major":-1}]}}]}', /major must be an integer/],
  ['bad permissions', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"deviceNodes":[{"path":"/dev/a","permissions":"rwx"}]}}]}', /device "\/dev\/a": invalid permissions "rwx"/],
  ['mount without host path', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"mounts":[{"containerPath":"/a"}]}}]}', /invalid mount, empty host path/],
  ['hostPath needs 0.5.0', '{"cdiVersion":"0.3.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"deviceNodes":[{"path":"/dev/a","hostPath":"/dev/null"}]}}]}', /the spec version must be at least v0.5.0/],
  ['additionalGids need 0.7.0', '{"cdiVersion":"0.6.0","kind":"v.com/c","devices":[{"name":"a","containerEdits":{"additionalGids":[5]}}]}', /at least v0.7.0/],
  ['not YAML', 'cdiVersion: [', /failed to unmarshal CDI Spec/],
];

for (const [name, text, re] of badSpecs) {
  test(`cdi spec file: ${name} is refused`, () => assert.throws(() => parseCdiSpec(text, name.includes('YAML') ? 'x.yaml' : 'x.json', 0), re));
}

test('cdi spec file: "v" prefixed versions and the newest released ones load', () => {
  for (const v of ['v0.8.0', '1.0.0', '1.1.0']) {
    const s = parseCdiSpec(jsonSpec('v.com/c', '0', 'A=1', v), 'x.json', 0);
    assert.deepEqual(s.devices.get('0'), { env: ['A=1'] });
  }
});
