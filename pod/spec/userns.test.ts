import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../../cri/gen/v1.js';
import { SkiffError } from '../../common/errors.js';
import { buildContainerSpec } from './index.js';
import { specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { parseUserNamespace, podUserNamespace } from './userns.js';

const m = (container_id: number, host_id: number, length: number): v1.IDMapping__Output => ({ container_id, host_id, length });
const userns = (mode: string, uids: v1.IDMapping__Output[], gids: v1.IDMapping__Output[]): v1.UserNamespace__Output => ({ mode: mode as v1.UserNamespace__Output['mode'], uids, gids });
const fail = (msg: string): SkiffError => new SkiffError('SKIFF_INVALID_ARGUMENT', msg);
const POD = userns('POD', [m(0, 65536, 65536)], [m(0, 65536, 65536)]);
const PIN = '/run/skiff/sandboxes/s/user.ns';
const sandboxUserns = { path: PIN, uid: { containerID: 0, hostID: 65536, size: 65536 }, gid: { containerID: 0, hostID: 65536, size: 65536 } };

test('userns: mode POD with one range each gives the mappings; NODE or none gives none', () => {
  assert.deepEqual(parseUserNamespace(POD, fail), sandboxUserns.uid && { uid: sandboxUserns.uid, gid: sandboxUserns.gid });
  assert.equal(parseUserNamespace(userns('NODE', [], []), fail), undefined);
  assert.equal(parseUserNamespace(null, fail), undefined);
});

const bad: { name: string; u: v1.UserNamespace__Output; message: RegExp }[] = [
  { name: 'POD without mappings', u: userns('POD', [], []), message: /can't use user namespace mode "POD" without UID and GID mappings/ },
  { name: 'POD with only uids', u: userns('POD', [m(0, 65536, 65536)], []), message: /without UID and GID mappings/ },
  { name: 'NODE with mappings', u: userns('NODE', [m(0, 65536, 65536)], [m(0, 65536, 65536)]), message: /can't use user namespace mode "NODE" with mappings. Got 1 UID mappings and 1 GID mappings/ },
  { name: 'two uid lines', u: userns('POD', [m(0, 65536, 1), m(1, 70000, 1)], [m(0, 65536, 65536)]), message: /UID mapping: only one mapping line supported, got 2 mapping lines/ },
  { name: 'a zero length', u: userns('POD', [m(0, 65536, 65536)], [m(0, 65536, 0)]), message: /GID mapping: invalid mapping length: 0/ },
  { name: 'a range past 2^32', u: userns('POD', [m(0, 4294967295, 65536)], [m(0, 65536, 65536)]), message: /leaves the 32-bit id space/ },
  { name: 'root not mapped', u: userns('POD', [m(1000, 65536, 65536)], [m(0, 65536, 65536)]), message: /must start at container id 0, got UID 1000/ },
  { name: 'mode CONTAINER', u: userns('CONTAINER', [], []), message: /unsupported user namespace mode: "CONTAINER"/ },
];
for (const r of bad) {
  test(`userns: ${r.name} is INVALID_ARGUMENT`, () => throwsSkiff(() => parseUserNamespace(r.u, fail), 'SKIFF_INVALID_ARGUMENT', r.message));
}

test('userns: RunPodSandbox refuses a pod user namespace with host network, pid or ipc', () => {
  const cfg = (ns: Partial<v1.NamespaceOption__Output>): v1.PodSandboxConfig__Output => {
    const base = specInput().sandboxConfig;
    const sc = { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', target_id: '', userns_options: POD, ...ns } } as unknown as v1.LinuxSandboxSecurityContext__Output;
    return { ...base, linux: { ...base.linux!, security_context: sc } };
  };
  assert.deepEqual(podUserNamespace(cfg({})), { uid: sandboxUserns.uid, gid: sandboxUserns.gid });
  throwsSkiff(() => podUserNamespace(cfg({ network: 'NODE' })), 'SKIFF_INVALID_ARGUMENT', /RunPodSandbox: a pod user namespace cannot be combined with the host network namespace/);
  throwsSkiff(() => podUserNamespace(cfg({ pid: 'NODE' })), 'SKIFF_INVALID_ARGUMENT', /host pid namespace/);
  throwsSkiff(() => podUserNamespace(cfg({ ipc: 'NODE' })), 'SKIFF_INVALID_ARGUMENT', /host ipc namespace/);
});

const nsOpts = (u: v1.UserNamespace__Output | null): FixtureOptions['sc'] => ({ namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', target_id: '', userns_options: u } as unknown as v1.NamespaceOption__Output });

test('userns: a container of a user-namespaced pod joins its pin first, with the pod mappings', () => {
  for (const o of [{ sandbox: { userns: sandboxUserns } }, { sandbox: { userns: sandboxUserns }, sc: nsOpts(POD) }] as FixtureOptions[]) {
    const spec = buildContainerSpec(specInput(o));
    assert.deepEqual(spec.linux.namespaces[0], { type: 'user', path: PIN });
    assert.equal(spec.linux.namespaces.filter((n) => n.type === 'user').length, 1);
    assert.deepEqual(spec.linux.uidMappings, [sandboxUserns.uid]);
    assert.deepEqual(spec.linux.gidMappings, [sandboxUserns.gid]);
  }
});

test('userns: a pod without one gives no user namespace and no mappings', () => {
  const spec = buildContainerSpec(specInput({}));
  assert.ok(!spec.linux.namespaces.some((n) => n.type === 'user'));
  assert.equal(spec.linux.uidMappings, undefined);
});

test("userns: a container whose userns_options differ from its pod's is INVALID_ARGUMENT", () => {
  const other = userns('POD', [m(0, 131072, 65536)], [m(0, 131072, 65536)]);
  throwsSkiff(() => buildContainerSpec(specInput({ sandbox: { userns: sandboxUserns }, sc: nsOpts(other) })), 'SKIFF_INVALID_ARGUMENT', /user namespace options differ from the pod's/);
  throwsSkiff(() => buildContainerSpec(specInput({ sc: nsOpts(POD) })), 'SKIFF_INVALID_ARGUMENT', /asks for a user namespace, but its pod has none/);
  throwsSkiff(() => buildContainerSpec(specInput({ sandbox: { userns: sandboxUserns }, sc: nsOpts(userns('NODE', [], [])) })), 'SKIFF_INVALID_ARGUMENT', /differ from the pod's/);
});
