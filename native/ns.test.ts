// skiff-ns against the real kernel: pinned network namespaces, the sandbox's pause process in its
// namespaces and cgroup, and the OCI runtime wrapper that hides a mount from the runtime without
// touching the host. Needs root. Every test removes what it made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { nativeBinary } from './native.js';

const nsBin = nativeBinary('skiff-ns');
const NSFS_MAGIC = 0x6e736673;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, collecting its output. */
function run(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const skiffNs = (...args: string[]): Promise<Result> => run(nsBin, args);

/** Runs and insists on exit 0, showing stderr otherwise. */
async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: exit ${r.code} ${r.signal ?? ''}: ${r.stderr}`);
  return r.stdout;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-ns-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A netns pinned for the length of `fn`, unpinned after whatever happens. */
async function withPinnedNetns(dir: string, fn: (path: string) => Promise<void>): Promise<void> {
  const path = join(dir, 'netns');
  await ok(nsBin, ['netns-pin', path]);
  try {
    await fn(path);
  } finally {
    await skiffNs('netns-unpin', path);
  }
}

/** True while `pid` exists and is not a zombie. */
async function alive(pid: number): Promise<boolean> {
  const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return st !== '' && st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** Kills `pid` and waits until it is gone (its reaper is init, not us). */
async function killAndWait(pid: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + 5000;
  while (await alive(pid)) {
    if (Date.now() > deadline) assert.fail(`pid ${pid} still alive 5 s after ${signal}`);
    await sleep(20);
  }
}

const nsInode = async (path: string): Promise<number> => (await stat(path)).ino;

void test('netns-pin pins a new network namespace with lo up; netns-unpin removes it, twice over', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'pod-netns');
    assert.equal(await ok(nsBin, ['netns-pin', path]), '');
    try {
      assert.equal((await statfs(path)).type, NSFS_MAGIC, 'the pin is an nsfs bind mount');
      assert.notEqual(await nsInode(path), await nsInode('/proc/self/ns/net'), 'not our netns');
      assert.notEqual(await nsInode('/proc/self/ns/net'), 0);
      const links = (await ok('nsenter', [`--net=${path}`, 'ip', '-o', 'link'])).trim().split('\n');
      assert.equal(links.length, 1, `only lo: ${links.join(' | ')}`);
      assert.match(links[0], /^1: lo: <[^>]*\bUP\b[^>]*>/);
    } finally {
      assert.equal(await ok(nsBin, ['netns-unpin', path]), '');
    }
    await assert.rejects(stat(path), { code: 'ENOENT' });
    assert.equal(await ok(nsBin, ['netns-unpin', path]), '', 'unpin of a missing pin succeeds');
  });
});

void test('netns-pin refuses a path that is already a pinned namespace', async () => {
  await withTempDir(async (dir) => {
    await withPinnedNetns(dir, async (path) => {
      const before = await nsInode(path);
      const r = await skiffNs('netns-pin', path);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `skiff-ns: pin netns on ${path}: already a namespace: File exists\n`);
      assert.equal(await nsInode(path), before, 'the pinned namespace is untouched');
    });
  });
});

void test('netns-pin in a missing directory fails naming the step and leaves nothing', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'missing', 'netns');
    const r = await skiffNs('netns-pin', path);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: create ${path}: No such file or directory\n`);
  });
});

void test('sandbox starts pause in the pinned netns and new ipc/uts/pid namespaces, in its cgroup, detached', async () => {
  const cgroup = `/sys/fs/cgroup/pids/skiff-test-${randomBytes(4).toString('hex')}`;
  await mkdir(cgroup);
  let pid = 0;
  try {
    await withTempDir(async (dir) => {
      await withPinnedNetns(dir, async (netns) => {
        const pidfile = join(dir, 'pause.pid');
        const args = ['sandbox', '--netns', netns, '--ipc', '--uts', '--pid', '--hostname', 'pod-a'];
        args.push('--cgroup-procs', join(cgroup, 'cgroup.procs'), '--pidfile', pidfile);
        assert.equal(await ok(nsBin, args), '');
        pid = Number((await readFile(pidfile, 'utf8')).trim());
        try {
          assert.ok(pid > 1 && (await alive(pid)), `pause pid ${pid} alive`);
          assert.equal((await readFile(`/proc/${pid}/comm`, 'utf8')).trim(), 'skiff-pause');

          const status = await readFile(`/proc/${pid}/status`, 'utf8');
          assert.notEqual(Number(status.match(/^PPid:\s+(\d+)$/m)?.[1]), process.pid, 'not our child');
          assert.equal(status.match(/^NSpid:\s+(.*)$/m)?.[1]?.split(/\s+/).at(-1), '1', 'PID 1 inside');

          assert.equal(await nsInode(`/proc/${pid}/ns/net`), await nsInode(netns), 'in the pinned netns');
          for (const ns of ['pid', 'ipc', 'uts']) {
            assert.notEqual(await readlink(`/proc/${pid}/ns/${ns}`), await readlink(`/proc/self/ns/${ns}`), ns);
          }
          assert.equal((await ok('nsenter', ['--uts', '--target', String(pid), 'hostname'])).trim(), 'pod-a');
          // pause joins its cgroup itself, right after skiff-ns returned (not waited for).
          let procs: string[] = [];
          for (let i = 0; i < 100 && procs[0] !== String(pid); i++) {
            procs = (await readFile(join(cgroup, 'cgroup.procs'), 'utf8')).trim().split('\n');
            if (procs[0] !== String(pid)) await sleep(10);
          }
          assert.deepEqual(procs, [String(pid)], 'pause alone in the cgroup');
          const fds = (await ok('ls', [`/proc/${pid}/fd`])).trim().split('\n').sort();
          assert.deepEqual(fds, ['0', '1', '2'], 'only stdio, on /dev/null');
          assert.equal(await readlink(`/proc/${pid}/fd/1`), '/dev/null');

          await killAndWait(pid, 'SIGTERM');
        } finally {
          await killAndWait(pid);
        }
      });
    });
  } finally {
    if (pid) await killAndWait(pid);
    await rmdirRetry(cgroup);
  }
});

/** rmdir of a cgroup, retried while the kernel still counts a just-exited task in it. */
async function rmdirRetry(path: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await rmdir(path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || i >= 50) throw err;
      await sleep(20);
    }
  }
}

void test('sandbox --new-netns/--pin-ipc/--pin-uts pins the pod namespaces that outlive pause', async () => {
  await withTempDir(async (dir) => {
    const pins = { net: join(dir, 'netns'), ipc: join(dir, 'ipc'), uts: join(dir, 'uts') };
    const pidfile = join(dir, 'pause.pid');
    let pid = 0;
    try {
      await ok(nsBin, ['sandbox', '--new-netns', pins.net, '--ipc', '--uts', '--pid', '--hostname', 'pod-b', '--pin-ipc', pins.ipc, '--pin-uts', pins.uts, '--pidfile', pidfile]);
      pid = Number((await readFile(pidfile, 'utf8')).trim());
      for (const [ns, path] of Object.entries(pins)) {
        assert.equal((await statfs(path)).type, NSFS_MAGIC, `${ns} pinned`);
        assert.equal(await nsInode(`/proc/${pid}/ns/${ns}`), await nsInode(path), `pause is in the pinned ${ns}`);
      }
      assert.match(await ok('nsenter', [`--net=${pins.net}`, 'ip', '-o', 'link', 'show', 'lo']), /[<,]UP[,>]/, 'lo is up');
      await killAndWait(pid, 'SIGTERM');
      // The pod's namespaces live on without pause: a container joining them by path still can.
      assert.equal((await ok('nsenter', [`--uts=${pins.uts}`, 'hostname'])).trim(), 'pod-b');
    } finally {
      if (pid) await killAndWait(pid);
      for (const path of Object.values(pins)) await skiffNs('netns-unpin', path);
    }
    for (const path of Object.values(pins)) await assert.rejects(stat(path), { code: 'ENOENT' }, `${path} unpinned`);
  });
});

void test('sandbox --userns runs pause as root of a new pinned user namespace that owns its other namespaces', async () => {
  await withTempDir(async (dir) => {
    const pins = { user: join(dir, 'user'), net: join(dir, 'netns'), ipc: join(dir, 'ipc'), uts: join(dir, 'uts') };
    const pidfile = join(dir, 'pause.pid');
    let pid = 0;
    try {
      await ok(nsBin, ['sandbox', '--new-netns', pins.net, '--ipc', '--uts', '--pid', '--hostname', 'pod-u', '--pin-ipc', pins.ipc, '--pin-uts', pins.uts,
        '--userns', '--uid-map', '0:400000:65536', '--gid-map', '0:400000:65536', '--pin-user', pins.user, '--pidfile', pidfile, '--pause-log', join(dir, 'pause.log')]);
      pid = Number((await readFile(pidfile, 'utf8')).trim());
      for (const [ns, path] of Object.entries(pins)) assert.equal(await nsInode(`/proc/${pid}/ns/${ns}`), await nsInode(path), `pause is in the pinned ${ns}`);
      assert.equal((await readFile(`/proc/${pid}/uid_map`, 'utf8')).trim().split(/\s+/).join(' '), '0 400000 65536');
      assert.equal((await readFile(`/proc/${pid}/gid_map`, 'utf8')).trim().split(/\s+/).join(' '), '0 400000 65536');
      assert.match(await readFile(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+400000\s/m, 'pause is the pod root: 400000 on the host');
      assert.equal((await ok('nsenter', [`--uts=${pins.uts}`, 'hostname'])).trim(), 'pod-u');
    } finally {
      if (pid) await killAndWait(pid);
      for (const path of Object.values(pins)) await skiffNs('netns-unpin', path);
    }
  });
});

void test('sandbox --userns that fails after pinning removes every pin, the user namespace too', async () => {
  await withTempDir(async (dir) => {
    const pins = { user: join(dir, 'user'), net: join(dir, 'netns'), ipc: join(dir, 'ipc'), uts: join(dir, 'uts') };
    const pause = join(dir, 'no-such-pause');
    const r = await skiffNs('sandbox', '--new-netns', pins.net, '--ipc', '--uts', '--pid', '--pin-ipc', pins.ipc, '--pin-uts', pins.uts,
      '--userns', '--uid-map', '0:400000:65536', '--gid-map', '0:400000:65536', '--pin-user', pins.user, '--pause', pause);
    assert.equal(r.code, 1);
    // The pod root cannot even search the 0700 temp dir: the exec fails either way.
    assert.match(r.stderr, /^skiff-ns: exec .*no-such-pause: (Permission denied|No such file or directory)\n$/);
    for (const path of Object.values(pins)) await assert.rejects(stat(path), { code: 'ENOENT' }, `${path} left behind`);
    assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(dir), 'no mount left under the test dir');
  });
});

void test('sandbox --userns usage errors exit 2: maps or pin missing, host namespaces, a malformed map', async () => {
  const full = ['--new-netns', '/tmp/n', '--ipc', '--uts', '--pid'];
  const cases = [
    ['--userns', ...full],
    ['--uid-map', '0:1:1', ...full],
    ['--userns', '--uid-map', '0:1:1', '--gid-map', '0:1:1', '--pin-user', '/tmp/u', '--new-netns', '/tmp/n', '--host-ipc', '--uts', '--pid'],
  ];
  for (const args of cases) {
    const r = await skiffNs('sandbox', ...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /^skiff-ns: .*\nusage: skiff-ns/);
  }
  await withTempDir(async (dir) => {
    const r = await skiffNs('sandbox', '--host-net', '--ipc', '--uts', '--pid', '--userns', '--uid-map', '0-1-1', '--gid-map', '0:1:1', '--pin-user', join(dir, 'user'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /uid_map "0-1-1": want CONTAINER:HOST:LENGTH/);
    await assert.rejects(stat(join(dir, 'user')), { code: 'ENOENT' });
  });
});

void test('sandbox that fails after pinning removes its pins', async () => {
  await withTempDir(async (dir) => {
    const pins = { net: join(dir, 'netns'), ipc: join(dir, 'ipc'), uts: join(dir, 'uts') };
    const pause = join(dir, 'no-such-pause');
    const r = await skiffNs('sandbox', '--new-netns', pins.net, '--ipc', '--uts', '--pin-ipc', pins.ipc, '--pin-uts', pins.uts, '--pause', pause);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: exec ${pause}: No such file or directory\n`);
    for (const path of Object.values(pins)) await assert.rejects(stat(path), { code: 'ENOENT' }, `${path} left behind`);
    assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(dir), 'no mount left under the test dir');
  });
});

void test('sandbox with every namespace of the host runs pause in ours, without a hostname', async () => {
  await withTempDir(async (dir) => {
    const pidfile = join(dir, 'pause.pid');
    await ok(nsBin, ['sandbox', '--host-net', '--host-ipc', '--host-uts', '--host-pid', '--pidfile', pidfile]);
    const pid = Number(await readFile(pidfile, 'utf8'));
    try {
      assert.ok(await alive(pid));
      for (const ns of ['net', 'pid', 'ipc', 'uts']) {
        assert.equal(await readlink(`/proc/${pid}/ns/${ns}`), await readlink(`/proc/self/ns/${ns}`), ns);
      }
    } finally {
      await killAndWait(pid, 'SIGTERM');
    }
  });
});

void test('sandbox with a missing netns exits 1 naming the step, and writes no pidfile', async () => {
  await withTempDir(async (dir) => {
    const pidfile = join(dir, 'pause.pid');
    const missing = join(dir, 'no-such-netns');
    const r = await skiffNs('sandbox', '--netns', missing, '--ipc', '--pidfile', pidfile);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: open netns ${missing}: No such file or directory\n`);
    await assert.rejects(stat(pidfile), { code: 'ENOENT' });
  });
});

void test('sandbox reports a step that failed in the pause child, through the sync pipe', async () => {
  await withTempDir(async (dir) => {
    const pidfile = join(dir, 'pause.pid');
    const procs = join(dir, 'no-such-cgroup', 'cgroup.procs');
    let r = await skiffNs('sandbox', '--pid', '--cgroup-procs', procs, '--pidfile', pidfile);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: open ${procs}: No such file or directory\n`);

    const pause = join(dir, 'no-such-pause');
    r = await skiffNs('sandbox', '--pid', '--pause', pause, '--pidfile', pidfile);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: exec ${pause}: No such file or directory\n`);
    await assert.rejects(stat(pidfile), { code: 'ENOENT' });
  });
});

void test('sandbox --seccomp-bpf: a file that is not a BPF program, or a program the kernel refuses, fails before pause runs', async () => {
  await withTempDir(async (dir) => {
    const pidfile = join(dir, 'pause.pid');
    const odd = join(dir, 'odd.bpf');
    await writeFile(odd, Buffer.alloc(12));
    let r = await skiffNs('sandbox', '--pid', '--seccomp-bpf', odd, '--pidfile', pidfile);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: ${odd}: 12 bytes is not a BPF program of 1 to 4096 instructions\n`);
    // One instruction that is not a return: the kernel's checker refuses it in the pause child.
    const bad = join(dir, 'bad.bpf');
    await writeFile(bad, Buffer.from([0x20, 0, 0, 0, 0, 0, 0, 0]));
    r = await skiffNs('sandbox', '--pid', '--seccomp-bpf', bad, '--pidfile', pidfile);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `skiff-ns: load the seccomp filter of ${bad}: Invalid argument\n`);
    await assert.rejects(stat(pidfile), { code: 'ENOENT' });
  });
});

void test('sandbox usage errors exit 2: --hostname or a pin without its namespace, contradicting options', async () => {
  const cases = [['--hostname', 'x'], ['--ipc', '--host-ipc'], ['--netns'], ['--bogus'], ['--pin-ipc', '/x', '--host-ipc'], ['--pin-uts', '/x'], ['--netns', '/a', '--new-netns', '/b']];
  for (const args of cases) {
    const r = await skiffNs('sandbox', ...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /^skiff-ns: .*\nusage: skiff-ns/);
  }
});

void test('runtime hides /sys/fs/cgroup/unified from the command and leaves it on the host', async (t) => {
  const unified = '/sys/fs/cgroup/unified';
  const mounted = async (): Promise<boolean> =>
    (await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${unified} `);
  if (!(await mounted())) {
    t.skip(`${unified} is not mounted: not a hybrid cgroup host`);
    return;
  }
  const r = await skiffNs('runtime', '--hide-mount', unified, '--', 'sh', '-c', `grep -c " ${unified} " /proc/self/mountinfo || true`);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, '0\n', '']);
  assert.ok(await mounted(), 'the host still has it');
});

void test('runtime unmounts under a shared parent without propagating the unmount to the host', async () => {
  // A shared mount's copy in a new mount namespace is its peer, and unmounts propagate to peers:
  // this is the systemd-host case that this host's all-private mounts would not show.
  await withTempDir(async (dir) => {
    const child = join(dir, 'child');
    await ok('mount', ['-t', 'tmpfs', 'skiff-parent', dir]);
    try {
      await ok('mount', ['--make-shared', dir]);
      await mkdir(child);
      await ok('mount', ['-t', 'tmpfs', 'skiff-child', child]);
      const r = await skiffNs('runtime', '--hide-mount', child, '--', 'sh', '-c', `grep -c " ${child} " /proc/self/mountinfo || true`);
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, '0\n', '']);
      assert.ok((await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${child} `), 'the host still has it');
    } finally {
      await run('umount', ['-R', dir]);
    }
  });
});

void test('runtime passes the exit code, stdio and signals of the command through', async () => {
  let r = await skiffNs('runtime', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7');
  assert.deepEqual([r.code, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
  r = await skiffNs('runtime', '--hide-mount', '/no/such/mount', '--', 'sh', '-c', 'kill -TERM $$');
  assert.deepEqual([r.code, r.signal], [null, 'SIGTERM']);
  r = await skiffNs('runtime', '--', '/no/such/runtime', 'create');
  assert.deepEqual([r.code, r.stderr], [1, 'skiff-ns: exec /no/such/runtime: No such file or directory\n']);
  r = await skiffNs('runtime', '--hide-mount', '/x');
  assert.equal(r.code, 2);
});
