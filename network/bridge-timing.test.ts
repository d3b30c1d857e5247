// How long attachPod and detachPod take, printed (test diagnostics), not asserted: the goal is a
// few milliseconds per attach, against tens for the CNI bridge plugin's exec path. Detach is
// bounded below by the kernel (deleting a veth waits for RCU; `ip link del` takes as long). Same
// rules as bridge.test.ts: its own bridge, subnet and namespaces, all removed. Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { attachPod, detachPod, ensureBridge, type AttachSpec } from './bridge.js';
import { deleteHostLink, freeTestSubnet, pingSoon, uniqueName, withNetns, withTempDir } from './kernel-fixtures.js';

const PODS = 10;

function stats(ms: number[]): string {
  const s = [...ms].sort((x, y) => x - y);
  const pct = (p: number): string => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
  return `median ${pct(0.5)} ms, p90 ${pct(0.9)} ms, min ${s[0].toFixed(2)} ms, max ${s[s.length - 1].toFixed(2)} ms`;
}

void test(`attach + detach time per pod (${PODS} dual-stack pods, sequential then concurrent)`, async (t) => {
  const bridge = uniqueName('skt');
  const net = await freeTestSubnet();
  await withTempDir(async (dir) => {
    const procSys = join(dir, 'sys');
    await mkdir(join(procSys, 'net/ipv4'), { recursive: true });
    await mkdir(join(procSys, 'net/ipv6/conf/all'), { recursive: true });
    await writeFile(join(procSys, 'net/ipv4/ip_forward'), '1\n');
    await writeFile(join(procSys, 'net/ipv6/conf/all/forwarding'), '1\n');
    const specs: AttachSpec[] = [];
    try {
      const t0 = performance.now();
      await ensureBridge({ name: bridge, mtu: 1500, gateways: [`${net.v4(1)}/24`, `${net.v6(1)}/64`] }, { procSys });
      t.diagnostic(`ensureBridge (creates it; first call starts the netlink worker): ${(performance.now() - t0).toFixed(2)} ms`);
      const t1 = performance.now();
      await ensureBridge({ name: bridge, mtu: 1500, gateways: [`${net.v4(1)}/24`, `${net.v6(1)}/64`] }, { procSys });
      t.diagnostic(`ensureBridge (already right): ${(performance.now() - t1).toFixed(2)} ms`);

      const names = Array.from({ length: PODS }, (_, i) => `pod${i}`);
      await withNetns(dir, names, async (paths) => {
        paths.forEach((netnsPath, i) =>
          specs.push({
            bridge,
            netnsPath,
            hostIfName: uniqueName('skv'),
            mtu: 1500,
            addresses: [
              { address: net.v4(10 + i), prefixLen: 24, gateway: net.v4(1) },
              { address: net.v6(10 + i), prefixLen: 64, gateway: net.v6(1) },
            ],
          }),
        );
        const attach: number[] = [];
        const detach: number[] = [];
        for (const [i, spec] of specs.entries()) {
          const a = performance.now();
          await attachPod(spec);
          const b = performance.now();
          if (i === 0) assert.equal((await pingSoon(spec.netnsPath, net.v4(1))).code, 0, 'the pod is wired');
          const c = performance.now();
          await detachPod({ hostIfName: spec.hostIfName });
          const d = performance.now();
          attach.push(b - a);
          detach.push(d - c);
          t.diagnostic(`pod ${i}: attach ${(b - a).toFixed(2)} ms, detach ${(d - c).toFixed(2)} ms`);
        }
        t.diagnostic(`sequential attach: ${stats(attach)}`);
        t.diagnostic(`sequential detach: ${stats(detach)}`);

        const a = performance.now();
        await Promise.all(specs.map((s) => attachPod(s)));
        const b = performance.now();
        await Promise.all(specs.map((s) => detachPod({ hostIfName: s.hostIfName })));
        const c = performance.now();
        t.diagnostic(`${PODS} concurrent attaches: ${(b - a).toFixed(2)} ms in all; ${PODS} concurrent detaches: ${(c - b).toFixed(2)} ms in all`);

        // Teardown on its own lane: attaches do not queue behind the kernel's slow veth deletes.
        const half = specs.length / 2;
        await Promise.all(specs.slice(0, half).map((s) => attachPod(s)));
        const m = performance.now();
        const attachTimes: number[] = [];
        await Promise.all([
          ...specs.slice(0, half).map((s) => detachPod({ hostIfName: s.hostIfName })),
          ...specs.slice(half).map(async (s) => {
            const x = performance.now();
            await attachPod(s);
            attachTimes.push(performance.now() - x);
          }),
        ]);
        t.diagnostic(`${half} attaches while ${half} pods detach: ${stats(attachTimes)} (all done in ${(performance.now() - m).toFixed(2)} ms)`);
        await Promise.all(specs.map((s) => detachPod({ hostIfName: s.hostIfName })));
      });
    } finally {
      for (const s of specs) await deleteHostLink(s.hostIfName);
      await deleteHostLink(bridge);
    }
  });
});
