// create, start, stop, rm, ps, inspect and exec -s against a fake CRI server that records what it
// is sent.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';
import { runMain, writeFixture, type CliRun } from './cli-harness.test-helper.js';

const POD = 'p'.repeat(64);
const RUNNING = 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
const EXITED = 'e'.repeat(64);
const CREATED = 'f'.repeat(64);
const BUSYBOX_ID = `sha256:${'3f57d9401f8d42f9'.repeat(4)}`;
const MINUTE_NS = 60_000_000_000n;
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

let server: FakeCri;
let workdir: string;
let calls: { rpc: string; request: unknown; deadline: Date | number }[] = [];
let containers: v1.ContainerStatus[] = [];
let images: v1.Image[] = [];
const requests = <T>(rpc: string): T[] => calls.filter((c) => c.rpc === rpc).map((c) => c.request as T);
const rpcs = (): string[] => calls.map((c) => c.rpc);

function containersFixture(): v1.ContainerStatus[] {
  const labels = { 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'default', app: 'web' };
  return [
    {
      id: RUNNING,
      metadata: { name: 'app', attempt: 2 },
      state: 'CONTAINER_RUNNING',
      created_at: String(nowNs() - 10n * MINUTE_NS),
      started_at: '1700000001000000000',
      image: { image: BUSYBOX_ID },
      image_ref: 'docker.io/library/busybox@sha256:9ae9',
      labels,
      annotations: { note: 'x' },
      log_path: '',
    },
    {
      id: EXITED,
      metadata: { name: 'init', attempt: 0 },
      state: 'CONTAINER_EXITED',
      created_at: String(nowNs() - 2n * 60n * MINUTE_NS),
      started_at: '1700000001000000000',
      finished_at: '1700000002500000000',
      exit_code: 1,
      image: { image: 'docker.io/library/alpine:3.20' },
      labels: {},
      annotations: {},
    },
    {
      id: CREATED,
      metadata: { name: 'side', attempt: 0 },
      state: 'CONTAINER_CREATED',
      created_at: '1700000000000000000',
      image: { image: BUSYBOX_ID },
      labels,
      annotations: {},
    },
  ];
}

const asContainer = (s: v1.ContainerStatus): v1.Container => ({
  id: s.id,
  pod_sandbox_id: POD,
  metadata: s.metadata,
  image: s.image,
  image_ref: s.image_ref,
  state: s.state,
  created_at: s.created_at,
  labels: s.labels,
  annotations: s.annotations,
});

before(async () => {
  workdir = await mkdtemp(join(tmpdir(), 'skiff-cli-containers-'));
  const record = (rpc: string, call: grpc.ServerUnaryCall<unknown, unknown>): void => {
    calls.push({ rpc, request: call.request, deadline: call.getDeadline() });
  };
  const find = (id: string): v1.ContainerStatus | undefined => containers.find((c) => c.id === id);
  const notFound = (id: string): Partial<grpc.StatusObject> => ({ code: grpc.status.NOT_FOUND, details: `container "${id}" not found` });
  server = await startFakeCri({
    runtime: {
      CreateContainer: (call, done) => {
        record('CreateContainer', call);
        done(null, { container_id: CREATED });
      },
      StartContainer: (call, done) => {
        record('StartContainer', call);
        const c = find(call.request.container_id);
        if (!c) return done(notFound(call.request.container_id));
        c.state = 'CONTAINER_RUNNING';
        done(null, {});
      },
      StopContainer: (call, done) => {
        record('StopContainer', call);
        const c = find(call.request.container_id);
        if (c) c.state = 'CONTAINER_EXITED';
        done(null, {});
      },
      RemoveContainer: (call, done) => {
        record('RemoveContainer', call);
        containers = containers.filter((c) => c.id !== call.request.container_id);
        done(null, {});
      },
      ContainerStatus: (call, done) => {
        record('ContainerStatus', call);
        const c = find(call.request.container_id);
        if (!c) return done(notFound(call.request.container_id));
        done(null, { status: c, info: call.request.verbose ? { info: '{"pid":7}', sandboxID: POD } : {} });
      },
      ListContainers: (call, done) => {
        record('ListContainers', call);
        const state = call.request.filter?.state?.state;
        done(null, { containers: containers.filter((c) => !state || c.state === state).map(asContainer) });
      },
      ExecSync: (call, done) => {
        record('ExecSync', call);
        const [cmd, ...args] = call.request.cmd;
        if (cmd === 'fail') return done({ code: grpc.status.DEADLINE_EXCEEDED, details: 'command timed out' });
        const code = cmd === 'exit' ? Number(args[0]) : 0;
        done(null, { stdout: Buffer.from(`out: ${args.join(' ')}\n`), stderr: Buffer.from(code ? 'err\n' : ''), exit_code: code });
      },
    },
    image: {
      ImageStatus: (call, done) => {
        record('ImageStatus', call);
        const name = call.request.image?.image ?? '';
        const image = images.find((i) => i.id === name || i.repo_tags?.includes(name));
        done(null, image ? { image } : {});
      },
      PullImage: (call, done) => {
        record('PullImage', call);
        if (call.request.image?.image === 'missing:1') return done({ code: grpc.status.NOT_FOUND, details: 'manifest unknown (404)' });
        done(null, { image_ref: BUSYBOX_ID });
      },
    },
  });
});

after(async () => {
  await server.close();
  await rm(workdir, { recursive: true, force: true });
});

beforeEach(() => {
  calls = [];
  containers = containersFixture();
  images = [{ id: BUSYBOX_ID, repo_tags: ['docker.io/library/busybox:1.36'], repo_digests: [], size: '1' }];
});

const run = (...argv: string[]): Promise<CliRun> => runMain(server.endpoint, argv);

const file = (name: string, content: string): Promise<string> => writeFixture(workdir, name, content);

const podConfig = (): Promise<string> => file('pod.yaml', 'metadata: {name: web, namespace: default, uid: u-1}\n');
const containerConfig = (image: string, extra = ''): Promise<string> =>
  file('ctr.yaml', `metadata:\n  name: app\nimage:\n  image: ${image}\n  annotations: {a: b}\ncommand: [sleep, '3600']\nlog_path: app/0.log\n${extra}`);

void test('skiff create pulls a missing image with the pod config and credentials, then prints the container id', async () => {
  const r = await run('create', '--creds', 'me:pw', POD, await containerConfig('missing-here:1'), await podConfig());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${CREATED}\n`);
  assert.deepEqual(rpcs(), ['ImageStatus', 'PullImage', 'CreateContainer']);
  const [pull] = requests<v1.PullImageRequest__Output>('PullImage');
  assert.equal(pull.image?.image, 'missing-here:1');
  assert.deepEqual(pull.image?.annotations, { a: 'b' });
  assert.deepEqual([pull.auth?.username, pull.auth?.password], ['me', 'pw']);
  assert.equal(pull.sandbox_config?.metadata?.uid, 'u-1');
  assert.equal(calls[1].deadline, Infinity, 'a pull has no deadline unless asked');
  const [create] = requests<v1.CreateContainerRequest__Output>('CreateContainer');
  assert.equal(create.pod_sandbox_id, POD);
  assert.deepEqual(create.config?.command, ['sleep', '3600']);
  assert.equal(create.config?.log_path, 'app/0.log');
  assert.equal(create.config?.image?.user_specified_image, 'missing-here:1');
  assert.equal(create.sandbox_config?.metadata?.name, 'web');
});

void test('skiff create skips the pull when the image is there, never pulls with --no-pull, always with --with-pull', async () => {
  const present = await run('create', POD, await containerConfig('docker.io/library/busybox:1.36'), await podConfig());
  assert.equal(present.code, 0, present.stderr);
  assert.deepEqual(rpcs(), ['ImageStatus', 'CreateContainer']);
  calls = [];
  assert.equal((await run('create', '--no-pull', POD, await containerConfig('missing-here:1'), await podConfig())).code, 0);
  assert.deepEqual(rpcs(), ['CreateContainer']);
  calls = [];
  const volume = '  - container_path: /data\n    image: {image: "registry.example/data:1"}\n';
  const always = await run('-t', '5s', 'create', '--with-pull', POD, await containerConfig('docker.io/library/busybox:1.36', `mounts:\n${volume}`), await podConfig());
  assert.equal(always.code, 0, always.stderr);
  assert.deepEqual(rpcs(), ['PullImage', 'PullImage', 'CreateContainer']);
  assert.deepEqual(requests<v1.PullImageRequest__Output>('PullImage').map((p) => p.image?.image), ['docker.io/library/busybox:1.36', 'registry.example/data:1']);
  assert.ok(Number(calls[0].deadline) <= Date.now() + 5000, '-t bounds the pulls');
  const both = await run('create', '--no-pull', '--with-pull', POD, await containerConfig('x'), await podConfig());
  assert.equal(both.code, 2);
  assert.match(both.stderr, /conflict: no-pull and with-pull are both set/);
});

void test('skiff create: a bad container config names file and field; a failed pull creates nothing', async () => {
  const bad = await file('bad-ctr.json', '{"metadata": {"name": "app"}, "image": {"image": "x"}, "tty": "yes"}');
  const r = await run('create', POD, bad, await podConfig());
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^skiff: load containerConfig: .*bad-ctr\.json: tty: expected true or false\n/);
  const noName = await run('create', POD, await file('noname.yaml', 'image: {image: x}\nmetadata: {attempt: 1}\n'), await podConfig());
  assert.match(noName.stderr, /noname\.yaml: name is not in metadata/);
  assert.equal((await run('create', POD, bad)).code, 2, 'three arguments');
  assert.equal(calls.length, 0);

  const failed = await run('create', POD, await containerConfig('missing:1'), await podConfig());
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr, 'skiff: PullImage failed: rpc error: code = NotFound desc = manifest unknown (404)\n');
  assert.deepEqual(rpcs(), ['ImageStatus', 'PullImage']);
});

void test('skiff start prints each id and stops at the first failure', async () => {
  const r = await run('start', CREATED, EXITED);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${CREATED}\n${EXITED}\n`);
  const failed = await run('start', 'nope', CREATED);
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr, 'skiff: StartContainer failed: rpc error: code = NotFound desc = container "nope" not found\n');
  assert.deepEqual(requests<v1.StartContainerRequest__Output>('StartContainer').map((q) => q.container_id), [CREATED, EXITED, 'nope']);
  assert.equal((await run('start')).code, 2);
});

void test('skiff stop -t sends the grace period and extends the deadline by it; -a stops every running container', async () => {
  const r = await run('-t', '2s', 'stop', '-t', '10', RUNNING);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${RUNNING}\n`);
  const [request] = requests<v1.StopContainerRequest__Output>('StopContainer');
  assert.equal(request.timeout, '10');
  const deadline = Number(calls[0].deadline) - Date.now();
  assert.ok(deadline > 10_000 && deadline <= 12_000, `deadline ${deadline} ms`);

  containers = containersFixture();
  calls = [];
  const all = await run('stop', '-a');
  assert.equal(all.stdout, `${RUNNING}\n`);
  assert.equal(requests<v1.ListContainersRequest__Output>('ListContainers')[0].filter?.state?.state, 'CONTAINER_RUNNING');
  assert.deepEqual(await run('stop', '--all'), { code: 0, stdout: 'No running containers found.\n', stderr: '' });
  for (const argv of [['stop'], ['stop', '-a', RUNNING], ['stop', '-t', 'soon', RUNNING]]) assert.equal((await run(...argv)).code, 2, argv.join(' '));
});

void test('skiff rm refuses a running container without -f and removes the others with their log files', async () => {
  const logs = join(workdir, 'logs');
  await mkdir(logs, { recursive: true });
  await Promise.all(['0.log', '0.log.20240101-000000', '0.log.20240101-000000.gz', '1.log'].map((n) => writeFile(join(logs, n), 'x')));
  containers[1].log_path = join(logs, '0.log');
  const r = await run('rm', RUNNING, EXITED);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${EXITED}\n`);
  assert.equal(r.stderr, `skiff: container "${RUNNING}" is running, please stop it first\nskiff: unable to remove the container(s)\n`);
  assert.deepEqual(await readdir(logs), ['1.log'], 'the log and its rotations are gone, another attempt\'s log stays');

  const kept = join(workdir, 'kept.log');
  await writeFile(kept, 'x');
  containers = containersFixture();
  containers[1].log_path = kept;
  assert.equal((await run('rm', '-k', EXITED)).code, 0);
  assert.deepEqual(await readdir(workdir).then((names) => names.includes('kept.log')), true);
});

void test('skiff rm -f stops a running container first (its id printed for both, as crictl does); -a removes all', async () => {
  const r = await run('rm', '-f', RUNNING);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${RUNNING}\n${RUNNING}\n`);
  assert.deepEqual(rpcs(), ['ContainerStatus', 'StopContainer', 'RemoveContainer']);
  assert.equal(requests<v1.StopContainerRequest__Output>('StopContainer')[0].timeout, '0');
  const all = await run('rm', '-a', '-f');
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, `${EXITED}\n${CREATED}\n`);
  assert.deepEqual(await run('rm', '-a'), { code: 0, stdout: '', stderr: 'No containers to remove\n' });
});

void test('skiff ps lists running containers in crictl\'s table; -a lists every state, newest first', async () => {
  const r = await run('ps');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    'CONTAINER           IMAGE               CREATED             STATE               NAME                ATTEMPT             POD ID              POD                 NAMESPACE\n' +
      'c0ffee0123456       3f57d9401f8d4       10 minutes ago      Running             app                 2                   ppppppppppppp       web                 default\n',
  );
  assert.deepEqual(requests<v1.ListContainersRequest__Output>('ListContainers')[0].filter, {
    id: '',
    state: { state: 'CONTAINER_RUNNING' },
    pod_sandbox_id: '',
    label_selector: {},
  });
  const all = await run('ps', '-a');
  assert.match(all.stdout, /\nc0ffee0123456 .*\neeeeeeeeeeeee {7}docker.io\/library\/alpine:3.20 {3}2 hours ago .* Exited .* unknown +unknown\nfffffffffffff .* Created /);
  assert.equal(requests<v1.ListContainersRequest__Output>('ListContainers')[1].filter?.state, null);
  const full = await run('ps', '-a', '--no-trunc');
  assert.match(full.stdout, new RegExp(`^${RUNNING}   ${BUSYBOX_ID}   `, 'm'));
});

void test('skiff ps sends id, pod, state and labels; filters name, namespace and image itself; -l/-n see every state', async () => {
  const r = await run('ps', '--id', 'c0f', '-p', POD, '--state', 'exited', '--label', 'app=web', '-q');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${EXITED}\n`);
  assert.deepEqual(requests<v1.ListContainersRequest__Output>('ListContainers')[0].filter, {
    id: 'c0f',
    state: { state: 'CONTAINER_EXITED' },
    pod_sandbox_id: POD,
    label_selector: { app: 'web' },
  });
  assert.equal((await run('ps', '-a', '--name', '^(init|side)$', '-q')).stdout, `${EXITED}\n${CREATED}\n`);
  assert.equal((await run('ps', '-a', '--namespace', 'def', '-q')).stdout, `${RUNNING}\n${CREATED}\n`);
  assert.equal((await run('ps', '-l', '-q')).stdout, `${RUNNING}\n`);
  assert.equal((await run('ps', '-n', '2', '-q')).stdout, `${RUNNING}\n${EXITED}\n`);
  calls = [];
  assert.equal((await run('ps', '-a', '--image', 'docker.io/library/busybox:1.36', '-q')).stdout, `${RUNNING}\n${CREATED}\n`);
  assert.deepEqual(requests<v1.ImageStatusRequest__Output>('ImageStatus').map((q) => q.image?.image), [
    'docker.io/library/busybox:1.36',
    BUSYBOX_ID,
    'docker.io/library/alpine:3.20',
  ]);
  assert.equal((await run('ps', '-a', '--image', 'absent:1', '-q')).stdout, '');
  for (const argv of [['ps', '--state', 'paused'], ['ps', '--label', 'a=b=c']]) assert.equal((await run(...argv)).code, 2, argv.join(' '));
});

void test('skiff ps -o json prints {"containers": [...]} in protojson, and -v crictl\'s field list', async () => {
  const r = await run('ps', '-o', 'json');
  const doc = JSON.parse(r.stdout) as { containers: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(doc), ['containers']);
  assert.equal(doc.containers.length, 1);
  assert.equal(doc.containers[0].podSandboxId, POD);
  assert.deepEqual(doc.containers[0].metadata, { name: 'app', attempt: 2 });
  const verbose = await run('ps', '-v');
  assert.equal(
    verbose.stdout,
    `ID: ${RUNNING}\nPodID: ${POD}\nNamespace: default\nName: app\nAttempt: 2\nState: Running\nImage: ${BUSYBOX_ID}\n` +
      'Created: 10 minutes ago\nLabels:\n\tapp -> web\n\tio.kubernetes.pod.name -> web\n\tio.kubernetes.pod.namespace -> default\n' +
      'Annotations:\n\tnote -> x\n\n',
  );
});

void test('skiff inspect prints {"info": ..., "status": ...} with RFC3339 times, zero times for what has not happened', async () => {
  const r = await run('inspect', EXITED, CREATED);
  assert.equal(r.code, 0, r.stderr);
  const [exited, created] = JSON.parse(r.stdout) as { status: Record<string, unknown>; info: unknown; sandboxID: string }[];
  assert.deepEqual(Object.keys(exited), ['info', 'sandboxID', 'status']);
  assert.deepEqual(exited.info, { pid: 7 });
  assert.equal(exited.sandboxID, POD);
  assert.equal(exited.status.startedAt, '2023-11-14T22:13:21Z');
  assert.equal(exited.status.finishedAt, '2023-11-14T22:13:22.5Z');
  assert.equal(exited.status.exitCode, 1);
  assert.equal(created.status.createdAt, '2023-11-14T22:13:20Z');
  assert.equal(created.status.startedAt, '0001-01-01T00:00:00Z');
  assert.equal(created.status.finishedAt, '0001-01-01T00:00:00Z');
  const quiet = await run('inspect', '-q', '-o', 'yaml', RUNNING);
  assert.match(quiet.stdout, /^status:\n {2}annotations:\n {4}note: x\n/);
  assert.equal(requests<v1.ContainerStatusRequest__Output>('ContainerStatus').at(-1)?.verbose, false);
});

void test('skiff inspect -o table prints crictl\'s text form; a missing container fails with NotFound', async () => {
  const r = await run('inspect', '-o', 'table', EXITED);
  assert.match(r.stdout, /^ID: e+\nName: init\nState: CONTAINER_EXITED\nCreated: 2 hours ago\nStarted: .* ago\nFinished: .* ago\nExit Code: 1\nInfo: map\[info:\{"pid":7\} sandboxID:p+\]\n$/);
  const missing = await run('inspect', 'nope');
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'skiff: ContainerStatus failed: rpc error: code = NotFound desc = container "nope" not found\n');
});

void test('skiff exec -s prints the command\'s output and exits with its exit code', async () => {
  const ok = await run('exec', '-s', RUNNING, 'ls', '-la', '/');
  assert.deepEqual(ok, { code: 0, stdout: 'out: -la /\n', stderr: '' });
  assert.deepEqual(requests<v1.ExecSyncRequest__Output>('ExecSync')[0], { container_id: RUNNING, cmd: ['ls', '-la', '/'], timeout: '0' });
  assert.equal(calls[0].deadline, Infinity, 'no deadline without --timeout');
  const failed = await run('exec', '--sync', RUNNING, 'exit', '3');
  assert.deepEqual(failed, { code: 3, stdout: 'out: 3\n', stderr: 'err\n' });
  const dashes = await run('exec', '-s', '--timeout', '5', '--', RUNNING, 'exit', '0');
  assert.equal(dashes.code, 0);
  assert.equal(requests<v1.ExecSyncRequest__Output>('ExecSync')[2].timeout, '5');
  const deadline = Number(calls[2].deadline) - Date.now();
  assert.ok(deadline > 5_000 && deadline <= 7_000, `--timeout extends the deadline, got ${deadline} ms`);
});

void test('skiff exec without -s sends Exec (streamed; see streaming-commands.test.ts); rpc failures exit 1', async () => {
  const unimplemented = await run('exec', RUNNING, 'sh');
  assert.deepEqual(unimplemented, { code: 1, stdout: '', stderr: 'skiff: Exec failed: rpc error: code = Unimplemented desc = The server does not implement the method Exec\n' });
  assert.equal((await run('exec', '-s', RUNNING)).code, 2, 'a command is needed');
  assert.equal((await run('exec', '-s')).code, 2);
  assert.equal(calls.length, 0);
  const failed = await run('exec', '-s', RUNNING, 'fail');
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr, 'skiff: ExecSync failed: rpc error: code = DeadlineExceeded desc = command timed out\n');
  const help = await run('exec', '--help');
  assert.match(help.stdout, /--interactive, -i/);
  assert.match(help.stdout, /--sync, -s/);
});
