import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../cri/gen/v1.js';
import { bandwidthCapability, parseQuantity, portMappings } from './sandboxes.js';
import { isSkiffError } from '../common/errors.js';

const cfg = (o: Partial<v1.PodSandboxConfig__Output>): v1.PodSandboxConfig__Output => ({ annotations: {}, port_mappings: [], ...o }) as v1.PodSandboxConfig__Output;

test('portMappings: only ports with a host port, protocols lower-cased, host_ip kept', () => {
  const m = portMappings(
    cfg({
      port_mappings: [
        { protocol: 'TCP', container_port: 80, host_port: 8080, host_ip: '' },
        { protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '127.0.0.1' },
        { protocol: 'SCTP', container_port: 9, host_port: 9009, host_ip: '' },
        { protocol: 'TCP', container_port: 443, host_port: 0, host_ip: '' },
      ] as v1.PortMapping__Output[],
    }),
  );
  assert.deepEqual(m, [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' },
    { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    { hostPort: 9009, containerPort: 9, protocol: 'sctp', hostIP: '' },
  ]);
});

test('parseQuantity reads Kubernetes quantities', () => {
  assert.equal(parseQuantity('10M'), 10_000_000);
  assert.equal(parseQuantity('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(parseQuantity('2000'), 2000);
  assert.equal(parseQuantity('100k'), 100_000);
  for (const bad of ['', 'M', '10 Mbit', '-1', '1e3', '10m']) assert.equal(parseQuantity(bad), undefined, bad);
});

test('bandwidth annotations become the CNI bandwidth capability; a malformed one is INVALID_ARGUMENT', () => {
  assert.deepEqual(bandwidthCapability(cfg({})), {});
  assert.deepEqual(bandwidthCapability(cfg({ annotations: { 'kubernetes.io/ingress-bandwidth': '10M' } })), {
    bandwidth: { ingressRate: 10_000_000, ingressBurst: 2 ** 31 - 1 },
  });
  assert.deepEqual(bandwidthCapability(cfg({ annotations: { 'kubernetes.io/egress-bandwidth': '1Mi' } })).bandwidth, { egressRate: 2 ** 20, egressBurst: 2 ** 31 - 1 });
  assert.throws(
    () => bandwidthCapability(cfg({ annotations: { 'kubernetes.io/ingress-bandwidth': 'fast' } })),
    (err: unknown) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') && /ingress-bandwidth "fast"/.test((err as Error).message),
  );
});
