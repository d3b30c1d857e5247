// skiff-pause: exits 0 on SIGTERM/SIGINT, reaps every zombie as PID 1 of a pid namespace, and
// costs almost no memory. Needs root (the pid namespace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir, rmdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { nativeBinary } from './native.js';

const pauseBin = nativeBinary('skiff-pause');

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Polls until `probe` holds, failing after `ms`. */
async function until(what: string, probe: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`${what}: not true after ${ms} ms`);
    await sleep(20);
  }
}

/** Pids whose parent is `ppid`, with their state letter (Z: zombie). */
async function childrenOf(ppid: number): Promise<{ pid: number; state: string }[]> {
  const out: { pid: number; state: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[1]) === ppid) out.push({ pid: Number(name), state: rest[0] ?? '' });
  }
  return out;
}

/** Kills what a test started, whatever state the test left it in. */
function killQuietly(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

void test('skiff-pause -v prints its name and version', async () => {
  const child = spawn(pauseBin, ['-v'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  assert.deepEqual(await exited(child), { code: 0, signal: null });
  assert.match(out, /^skiff-pause \d+\.\d+\.\d+\S*\n$/);
});

void test('skiff-pause joins the cgroups it is given, and exits 1 naming one it cannot join', async () => {
  const cgroup = `/sys/fs/cgroup/pids/skiff-pause-test-${process.pid}`;
  await mkdir(cgroup);
  const child = spawn(pauseBin, ['--cgroup-procs', `${cgroup}/cgroup.procs`], { stdio: 'ignore' });
  try {
    await started(child);
    await until('pause is in its cgroup', async () => (await readFile(`${cgroup}/cgroup.procs`, 'utf8')).trim() === String(child.pid));
    child.kill('SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null });
  } finally {
    killQuietly(child);
    await until('the cgroup is empty', async () => rmdir(cgroup).then(() => true, () => false));
  }
  const missing = '/sys/fs/cgroup/pids/skiff-no-such-cgroup/cgroup.procs';
  const bad = spawn(pauseBin, ['--cgroup-procs', missing], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (b: Buffer) => (err += b.toString()));
  assert.deepEqual(await exited(bad), { code: 1, signal: null });
  assert.equal(err, `skiff-pause: join cgroup ${missing}: No such file or directory\n`);
  for (const args of [['--cgroup-procs'], ['--cgroup-procs', 'relative'], ['--bogus', '/x']]) {
    const u = spawn(pauseBin, args, { stdio: 'ignore' });
    assert.deepEqual(await exited(u), { code: 2, signal: null }, args.join(' '));
  }
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  void test(`skiff-pause exits 0 at once on ${signal}`, async () => {
    const child = spawn(pauseBin, [], { stdio: 'ignore' });
    try {
      await started(child);
      await sleep(50); // let it install its handlers; before that the default action would kill it
      const t0 = performance.now();
      child.kill(signal);
      assert.deepEqual(await exited(child), { code: 0, signal: null });
      assert.ok(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
    } finally {
      killQuietly(child);
    }
  });
}

void test('skiff-pause as PID 1 of a pid namespace reaps zombies, older and newer than itself', async () => {
  // perl (PID 1 of the new namespace; it reaps nothing) forks a child that exits at once, lets it
  // become a zombie, forks `sleep 2`, then becomes skiff-pause. Both are pause's children from then
  // on: a zombie older than pause's SIGCHLD handler, and one that exits later.
  const perl = [
    'if (!fork) { exit 0 }',
    'select(undef, undef, undef, 0.1);',
    'if (!fork) { sleep 2; exit 0 }',
    'exec {$ARGV[0]} "skiff-pause" or die "exec: $!"',
  ].join(' ');
  const unshare = spawn('unshare', ['--pid', '--fork', '--kill-child', 'perl', '-e', perl, pauseBin], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await started(unshare);
    let pausePid = 0;
    await until('skiff-pause running as the child of unshare', async () => {
      const kids = await childrenOf(unshare.pid!);
      if (kids.length !== 1) return false;
      pausePid = kids[0].pid;
      return (await readFile(`/proc/${pausePid}/comm`, 'utf8').catch(() => '')).trim() === 'skiff-pause';
    });
    const nspid = (await readFile(`/proc/${pausePid}/status`, 'utf8')).match(/^NSpid:\s+(.*)$/m)?.[1];
    assert.equal(nspid?.split(/\s+/).at(-1), '1', 'skiff-pause is PID 1 of its pid namespace');
    // The old zombie goes at start, while sleep still runs: no SIGCHLD announced it to pause.
    await until('the zombie older than skiff-pause reaped', async () => {
      const kids = await childrenOf(pausePid);
      return kids.length === 1 && kids[0].state !== 'Z';
    });
    await until('sleep reaped when it exits', async () => (await childrenOf(pausePid)).length === 0);

    process.kill(pausePid, 'SIGTERM'); // unshare --fork ignores SIGTERM itself and forwards nothing
    assert.deepEqual(await exited(unshare), { code: 0, signal: null });
  } finally {
    killQuietly(unshare);
  }
});

void test('skiff-pause PSS stays under 200 KiB', async (t) => {
  const child = spawn(pauseBin, [], { stdio: 'ignore' });
  try {
    await started(child);
    await sleep(50);
    const rollup = await readFile(`/proc/${child.pid}/smaps_rollup`, 'utf8');
    const pss = Number(rollup.match(/^Pss:\s+(\d+) kB$/m)?.[1]);
    const rss = Number(rollup.match(/^Rss:\s+(\d+) kB$/m)?.[1]);
    t.diagnostic(`skiff-pause PSS ${pss} KiB, RSS ${rss} KiB`);
    assert.ok(pss > 0 && pss < 200, `PSS ${pss} KiB`);
    child.kill('SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null });
  } finally {
    killQuietly(child);
  }
});
