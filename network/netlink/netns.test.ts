// The netlink worker against the real kernel: sockets in the host's and in pinned namespaces, the
// main thread never moving, errors with the kernel's errno, and every wait bounded. Needs root.
// Changes nothing on the host: whatever it creates lives in its own pinned namespaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rejectsWith } from '../../common/assert-error.js';
import { isSkiffError } from '../../common/errors.js';
import { getLink, linkOps, listLinks } from '../links.js';
import { ipLinks, withNetns, withTempDir } from '../kernel-fixtures.js';
import { encodeMessage, NLM_F_REQUEST, NLMSG_NOOP } from './codec.js';
import { errnoOf, failedBatchIndex, hostRouteSocket, openRouteSocket } from './netns.js';
import { closeFd, exchange, openNetlinkSocket } from './socket.js';

void test('the host socket answers, and a missing link is ENODEV naming the request', async () => {
  const host = await hostRouteSocket();
  const lo = await getLink(host, 'lo');
  assert.equal(lo?.index, 1);
  assert.equal(await getLink(host, 'skiffnope0'), undefined);
  await assert.rejects(host.request(linkOps.getLink('skiffnope0').req, 'get link "skiffnope0"'), (err: unknown) => {
    assert.ok(isSkiffError(err, 'SKIFF_NETWORK_FAILED'));
    assert.equal(errnoOf(err), 'ENODEV');
    assert.match(err.message, /^get link "skiffnope0": ENODEV/);
    return true;
  });
});

void test('sockets opened in pinned namespaces see only their own links; the main thread never moves', async () => {
  const before = await readlink('/proc/thread-self/ns/net');
  await withTempDir((dir) =>
    withNetns(dir, ['a', 'b'], async ([a, b]) => {
      const sa = await openRouteSocket(a);
      const sb = await openRouteSocket(b);
      try {
        assert.equal(typeof sa.nsFd, 'number');
        await sa.request(linkOps.addBridge('sktonlya').req, 'create bridge');
        assert.ok(await getLink(sa, 'sktonlya'));
        assert.equal(await getLink(sb, 'sktonlya'), undefined);
        assert.equal(await getLink(await hostRouteSocket(), 'sktonlya'), undefined);
        assert.deepEqual((await listLinks(sb)).map((l) => l.name).includes('lo'), true);
        // And the kernel's own view agrees.
        assert.ok((await ipLinks(a)).some((l) => l.ifname === 'sktonlya'));
      } finally {
        sa.close();
        sb.close();
      }
      assert.equal(await readlink('/proc/thread-self/ns/net'), before);
      assert.equal(await readlink('/proc/self/ns/net'), before);
    }),
  );
});

void test('the worker goes home after opening a socket in a pod: a host socket opened next is the host\'s', async () => {
  await withTempDir((dir) =>
    withNetns(dir, ['a'], async ([a]) => {
      // A lane of its own, so that this worker's first host socket is opened after the setns.
      const pod = await openRouteSocket(a, { lane: 'teardown' });
      pod.close();
      const host = await hostRouteSocket('teardown');
      const names = (await listLinks(host)).map((l) => l.name);
      // Other tests add and remove links meanwhile, so the two listings need not be equal: the
      // socket must list a host link that the pod namespace (only lo) cannot have.
      const ip = await ipLinks();
      const hostOnly = ip.find((l) => l.ifname === 'eth0') ?? ip.find((l) => l.ifname !== 'lo');
      assert.ok(hostOnly, 'the host has more than lo');
      assert.ok(names.includes(hostOnly.ifname), `the socket lists the host's ${hostOnly.ifname}: it is in the host namespace`);
      assert.ok(names.length > 1, 'more than the pod namespace\'s lone lo');
    }),
  );
});

void test('a path that is not a network namespace, or none, is SKIFF_INVALID_ARGUMENT', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'not-a-netns');
    await writeFile(file, '');
    await rejectsWith(openRouteSocket(file), 'SKIFF_INVALID_ARGUMENT', `${file} is not a network namespace`);
    await rejectsWith(openRouteSocket(join(dir, 'missing')), 'SKIFF_INVALID_ARGUMENT', /does not exist/);
    // The worker is fine afterwards.
    assert.ok(await getLink(await hostRouteSocket(), 'lo'));
  });
});

void test('a batch stops at the first refusal and says which', async () => {
  await withTempDir((dir) =>
    withNetns(dir, ['a'], async ([a]) => {
      const s = await openRouteSocket(a);
      try {
        const err = await s.batch([linkOps.addBridge('sktb1'), linkOps.addBridge('sktb1'), linkOps.addBridge('sktb2')]).catch((e: unknown) => e);
        assert.equal(failedBatchIndex(err), 1);
        assert.equal(errnoOf(err), 'EEXIST');
        assert.match((err as Error).message, /^create bridge "sktb1" in .*: EEXIST$/);
        assert.ok(await getLink(s, 'sktb1'));
        assert.equal(await getLink(s, 'sktb2'), undefined, 'not sent after the refusal');
      } finally {
        s.close();
      }
    }),
  );
});

void test('requests that cannot be answered in time reject with a timeout; the worker carries on', async () => {
  await withTempDir((dir) =>
    withNetns(dir, ['a'], async ([a]) => {
      const s = await openRouteSocket(a);
      try {
        // Queued behind each other, most of these miss a 1 ms deadline while waiting their turn.
        const get = (): Promise<unknown> => s.request(linkOps.getLink('lo').req, 'get lo', { timeoutMs: 1 });
        const results = await Promise.allSettled(Array.from({ length: 200 }, get));
        const timedOut = results.filter((r) => r.status === 'rejected');
        assert.ok(timedOut.length > 0);
        for (const r of timedOut) assert.match(String(r.reason), /get lo in .*: the kernel did not answer within 1 ms/);
        // The socket and the worker carry on.
        assert.ok(await getLink(s, 'lo'));
      } finally {
        s.close();
      }
    }),
  );
});

void test('a receive that gets no answer ends at its deadline with ETIMEDOUT', () => {
  const fd = openNetlinkSocket();
  try {
    // NLMSG_NOOP without NLM_F_ACK: the kernel answers nothing.
    const msg = encodeMessage({ type: NLMSG_NOOP, flags: NLM_F_REQUEST, seq: 1, payload: Buffer.alloc(0) });
    const start = Date.now();
    assert.throws(() => exchange(fd, msg, 1, false, start + 100), { code: 'ETIMEDOUT' });
    const took = Date.now() - start;
    assert.ok(took >= 90 && took < 2000, `took ${took} ms`);
  } finally {
    closeFd(fd);
  }
});
