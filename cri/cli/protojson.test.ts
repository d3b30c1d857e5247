// The protojson mapping used by `-o json` and by JSON config files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromProtoJson, jsonName, toProtoJson } from './protojson.js';
import { isSkiffError } from '../../common/errors.js';

void test('jsonName follows protoc', () => {
  assert.equal(jsonName('repo_tags'), 'repoTags');
  assert.equal(jsonName('runtime_api_version'), 'runtimeApiVersion');
  assert.equal(jsonName('uidMappings'), 'uidMappings');
  assert.equal(jsonName('size'), 'size');
});

void test('toProtoJson: camelCase names, declaration order, unset messages left out, map keys untouched', () => {
  const json = toProtoJson('Image', {
    id: 'sha256:1',
    repo_tags: ['busybox:1.36'],
    repo_digests: [],
    size: '4261000',
    uid: null,
    username: '',
    spec: { image: 'busybox', annotations: { 'io.kubernetes_x/y_z': 'v' }, user_specified_image: '', runtime_handler: '' },
    pinned: false,
  });
  assert.deepEqual(Object.keys(json), ['id', 'repoTags', 'repoDigests', 'size', 'username', 'spec', 'pinned']);
  assert.deepEqual(json.spec, { image: 'busybox', annotations: { 'io.kubernetes_x/y_z': 'v' }, userSpecifiedImage: '', runtimeHandler: '' });
  assert.equal(json.size, '4261000');
});

void test('toProtoJson writes enums by name, int64 as strings and bytes as base64', () => {
  assert.deepEqual(toProtoJson('PortMapping', { protocol: 2, container_port: 80, host_port: 0, host_ip: '' }), {
    protocol: 'SCTP',
    containerPort: 80,
    hostPort: 0,
    hostIp: '',
  });
  assert.deepEqual(toProtoJson('ExecSyncResponse', { stdout: Buffer.from('hi'), stderr: Buffer.alloc(0), exit_code: 0 }), {
    stdout: 'aGk=',
    stderr: '',
    exitCode: 0,
  });
  assert.deepEqual(toProtoJson('Int64Value', { value: 12 }), { value: '12' });
});

void test('fromProtoJson accepts camelCase and proto names and converts values', () => {
  const config = fromProtoJson('PodSandboxConfig', {
    metadata: { name: 'p', namespace: 'default', attempt: 1 },
    port_mappings: [{ protocol: 1, containerPort: 80 }],
    labels: { 'app.kubernetes.io/name': 'x' },
    linux: { securityContext: { runAsUser: { value: 0 } } },
  });
  assert.deepEqual(config, {
    metadata: { name: 'p', namespace: 'default', attempt: 1 },
    port_mappings: [{ protocol: 'UDP', container_port: 80 }],
    labels: { 'app.kubernetes.io/name': 'x' },
    linux: { security_context: { run_as_user: { value: '0' } } },
  });
});

void test('fromProtoJson names the path of an unknown field or a wrong value', () => {
  assert.throws(
    () => fromProtoJson('PodSandboxConfig', { metadata: { nme: 'p' } }, 'pod.json'),
    (err) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') && err.message === 'pod.json.metadata: unknown field "nme" in PodSandboxMetadata',
  );
  assert.throws(() => fromProtoJson('PortMapping', { protocol: 'TPC' }), /"TPC" is not a Protocol/);
  assert.throws(() => fromProtoJson('PortMapping', { containerPort: 'eighty' }), /expected an integer/);
  assert.throws(() => fromProtoJson('PodSandboxConfig', []), /expected an object/);
});
