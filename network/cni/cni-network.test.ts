// CniNetwork against fake plugins: shell scripts in a temp bin dir that record their environment
// and stdin, then print a result or an error (or hang) on cue. Covers the execution protocol
// (env, CNI_ARGS, injected name/version/prevResult/runtimeConfig), error passing, rollback, the
// result cache across restarts and config changes, timeouts, CHECK, STATUS and GC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rejectsWith } from '../../common/assert-error.js';
import { isSkiffError } from '../../common/errors.js';
import { CniNetwork } from './cni-network.js';
import type { CniAddRequest } from './request.js';
import { CniPluginError } from './exec.js';

interface Fake {
  /** Printed on stdout for ADD (a result) — a string is printed as is. */
  result?: Record<string, unknown> | string;
  /** Printed on stdout, with exit 1, for the commands in `failOn` (default ADD). */
  error?: Record<string, unknown>;
  failOn?: string[];
  /** Written on stderr before exiting 1 with nothing on stdout, for the commands in `failOn`. */
  crash?: string;
  /** On ADD: starts `sleep 30` in the background, records both pids, and waits for it. */
  hang?: boolean;
  /** VERSION's supportedVersions. */
  versions?: string[];
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface World {
  dir: string;
  bin: string;
  confDir: string;
  cacheDir: string;
  netns: string;
  plugin(name: string, fake?: Fake): Promise<void>;
  conf(file: string, value: Record<string, unknown>): Promise<void>;
  cni(timeoutMs?: number): CniNetwork;
  /** The recorded calls, in order, and forgets them. */
  calls(): Promise<Call[]>;
}

interface Call {
  plugin: string;
  command: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cni-'));
  const bin = join(dir, 'bin');
  const log = join(dir, 'log');
  const confDir = join(dir, 'net.d');
  const cacheDir = join(dir, 'cache');
  for (const d of [bin, log, confDir]) await mkdir(d);
  const netns = join(dir, 'netns'); // a plain file: not a namespace, which is all a fake needs
  await writeFile(netns, '');
  try {
    await fn({
      dir,
      bin,
      confDir,
      cacheDir,
      netns,
      async plugin(name, f = {}) {
        const failOn = f.failOn ?? ['ADD'];
        const result = f.result === undefined ? undefined : typeof f.result === 'string' ? f.result : JSON.stringify(f.result);
        const lines = [
          '#!/bin/sh',
          `log=${sq(log)}`,
          // two files per call; calls are sequential, so the count orders them
          `n=$(printf '%04d' $(( $(ls "$log" | wc -l) / 2 )))`,
          `f="$log/$n-${name}-$CNI_COMMAND"`,
          'cat > "$f.stdin"',
          `env | grep '^CNI_' | sort > "$f.env"`,
          'case "$CNI_COMMAND" in',
          `VERSION) printf '%s' ${sq(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: f.versions ?? ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] }))}; exit 0 ;;`,
          'esac',
        ];
        for (const cmd of failOn) {
          if (f.error) lines.push(`[ "$CNI_COMMAND" = ${cmd} ] && { printf '%s' ${sq(JSON.stringify(f.error))}; exit 1; }`);
          if (f.crash !== undefined) lines.push(`[ "$CNI_COMMAND" = ${cmd} ] && { printf '%s' ${sq(f.crash)} >&2; exit 1; }`);
        }
        if (f.hang) lines.push(`[ "$CNI_COMMAND" = ADD ] && { sleep 30 & echo "$$ $!" > ${sq(join(dir, 'pids'))}; wait; }`);
        if (result !== undefined) lines.push(`[ "$CNI_COMMAND" = ADD ] && printf '%s' ${sq(result)}`);
        lines.push('exit 0');
        await writeFile(join(bin, name), lines.join('\n') + '\n');
        await chmod(join(bin, name), 0o755);
      },
      async conf(file, value) {
        await writeFile(join(confDir, file), JSON.stringify(value));
      },
      cni(timeoutMs) {
        return new CniNetwork({ confDir, binDirs: [join(dir, 'nobin'), bin], cacheDir, ...(timeoutMs ? { pluginTimeoutMs: timeoutMs } : {}) });
      },
      async calls() {
        const names = (await readdir(log)).filter((n) => n.endsWith('.env')).sort();
        const out: Call[] = [];
        for (const n of names) {
          const base = n.slice(0, -'.env'.length);
          const [, plugin, command] = /^\d+-(.+)-([A-Z]+)$/.exec(base) ?? [];
          const env = Object.fromEntries(
            (await readFile(join(log, n), 'utf8'))
              .split('\n')
              .filter(Boolean)
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          );
          const text = await readFile(join(log, `${base}.stdin`), 'utf8');
          out.push({ plugin, command, env, stdin: JSON.parse(text) as Record<string, unknown> });
        }
        await rm(log, { recursive: true });
        await mkdir(log);
        return out;
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const resultA = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'veth0' }, { name: 'eth0', sandbox: '/ns' }],
  ips: [{ interface: 1, address: '10.22.0.5/24', gateway: '10.22.0.1' }],
  routes: [{ dst: '0.0.0.0/0' }],
};
const resultB = { ...resultA, dns: { nameservers: ['10.22.0.10'] } };

function pod(w: World, id = 'sb1'): CniAddRequest {
  return { containerId: id, netnsPath: w.netns, ifName: 'eth0', podName: 'web-0', podNamespace: 'shop', podUid: 'b9f0e2c4-0000-4000-8000-000000000001' };
}

const chain = (name: string, types: (string | Record<string, unknown>)[], version = '1.0.0'): Record<string, unknown> => ({
  cniVersion: version,
  name,
  plugins: types.map((t) => (typeof t === 'string' ? { type: t } : t)),
});

test('ADD runs the chain in order, each plugin getting the previous result; the last result is returned and cached', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA });
    await w.plugin('b', { result: resultB });
    await w.conf('10.conflist', chain('net1', [{ type: 'a', extra: 1 }, 'b']));
    const r = await w.cni().add(pod(w));
    assert.deepEqual(r.ips, [{ address: '10.22.0.5', prefixLen: 24, gateway: '10.22.0.1', family: 4, interface: 'eth0' }]);
    assert.deepEqual(r.interfaces, [{ name: 'veth0' }, { name: 'eth0', sandbox: '/ns' }]);
    assert.deepEqual(r.dns, { nameservers: ['10.22.0.10'] });
    assert.deepEqual(r.raw, resultB);
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['a ADD', 'b ADD']);
    assert.deepEqual(calls[0].stdin, { type: 'a', extra: 1, name: 'net1', cniVersion: '1.0.0' }, 'name and version injected, no prevResult');
    assert.deepEqual(calls[1].stdin, { type: 'b', name: 'net1', cniVersion: '1.0.0', prevResult: resultA });
    const cached = JSON.parse(await readFile(join(w.cacheDir, 'results', 'net1-sb1-eth0'), 'utf8')) as Record<string, unknown>;
    assert.equal(cached.kind, 'cniCacheV1');
    assert.deepEqual(cached.result, resultB);
    assert.deepEqual(JSON.parse(Buffer.from(cached.config as string, 'base64').toString()), chain('net1', [{ type: 'a', extra: 1 }, 'b']));
  });
});

test('ADD sets CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH and the kubelet CNI_ARGS', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA });
    await w.conf('10.conflist', chain('net1', ['a']));
    await w.cni().add({ ...pod(w), ifName: 'net0' });
    const [call] = await w.calls();
    assert.deepEqual(call.env, {
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=b9f0e2c4-0000-4000-8000-000000000001',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'sb1',
      CNI_IFNAME: 'net0',
      CNI_NETNS: w.netns,
      CNI_PATH: `${join(w.dir, 'nobin')}:${w.bin}`,
    });
  });
});

test('capability args reach only the plugins that declare them, as runtimeConfig', async () => {
  await withWorld(async (w) => {
    for (const p of ['a', 'b', 'c']) await w.plugin(p, { result: resultA });
    await w.conf(
      '10.conflist',
      chain('net1', [
        { type: 'a', capabilities: { portMappings: true, dns: true } },
        { type: 'b', capabilities: { bandwidth: true, portMappings: false } },
        { type: 'c', runtimeConfig: { own: 1 } },
      ]),
    );
    await w.cni().add({
      ...pod(w),
      capabilities: {
        portMappings: [
          { hostPort: 8080, containerPort: 80, protocol: 'TCP', hostIP: '' },
          { hostPort: 0, containerPort: 81, protocol: 'TCP' }, // no host port: not a mapping
          { hostPort: 5353, containerPort: 53, protocol: 'UDP', hostIP: '127.0.0.1' },
        ],
        bandwidth: { ingressRate: 1000000, ingressBurst: 2000000, egressRate: 3000000, egressBurst: 4000000 },
        dns: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
        ips: ['10.22.0.99'],
      },
    });
    const calls = await w.calls();
    assert.deepEqual(calls[0].stdin.runtimeConfig, {
      portMappings: [
        { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
      ],
      dns: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
    });
    assert.deepEqual(calls[1].stdin.runtimeConfig, { bandwidth: { ingressRate: 1000000, ingressBurst: 2000000, egressRate: 3000000, egressBurst: 4000000 } });
    assert.deepEqual(calls[2].stdin.runtimeConfig, { own: 1 }, 'a plugin declaring nothing gets its own config untouched');
  });
});

test('a plugin error reaches the caller verbatim (code, msg, details, plugin), and the chain is DELeted newest first', async () => {
  await withWorld(async (w) => {
    const error = { cniVersion: '1.0.0', code: 11, msg: 'failed to allocate for range 0: no IP addresses available in range set: 10.22.0.1-10.22.0.254', details: 'pool "a b" is full; try "later"' };
    await w.plugin('a', { result: resultA });
    await w.plugin('b', { error });
    await w.plugin('c', { result: resultB });
    await w.conf('10.conflist', chain('net1', ['a', 'b', 'c']));
    const cni = w.cni();
    await assert.rejects(cni.add(pod(w)), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.ok(isSkiffError(err, 'SKIFF_CNI_FAILED'));
      assert.equal(err.plugin, 'b');
      assert.equal(err.command, 'ADD');
      assert.equal(err.network, 'net1');
      assert.equal(err.cniCode, 11);
      assert.equal(err.cniMsg, error.msg);
      assert.equal(err.cniDetails, error.details);
      assert.equal(err.message, `CNI network "net1": plugin b failed (ADD): ${error.msg}; ${error.details}`);
      return true;
    });
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['a ADD', 'b ADD', 'c DEL', 'b DEL', 'a DEL']);
    for (const c of calls.slice(2)) {
      assert.equal(c.stdin.prevResult, undefined, 'no result was cached: DEL gets no prevResult');
      assert.equal(c.env.CNI_CONTAINERID, 'sb1');
    }
    assert.deepEqual(await readdir(join(w.cacheDir, 'results')), [], 'a clean rollback leaves no record');
  });
});

test('a plugin that fails without an error object: its stderr, or how it ended, is the message', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { crash: 'panic: runtime error: index out of range\n' });
    await w.plugin('b', { result: '{"cniVersion": "1.0.0", "ips": [' });
    await w.plugin('c', { result: { cniVersion: '1.0.0', ips: [{ address: 'nonsense' }] } });
    await w.plugin('d', {});
    const cni = w.cni();
    await w.conf('10.conflist', chain('net1', ['a']));
    await rejectsWith(cni.add(pod(w)), 'SKIFF_CNI_FAILED', 'CNI network "net1": plugin a failed (ADD): exit status 1: panic: runtime error: index out of range');
    await w.conf('10.conflist', chain('net1', ['b']));
    await rejectsWith(cni.add(pod(w)), 'SKIFF_CNI_FAILED', /plugin b failed \(ADD\): printed invalid JSON/);
    await w.conf('10.conflist', chain('net1', ['c']));
    await rejectsWith(cni.add(pod(w)), 'SKIFF_CNI_FAILED', /plugin c failed \(ADD\): returned an invalid result: invalid address "nonsense"/);
    await w.conf('10.conflist', chain('net1', ['d']));
    await rejectsWith(cni.add(pod(w)), 'SKIFF_CNI_FAILED', 'CNI network "net1": plugin d failed (ADD): returned no result');
    await w.conf('10.conflist', chain('net1', ['missing']));
    await rejectsWith(cni.add(pod(w)), 'SKIFF_CNI_FAILED', /plugin missing failed \(ADD\): failed to find plugin "missing" in path/);
  });
});

test('DEL after a restart and a config change uses the cached config and result, newest plugin first; again it does nothing', async () => {
  await withWorld(async (w) => {
    for (const p of ['a', 'b', 'z']) await w.plugin(p, { result: p === 'a' ? resultA : resultB });
    await w.conf('10.conflist', chain('old', [{ type: 'a', capabilities: { portMappings: true } }, 'b'], '0.4.0'));
    await w.cni().add({ ...pod(w), capabilities: { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] } });
    await w.calls();

    await rm(join(w.confDir, '10.conflist'));
    await w.conf('05.conflist', chain('new', ['z']));
    await rm(w.netns); // the netns is gone too
    const restarted = w.cni();
    assert.equal((await restarted.config())?.name, 'new');
    await restarted.del({ containerId: 'sb1', ifName: 'eth0', netnsPath: w.netns });
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['b DEL', 'a DEL']);
    const prevResult = { ...resultB, cniVersion: '0.4.0', ips: [{ version: '4', interface: 1, address: '10.22.0.5/24', gateway: '10.22.0.1' }] };
    assert.deepEqual(calls[0].stdin, { type: 'b', name: 'old', cniVersion: '0.4.0', prevResult }, 'the cached result, in the cached list version');
    assert.deepEqual(calls[1].stdin.runtimeConfig, { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] }, 'the cached capability args');
    assert.equal(calls[0].env.CNI_NETNS, '', 'a netns that is gone is not passed');
    assert.match(calls[0].env.CNI_ARGS, /K8S_POD_NAME=web-0/, 'the cached CNI_ARGS');
    assert.deepEqual(await readdir(join(w.cacheDir, 'results')), []);

    await restarted.del({ containerId: 'sb1' });
    assert.deepEqual(await w.calls(), [], 'nothing cached: nothing to do');
  });
});

test('DEL of a 0.3.1 network passes no prevResult (added in 0.4.0)', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: { ...resultA, cniVersion: '0.3.1', ips: [{ version: '4', address: '10.22.0.5/24' }] } });
    await w.conf('10.conflist', chain('net1', ['a'], '0.3.1'));
    const cni = w.cni();
    await cni.add(pod(w));
    await cni.del(pod(w));
    const calls = await w.calls();
    assert.equal(calls[1].command, 'DEL');
    assert.equal(calls[1].stdin.prevResult, undefined);
  });
});

test('a failed rollback keeps the record: a later DEL retries with the same config', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { error: { code: 7, msg: 'broken' }, failOn: ['ADD', 'DEL'] });
    await w.conf('10.conflist', chain('net1', ['a']));
    await rejectsWith(w.cni().add(pod(w)), 'SKIFF_CNI_FAILED', /broken/);
    await w.calls();
    await w.plugin('a', {});
    await w.conf('10.conflist', chain('other', ['a']));
    await w.cni().del(pod(w));
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command} ${c.stdin.name as string}`), ['a DEL net1']);
    assert.deepEqual(await readdir(join(w.cacheDir, 'results')), []);
  });
});

test('a second ADD of the same sandbox first DELs the earlier attachment', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA });
    await w.conf('10.conflist', chain('net1', ['a']));
    const cni = w.cni();
    await cni.add(pod(w));
    await cni.add(pod(w));
    assert.deepEqual((await w.calls()).map((c) => c.command), ['ADD', 'DEL', 'ADD']);
  });
});

test('a result in another version than the list is converted before it is passed on as prevResult', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA }); // 1.0.0, in a 0.4.0 list
    await w.plugin('b', { result: { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.22.0.5/24' }] } });
    await w.conf('10.conflist', chain('net1', ['a', 'b'], '0.4.0'));
    const r = await w.cni().add(pod(w));
    const calls = await w.calls();
    assert.deepEqual(calls[1].stdin.prevResult, { ...resultA, cniVersion: '0.4.0', ips: [{ version: '4', interface: 1, address: '10.22.0.5/24', gateway: '10.22.0.1' }] });
    assert.equal(r.cniVersion, '0.4.0');
  });
});

test('a plugin that hangs is killed at the timeout, with its children', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { hang: true });
    await w.conf('10.conflist', chain('net1', ['a']));
    const started = Date.now();
    await rejectsWith(w.cni(300).add(pod(w)), 'SKIFF_CNI_FAILED', 'CNI network "net1": plugin a failed (ADD): timed out after 300 ms and was killed');
    assert.ok(Date.now() - started < 5000, 'well before the plugin would have finished');
    const pids = (await readFile(join(w.dir, 'pids'), 'utf8')).trim().split(' ').map(Number);
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      let alive = true;
      for (let i = 0; i < 50 && alive; i++) {
        try {
          process.kill(pid, 0);
          const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
          alive = stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
        } catch {
          alive = false;
        }
        if (alive) await sleep(20);
      }
      assert.equal(alive, false, `process ${pid} was killed`);
    }
  });
});

test('CHECK runs the cached chain in order with the cached result; disableCheck and pre-0.4.0 configs skip it', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA });
    await w.plugin('b', { result: resultB });
    await w.conf('10.conflist', chain('net1', ['a', 'b']));
    const cni = w.cni();
    await rejectsWith(cni.check(pod(w)), 'SKIFF_NOT_FOUND');
    await cni.add(pod(w));
    await w.calls();
    assert.equal(await cni.check(pod(w)), true);
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['a CHECK', 'b CHECK']);
    assert.deepEqual(calls[0].stdin.prevResult, resultB);
    assert.equal(calls[0].env.CNI_NETNS, w.netns);

    await w.plugin('b', { error: { code: 100, msg: 'eth0 has no address 10.22.0.5/24' }, failOn: ['CHECK'] });
    await rejectsWith(cni.check(pod(w)), 'SKIFF_CNI_FAILED', /plugin b failed \(CHECK\): eth0 has no address/);
    await cni.del(pod(w));

    await w.conf('10.conflist', { ...chain('net1', ['a']), disableCheck: true });
    await cni.add(pod(w));
    await w.calls();
    assert.equal(await cni.check(pod(w)), false);
    await w.conf('10.conflist', chain('net2', ['a'], '0.3.1'));
    await cni.add({ ...pod(w), containerId: 'sb2' });
    await w.calls();
    assert.equal(await cni.check({ ...pod(w), containerId: 'sb2' }), false);
    assert.deepEqual(await w.calls(), []);
  });
});

test('STATUS: no config, a missing plugin or an unsupported version is not ready; a 1.1.0 config asks each plugin', async () => {
  await withWorld(async (w) => {
    const cni = w.cni();
    assert.deepEqual(await cni.status(), { ready: false, reason: 'NetworkPluginNotReady', message: `no CNI network config found in ${w.confDir}` });

    await w.plugin('a', { versions: ['0.3.1', '0.4.0', '1.0.0'] });
    await w.conf('10.conflist', chain('net1', ['a', 'gone']));
    const s1 = await cni.status();
    assert.equal(s1.ready, false);
    assert.match(s1.message ?? '', /failed to find plugin "gone"/);

    await w.conf('10.conflist', chain('net1', ['a'], '1.1.0'));
    const s2 = await cni.status();
    assert.equal(s2.ready, false);
    assert.equal(s2.message, 'CNI network "net1": plugin a does not support CNI version 1.1.0 (it supports 0.3.1, 0.4.0, 1.0.0)');

    await w.conf('10.conflist', chain('net1', ['a'], '1.0.0'));
    await w.calls();
    assert.deepEqual(await cni.status(), { ready: true });
    assert.deepEqual(await cni.status(), { ready: true });
    assert.deepEqual((await w.calls()).map((c) => c.command), [], 'VERSION asked once per executable (already asked above); no STATUS before 1.1.0');

    await w.plugin('a', { versions: ['1.0.0', '1.1.0'], error: { code: 50, msg: 'waiting for the node agent', details: 'socket /run/agent.sock missing' }, failOn: ['STATUS'] });
    await w.conf('10.conflist', chain('net1', ['a'], '1.1.0'));
    assert.deepEqual(await cni.status(), {
      ready: false,
      reason: 'NetworkPluginNotReady',
      message: 'CNI network "net1": plugin a failed (STATUS): waiting for the node agent; socket /run/agent.sock missing (CNI error 50: plugin not available)',
    });
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => c.command), ['VERSION', 'STATUS'], 'the rewritten executable is asked again');
    assert.deepEqual(calls[1].env, { CNI_COMMAND: 'STATUS', CNI_PATH: `${join(w.dir, 'nobin')}:${w.bin}` });
    assert.deepEqual(calls[1].stdin, { type: 'a', name: 'net1', cniVersion: '1.1.0' });

    await w.plugin('a', { versions: ['1.1.0'] });
    assert.deepEqual(await cni.status(), { ready: true });
  });
});

test('GC DELs cached attachments not in the valid set, removes unusable cache files, and sends valid-attachments to 1.1.0 plugins', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA, versions: ['1.1.0'] });
    await w.conf('10.conflist', chain('net1', ['a'], '1.1.0'));
    const cni = w.cni();
    await cni.add(pod(w, 'keep'));
    await cni.add(pod(w, 'stale'));
    await writeFile(join(w.cacheDir, 'results', 'net1-junk-eth0'), 'not json');
    await writeFile(join(w.cacheDir, 'results', '.net1-x-eth0.abc.tmp'), '{');
    await w.calls();

    const restarted = w.cni();
    const report = await restarted.gc([{ containerId: 'keep', ifName: 'eth0' }, { containerId: 'other' }]);
    assert.deepEqual(report, { removed: [{ containerId: 'stale', ifName: 'eth0', network: 'net1' }], errors: [] });
    const calls = await w.calls();
    assert.deepEqual(calls.map((c) => `${c.command} ${c.env.CNI_CONTAINERID ?? ''}`), ['DEL stale', 'GC ']);
    const valid = [{ containerID: 'keep', ifname: 'eth0' }, { containerID: 'other', ifname: 'eth0' }];
    assert.deepEqual(calls[1].stdin, { type: 'a', name: 'net1', cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid });
    assert.deepEqual(await readdir(join(w.cacheDir, 'results')), ['net1-keep-eth0']);

    await w.conf('10.conflist', { ...chain('net1', ['a'], '1.1.0'), disableGC: true });
    await restarted.gc([]);
    assert.deepEqual((await w.calls()).map((c) => `${c.command} ${c.env.CNI_CONTAINERID ?? ''}`), ['DEL keep'], 'disableGC: no plugin GC, stale entries still go');
  });
});

test('GC reports a failed DEL and goes on', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA, error: { code: 5, msg: 'cannot release' }, failOn: ['DEL'] });
    await w.conf('10.conflist', chain('net1', ['a']));
    const cni = w.cni();
    await cni.add(pod(w, 'x1'));
    await cni.add(pod(w, 'x2'));
    const report = await cni.gc([]);
    assert.deepEqual(report.removed, []);
    assert.deepEqual(report.errors.map((e) => e.message), ['CNI network "net1": plugin a failed (DEL): cannot release', 'CNI network "net1": plugin a failed (DEL): cannot release']);
    assert.equal((await readdir(join(w.cacheDir, 'results'))).length, 2, 'records kept for the next try');
  });
});

test('bad ids are INVALID_ARGUMENT and no config is NOT_READY', async () => {
  await withWorld(async (w) => {
    const cni = w.cni();
    await rejectsWith(cni.add(pod(w)), 'SKIFF_NOT_READY', `no CNI network config found in ${w.confDir}`);
    await rejectsWith(cni.add({ ...pod(w), containerId: '-x' }), 'SKIFF_INVALID_ARGUMENT', 'invalid CNI container id "-x"');
    await rejectsWith(cni.add({ ...pod(w), containerId: 'a/b' }), 'SKIFF_INVALID_ARGUMENT');
    await rejectsWith(cni.del({ containerId: 'sb1', ifName: 'a-very-long-ifname' }), 'SKIFF_INVALID_ARGUMENT', 'invalid interface name "a-very-long-ifname"');
    await rejectsWith(cni.add({ ...pod(w), ifName: 'eth:0' }), 'SKIFF_INVALID_ARGUMENT');
    await rejectsWith(cni.add({ ...pod(w), podName: 'a;b' }), 'SKIFF_INVALID_ARGUMENT', /CNI_ARGS K8S_POD_NAME/);
    await rejectsWith(cni.add({ ...pod(w), netnsPath: '' }), 'SKIFF_INVALID_ARGUMENT');
  });
});

test('operations on one sandbox run one at a time', async () => {
  await withWorld(async (w) => {
    await w.plugin('a', { result: resultA });
    await w.conf('10.conflist', chain('net1', ['a']));
    const cni = w.cni();
    await Promise.all([cni.add(pod(w)), cni.del(pod(w)), cni.add(pod(w)), cni.del(pod(w))]);
    assert.deepEqual((await w.calls()).map((c) => c.command), ['ADD', 'DEL', 'ADD', 'DEL']);
  });
});
