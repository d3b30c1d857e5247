import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../gen/v1.js';
import { CONTAINER_RECORD_VERSION } from '../../pod/records.js';
import { toContainerStatus, type ContainerView } from './convert.js';

const view = (over: Partial<ContainerView> = {}): ContainerView => ({
  version: CONTAINER_RECORD_VERSION,
  id: 'c'.repeat(64),
  sandboxId: 's'.repeat(64),
  name: 'app_pod_ns_uid_0',
  fingerprint: 'f',
  config: { metadata: { name: 'app', attempt: 0 }, image: { image: 'sha256:' + 'a'.repeat(64) } } as unknown as v1.ContainerConfig__Output,
  imageName: 'sha256:' + 'a'.repeat(64),
  imageId: 'sha256:' + 'a'.repeat(64),
  snapshots: [],
  phase: 'exited',
  state: 'CONTAINER_EXITED',
  createdAt: '1',
  startedAt: '2',
  finishedAt: '3',
  exitCode: 3,
  reason: 'Error',
  logPath: '',
  bundle: '/b',
  upperDir: '/u',
  workDir: '/w',
  stopSignal: 'TERM',
  cgroupsPath: '',
  ...over,
});

test('ContainerStatus names the image by its first repo tag and digest while it exists (containerd)', () => {
  const s = toContainerStatus(view(), { repoTags: ['docker.io/library/busybox:1.36', 'docker.io/library/busybox:latest'], repoDigests: ['docker.io/library/busybox@sha256:' + 'd'.repeat(64)] });
  assert.equal(s.image?.image, 'docker.io/library/busybox:1.36');
  assert.equal(s.image_ref, 'docker.io/library/busybox@sha256:' + 'd'.repeat(64));
  assert.equal(s.image_id, 'sha256:' + 'a'.repeat(64));
  assert.deepEqual([s.exit_code, s.reason, s.finished_at], [3, 'Error', '3']);
});

test('ContainerStatus of a container whose image is gone (or untagged) keeps what it was created from', () => {
  const gone = toContainerStatus(view({ imageRepoDigest: 'r@sha256:' + 'e'.repeat(64) }));
  assert.equal(gone.image?.image, 'sha256:' + 'a'.repeat(64));
  assert.equal(gone.image_ref, 'r@sha256:' + 'e'.repeat(64));
  const untagged = toContainerStatus(view(), { repoTags: [], repoDigests: [] });
  assert.equal(untagged.image?.image, 'sha256:' + 'a'.repeat(64));
  assert.equal(untagged.image_ref, 'sha256:' + 'a'.repeat(64));
});

test('ContainerStatus.user reports the recorded process identity (containerd toCRIContainerUser); absent without one', () => {
  const s = toContainerStatus(view({ user: { uid: 1000, gid: 1000, supplementalGroups: [1000, 1234] } }));
  assert.deepEqual(s.user, { linux: { uid: 1000, gid: 1000, supplemental_groups: [1000, 1234] } });
  assert.equal(toContainerStatus(view()).user, undefined);
});

test('ContainerStatus of a running container reports no exit', () => {
  const s = toContainerStatus(view({ phase: 'running', state: 'CONTAINER_RUNNING' }));
  assert.deepEqual([s.exit_code, s.reason, s.finished_at], [0, '', '0']);
});

test('ContainerStatus.resources reports the recorded resources, and is absent for records without them', () => {
  const linux = { cpu_period: '100000', cpu_quota: '20000', cpu_shares: '2', memory_limit_in_bytes: '1024', oom_score_adj: '0', cpuset_cpus: '', cpuset_mems: '', hugepage_limits: [], unified: {}, memory_swap_limit_in_bytes: '1024' };
  assert.deepEqual(toContainerStatus(view({ resources: linux })).resources, { linux, windows: null });
  assert.equal(toContainerStatus(view()).resources, undefined);
});
