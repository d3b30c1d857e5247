// Device nodes and the device cgroup: deny everything but the standard pseudo-devices (runc's and
// Docker's default allow list), then each CRI device as a node plus an allow rule
// (containerd internal/cri/opts WithDevices, pkg/oci WithDevices; runtime-spec config-linux.md
// "devices" and "allowed device list").
import { posix } from 'node:path';
import type { LinuxDevice, LinuxDeviceCgroup } from './oci-spec.js';
import { invalid, type SpecOption } from './option.js';

/** Deny all, then allow mknod of any node and use of null, zero, full, random, urandom, tty, ptmx, pts. */
export function defaultDeviceRules(): LinuxDeviceCgroup[] {
  const allow = (type: 'c' | 'b', major: number | undefined, minor: number | undefined, access: string): LinuxDeviceCgroup => ({
    allow: true,
    type,
    ...(major === undefined ? {} : { major }),
    ...(minor === undefined ? {} : { minor }),
    access,
  });
  return [
    { allow: false, access: 'rwm' },
    allow('c', undefined, undefined, 'm'),
    allow('b', undefined, undefined, 'm'),
    allow('c', 1, 3, 'rwm'), // null
    allow('c', 1, 5, 'rwm'), // zero
    allow('c', 1, 7, 'rwm'), // full
    allow('c', 1, 8, 'rwm'), // random
    allow('c', 1, 9, 'rwm'), // urandom
    allow('c', 5, 0, 'rwm'), // tty
    allow('c', 5, 2, 'rwm'), // ptmx
    allow('c', 136, undefined, 'rwm'), // pts
  ];
}

/** Add or replace the node at the same container path. */
export function addDevice(devices: LinuxDevice[], device: LinuxDevice): void {
  const i = devices.findIndex((d) => d.path === device.path);
  if (i >= 0) devices[i] = device;
  else devices.push(device);
}

/**
 * Each CRI device: the host node's type and numbers (from the caller's stat), created at
 * container_path (the host path when empty) with the host node's mode and owner, and allowed in the
 * device cgroup with its permissions ("rwm" when empty).
 */
export const withDevices: SpecOption = (spec, input) => {
  const devices: LinuxDevice[] = spec.linux.devices ?? [];
  const rules: LinuxDeviceCgroup[] = defaultDeviceRules();
  for (const d of input.config.devices) {
    if (!d.host_path) throw invalid(input, 'device without host_path');
    const containerPath = d.container_path || d.host_path;
    if (!posix.isAbsolute(containerPath)) throw invalid(input, `device container_path "${containerPath}" is not an absolute path`);
    const access = d.permissions || 'rwm';
    if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
      throw invalid(input, `device "${d.host_path}": permissions "${d.permissions}" are not a combination of r, w, m`);
    }
    const info = input.statDevice(d.host_path);
    if (!info) throw invalid(input, `device "${d.host_path}" does not exist or is not a device node`);
    addDevice(devices, { path: posix.normalize(containerPath), type: info.type, major: info.major, minor: info.minor, fileMode: info.mode, uid: info.uid, gid: info.gid });
    rules.push({ allow: true, type: info.type, major: info.major, minor: info.minor, access });
  }
  spec.linux.devices = devices;
  spec.linux.resources = { ...spec.linux.resources, devices: rules };
};
