// The skiff CLI end to end against a fake CRI server on a unix socket: main() in-process with
// captured stdout/stderr, and the real bin spawned once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';
import { runMain, type CliRun } from './cli-harness.test-helper.js';

const BUSYBOX_ID = 'sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741';
const PAUSE_ID = `sha256:${'a'.repeat(64)}`;
const BUSYBOX: v1.Image = {
  id: BUSYBOX_ID,
  repo_tags: ['docker.io/library/busybox:1.36'],
  repo_digests: ['docker.io/library/busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7'],
  size: '4261000',
  pinned: false,
};
const PAUSE_BY_DIGEST: v1.Image = {
  id: PAUSE_ID,
  repo_tags: [],
  repo_digests: ['registry.k8s.io/pause@sha256:bbbb'],
  size: '1000',
};

let server: FakeCri;
let workdir: string;
const pulls: { request: v1.PullImageRequest__Output; deadline: Date | number }[] = [];
const removed: string[] = [];
/** The fake daemon's images; RemoveImage changes them as skiffd does. */
let images: v1.Image[] = [];
const resetImages = (): void => {
  images = [PAUSE_BY_DIGEST, BUSYBOX];
};
resetImages();
const findImage = (name: string | undefined): v1.Image | undefined =>
  images.find((i) => i.id === name || i.repo_tags?.includes(name ?? '') || i.repo_digests?.includes(name ?? ''));

before(async () => {
  workdir = await mkdtemp(join(tmpdir(), 'skiff-cli-test-'));
  server = await startFakeCri({
    runtime: {
      Version: (_call, done) => done(null, { version: '0.1.0', runtime_name: 'skiff', runtime_version: '0.1.0', runtime_api_version: 'v1' }),
      Status: (call, done) =>
        done(null, {
          status: { conditions: [{ type: 'RuntimeReady', status: true }] },
          info: call.request.verbose ? { config: '{"root":"/var/lib/skiff"}', plain: '"quoted"' } : {},
        }),
    },
    image: {
      PullImage: (call, done) => {
        pulls.push({ request: call.request, deadline: call.getDeadline() });
        if (call.request.image?.image === 'missing') {
          done({ code: grpc.status.NOT_FOUND, details: 'pull missing: manifest unknown (404)' });
          return;
        }
        done(null, { image_ref: BUSYBOX_ID });
      },
      ListImages: (_call, done) => done(null, { images }),
      ImageStatus: (call, done) => {
        const name = call.request.image?.image;
        const image = findImage(name);
        done(null, image ? { image, info: call.request.verbose ? { info: '{"chainID":"sha256:c"}' } : {} } : {});
      },
      RemoveImage: (call, done) => {
        const name = call.request.image?.image ?? '';
        removed.push(name);
        const image = findImage(name);
        // skiffd: by one of several tags only that tag goes; otherwise the image goes.
        if (image && image.repo_tags?.includes(name) && image.repo_tags.length > 1) {
          images = images.map((i) => (i === image ? { ...i, repo_tags: image.repo_tags?.filter((t) => t !== name) } : i));
        } else if (image) {
          images = images.filter((i) => i !== image);
        }
        done(null, {});
      },
      ImageFsInfo: (_call, done) =>
        done(null, {
          image_filesystems: [{ timestamp: 1700000000000000000, fs_id: { mountpoint: '/var/lib/skiff' }, used_bytes: { value: 123456789 }, inodes_used: { value: 42 } }],
          container_filesystems: [],
        }),
    },
  });
});

after(async () => {
  await server.close();
  await rm(workdir, { recursive: true, force: true });
});

const run = (...argv: string[]): Promise<CliRun> => runMain(server.endpoint, argv);

void test('skiff version prints the fields as crictl does', async () => {
  const r = await run('version');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Version:  0.1.0\nRuntimeName:  skiff\nRuntimeVersion:  0.1.0\nRuntimeApiVersion:  v1\n');
});

void test('skiff version -o json is protojson', async () => {
  const r = await run('version', '-o', 'json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { version: '0.1.0', runtimeName: 'skiff', runtimeVersion: '0.1.0', runtimeApiVersion: 'v1' });
});

void test('skiff pull prints the image ref and sends credentials and annotations', async () => {
  pulls.length = 0;
  const r = await run('pull', '--creds', 'me:secret:x', '-a', 'k=v', '-a', 'x=y=z', 'busybox:1.36');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Image is up to date for ${BUSYBOX_ID}\n`);
  assert.equal(pulls[0].request.image?.image, 'busybox:1.36');
  assert.deepEqual(pulls[0].request.image?.annotations, { k: 'v', x: 'y=z' });
  assert.equal(pulls[0].request.auth?.username, 'me');
  assert.equal(pulls[0].request.auth?.password, 'secret:x');
  assert.equal(pulls[0].deadline, Infinity, 'a pull has no deadline unless asked');
});

void test('skiff -t bounds a pull, and --pod-config sends a sandbox config', async () => {
  pulls.length = 0;
  const podConfig = join(workdir, 'pod.json');
  await writeFile(podConfig, JSON.stringify({ metadata: { name: 'p', namespace: 'default' }, linux: { cgroupParent: '/kubepods' } }));
  const r = await run('-t', '30s', 'pull', '--pod-config', podConfig, 'busybox');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Number(pulls[0].deadline) > Date.now() + 20_000 && Number(pulls[0].deadline) < Date.now() + 31_000);
  assert.equal(pulls[0].request.sandbox_config?.linux?.cgroup_parent, '/kubepods');
  assert.match(pulls[0].request.sandbox_config?.metadata?.uid ?? '', /^[0-9a-f-]{36}$/, 'a missing uid is generated');
});

void test('a failed pull prints the rpc error like crictl and exits 1', async () => {
  const r = await run('pull', 'missing');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'skiff: PullImage failed: rpc error: code = NotFound desc = pull missing: manifest unknown (404)\n');
});

void test('usage errors exit 2 without sending anything', async () => {
  pulls.length = 0;
  for (const argv of [['pull'], ['pull', '--bogus', 'x'], ['pull', '--creds', 'a', '--auth', 'b', 'x'], ['images', '-o', 'xml'], ['frobnicate']]) {
    const r = await run(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.stderr, /^skiff: /, argv.join(' '));
  }
  assert.equal(pulls.length, 0);
});

void test('skiff images prints a crictl table, sorted, with <none> for digest-only images', async () => {
  const r = await run('images');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    'IMAGE                       TAG                 IMAGE ID            SIZE\n' +
      'docker.io/library/busybox   1.36                3f57d9401f8d4       4.26MB\n' +
      'registry.k8s.io/pause       <none>              aaaaaaaaaaaaa       1kB\n',
  );
  const quiet = await run('images', '-q');
  assert.equal(quiet.stdout, `${BUSYBOX_ID}\n${PAUSE_ID}\n`);
});

void test('skiff images -o json prints {"images": [...]} in protojson', async () => {
  const r = await run('images', '-o', 'json');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { images: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(doc), ['images']);
  assert.deepEqual(doc.images[0], {
    id: BUSYBOX_ID,
    repoTags: BUSYBOX.repo_tags,
    repoDigests: BUSYBOX.repo_digests,
    size: '4261000',
    username: '',
    pinned: false,
  });
});

void test('skiff inspecti prints {"info": ..., "status": Image} and fails for a missing image', async () => {
  const r = await run('inspecti', 'docker.io/library/busybox:1.36');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { status: { id: string; repoTags: string[] }; info: unknown };
  assert.equal(doc.status.id, BUSYBOX_ID);
  assert.deepEqual(doc.info, { chainID: 'sha256:c' });
  const missing = await run('inspecti', 'nope');
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'skiff: no such image "nope" present\n');
});

void test('skiff rmi prints each deleted tag, or the digests of an untagged image', async (t) => {
  t.after(resetImages);
  removed.length = 0;
  const r = await run('rmi', 'docker.io/library/busybox:1.36', PAUSE_ID);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Deleted: docker.io/library/busybox:1.36\nDeleted: registry.k8s.io/pause@sha256:bbbb\n');
  assert.deepEqual(removed, ['docker.io/library/busybox:1.36', PAUSE_ID]);
  const missing = await run('rmi', 'nope');
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'skiff: no such image nope\nskiff: unable to remove the image(s)\n');
});

void test('skiff rmi of one of several tags says Untagged, not Deleted for every tag', async (t) => {
  t.after(resetImages);
  const appId = `sha256:${'c'.repeat(64)}`;
  const bareId = `sha256:${'d'.repeat(64)}`;
  images.push(
    { id: appId, repo_tags: ['docker.io/library/app:1', 'docker.io/library/app:latest'], repo_digests: [], size: '10' },
    { id: bareId, repo_tags: [], repo_digests: [], size: '10' },
  );
  const cases: Array<[args: string[], stdout: string]> = [
    [['docker.io/library/app:1'], 'Untagged: docker.io/library/app:1\n'],
    [['docker.io/library/app:latest'], 'Deleted: docker.io/library/app:latest\n'],
    [[bareId], `Deleted: ${bareId}\n`],
  ];
  for (const [args, stdout] of cases) {
    const r = await run('rmi', ...args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, stdout, args.join(' '));
  }
  assert.deepEqual(images.map((i) => i.id), [PAUSE_ID, BUSYBOX_ID]);
});

void test('skiff imagefsinfo prints {"status": ...} and a table', async () => {
  const r = await run('imagefsinfo');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { status: { imageFilesystems: { usedBytes: { value: string } }[] } };
  assert.equal(doc.status.imageFilesystems[0].usedBytes.value, '123456789');
  const table = await run('imagefsinfo', '-o', 'table');
  assert.equal(
    table.stdout,
    'Container Filesystem \nImage Filesystem \nTimeStamp[0]: 1700000000000000000\nDisk[0]: 123.5MB\nInodes[0]: 42\nMountpoint[0]: /var/lib/skiff\n',
  );
});

void test('skiff info merges the status and the verbose info map', async () => {
  const r = await run('info');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    config: { root: '/var/lib/skiff' },
    plain: 'quoted',
    status: { conditions: [{ type: 'RuntimeReady', status: true, reason: '', message: '' }] },
  });
});

void test('help lists the commands, and each command has --help', async () => {
  const help = await run('help');
  assert.equal(help.code, 0);
  for (const name of ['version', 'info', 'pull', 'images', 'inspecti', 'rmi', 'imagefsinfo']) assert.match(help.stdout, new RegExp(`^   ${name}\\b`, 'm'));
  const pullHelp = await run('pull', '--help');
  assert.equal(pullHelp.code, 0);
  assert.match(pullHelp.stdout, /skiff pull \[command options\] NAME\[:TAG\|@DIGEST\]/);
  assert.match(pullHelp.stdout, /--creds USERNAME\[:PASSWORD\]/);
  assert.deepEqual(await run('help', 'images'), { code: 0, stdout: (await run('images', '-h')).stdout, stderr: '' });
});

void test('the installed bin runs as a program and reports rpc failures with exit 1', async () => {
  const bin = fileURLToPath(new URL('./main.js', import.meta.url));
  const exec = promisify(execFile);
  const ok = await exec(process.execPath, [bin, '--runtime-endpoint', server.endpoint, 'version']);
  assert.match(ok.stdout, /^Version: {2}0\.1\.0\nRuntimeName: {2}skiff\n/);
  await assert.rejects(exec(process.execPath, [bin, '-r', join(workdir, 'absent.sock'), 'version'], { env: {} }), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /^skiff: Version failed: rpc error: code = Unavailable desc = /);
    return true;
  });
});
