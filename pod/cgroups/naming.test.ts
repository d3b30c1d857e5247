import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSkiffError } from '../../common/errors.js';
import { cgroupPathIn, expandSlice, podParentPath } from './naming.js';

const ID = 'c'.repeat(64);

test('expandSlice follows runc: each "-" opens a nested slice', () => {
  const rows: [string, string][] = [
    ['kubepods.slice', '/kubepods.slice'],
    ['kubepods-burstable.slice', '/kubepods.slice/kubepods-burstable.slice'],
    ['kubepods-burstable-pod1234_5678.slice', '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice'],
    ['-.slice', '/'],
    ['skiff.slice', '/skiff.slice'],
  ];
  for (const [slice, want] of rows) assert.equal(expandSlice(slice), want, slice);
});

test('expandSlice refuses what runc refuses', () => {
  for (const bad of ['.slice', 'kubepods', 'kubepods.scope', 'a--b.slice', '-a.slice', 'a-.slice', 'a/b.slice', '']) {
    assert.throws(() => expandSlice(bad), (e: unknown) => isSkiffError(e, 'SKIFF_INVALID_ARGUMENT') && /slice/.test(e.message), bad);
  }
});

test('cgroupfs: kubelet\'s parent path as is, skiff\'s own when none, container id as the leaf', () => {
  assert.equal(podParentPath('cgroupfs', '/kubepods/burstable/pod1'), '/kubepods/burstable/pod1');
  assert.equal(podParentPath('cgroupfs', ''), '/skiff');
  assert.equal(cgroupPathIn('cgroupfs', '/kubepods/burstable/pod1', ID), `/kubepods/burstable/pod1/${ID}`);
  assert.equal(cgroupPathIn('cgroupfs', podParentPath('cgroupfs', ''), ID), `/skiff/${ID}`);
});

test('cgroupfs refuses relative parents and ".." (no escaping the hierarchy)', () => {
  for (const bad of ['kubepods', '/kubepods/../../etc', '/a/./b', '/a\nb']) {
    assert.throws(() => podParentPath('cgroupfs', bad), /linux\.cgroup_parent .* must be an absolute cgroup path/s, bad);
  }
});

test('systemd: a slice name or its expanded path, skiff-<id>.scope as the leaf', () => {
  const expanded = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice';
  assert.equal(podParentPath('systemd', 'kubepods-burstable-pod1.slice'), expanded);
  assert.equal(podParentPath('systemd', expanded), expanded, 'kubelet sends the expanded path');
  assert.equal(podParentPath('systemd', ''), '/skiff.slice');
  assert.equal(cgroupPathIn('systemd', expanded, ID), `${expanded}/skiff-${ID}.scope`);
});

test('systemd refuses a path that is not its slice\'s expansion, and non-slices', () => {
  assert.throws(() => podParentPath('systemd', '/other/kubepods-pod1.slice'), /must be a slice name or its expanded path \(\/kubepods\.slice\/kubepods-pod1\.slice\)/);
  assert.throws(() => podParentPath('systemd', '/kubepods/burstable'), /not a systemd slice name/);
  assert.throws(() => podParentPath('systemd', 'kubepods--x.slice'), /empty component/);
});
