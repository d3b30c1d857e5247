// UpdateContainerResources and UpdatePodSandboxResources against real record stores in a temp dir
// and a stand-in OCI runtime (a shell script that keeps the resources file it is given, and fails
// on cue), on a fake cgroup v1 layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSkiffError } from '../common/errors.js';
import { PodContext } from './context.js';
import { CONTAINER_RECORD_VERSION, SANDBOX_RECORD_VERSION, type ContainerRecord, type ContainerPhase, type SandboxRecord } from './records.js';
import { updateContainerResources, updateSandboxResources } from './resources-update.js';
import { OciRuntime } from './runtime/oci.js';
import { resources } from './spec/fixture.js';
import { RecordStore } from './store/record-store.js';
import { NameRegistry } from './store/names.js';

let dir: string;
let ctx: PodContext;
let runtime: OciRuntime;
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-resources-update-'));
  const script = join(dir, 'fake-runtime');
  // argv: --root ROOT update --resources FILE ID
  await writeFile(script, `#!/bin/sh\n[ -e ${dir}/fail ] && { echo "container is stopped" >&2; exit 1; }\ncp "$5" ${dir}/applied.json\necho "$@" > ${dir}/argv\n`);
  await chmod(script, 0o755);
  runtime = new OciRuntime({ name: 'fake', kind: 'runc', binary: script, root: join(dir, 'rt'), wrapper: [] });
  await mkdir(join(dir, 'memory'));
  await writeFile(join(dir, 'memory', 'memory.memsw.limit_in_bytes'), '');
  const containers = new RecordStore<ContainerRecord>(join(dir, 'c'), 'container', CONTAINER_RECORD_VERSION);
  const sandboxes = new RecordStore<SandboxRecord>(join(dir, 's'), 'sandbox', SANDBOX_RECORD_VERSION);
  await containers.load();
  await sandboxes.load();
  ctx = new PodContext(
    dir, dir, sandboxes, containers, new NameRegistry('sandbox'), new NameRegistry('container'), new Map(), 'fake',
    { ns: '', pause: '', monitor: '' },
    { mode: 'hybrid', v2Mounts: [], v1Controllers: { memory: join(dir, 'memory') } },
    undefined as never, undefined as never,
  );
});
after(() => rm(dir, { recursive: true, force: true }));

async function container(phase: ContainerPhase): Promise<ContainerRecord> {
  const id = (n++).toString(16).padStart(64, '0');
  const bundle = join(dir, 'bundles', id);
  await mkdir(bundle, { recursive: true });
  const spec = { process: { oomScoreAdj: 0 }, linux: { resources: { devices: [{ allow: false, access: 'rwm' }], cpu: { shares: 1024, quota: 50000, period: 100000 }, memory: { limit: 1 << 26, swap: 1 << 26 } } } };
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
  return ctx.containers.create({
    version: CONTAINER_RECORD_VERSION, id, sandboxId: 's'.repeat(64), name: id, fingerprint: '', config: {} as never, imageName: 'i', imageId: 'i',
    snapshots: [], phase, createdAt: '1', logPath: '', bundle, upperDir: '', workDir: '', stopSignal: 'TERM', cgroupsPath: `/skiff/${id}`,
  });
}

const config = async (c: ContainerRecord): Promise<{ linux: { resources: Record<string, unknown> } }> =>
  JSON.parse(await readFile(join(c.bundle, 'config.json'), 'utf8')) as { linux: { resources: Record<string, unknown> } };

test('a running container gets the merged resources through `runtime update`, then config.json and the record', async () => {
  await rm(join(dir, 'fail'), { force: true });
  const c = await container('running');
  await updateContainerResources(ctx, c, runtime, resources({ cpu_quota: '20000', memory_limit_in_bytes: String(1 << 27) }), async () => false);
  const argv = (await readFile(join(dir, 'argv'), 'utf8')).trim().split(' ');
  assert.deepEqual([argv.slice(0, 4), argv[5]], [['--root', join(dir, 'rt'), 'update', '--resources'], c.id]);
  assert.match(argv[4], new RegExp(`^${c.bundle}/update-[0-9a-f]{12}\\.json$`));
  assert.ok(!existsSync(argv[4]), 'the resources file is removed');
  const applied = JSON.parse(await readFile(join(dir, 'applied.json'), 'utf8')) as unknown;
  assert.deepEqual(applied, { cpu: { shares: 1024, quota: 20000, period: 100000 }, memory: { limit: 1 << 27, swap: 1 << 27 } }, 'no device rules are re-applied');
  assert.deepEqual((await config(c)).linux.resources.cpu, { shares: 1024, quota: 20000, period: 100000 });
  const rec = ctx.containers.get(c.id)!;
  assert.equal(rec.resources?.cpu_quota, '20000');
  assert.equal(rec.resources?.memory_limit_in_bytes, String(1 << 27));
  assert.equal(rec.resources?.cpu_shares, '1024', 'fields not named keep their value');
});

test('an exited container: no runtime call, the spec and record still change (containerd)', async () => {
  await rm(join(dir, 'applied.json'), { force: true });
  const c = await container('exited');
  await updateContainerResources(ctx, c, runtime, resources({ cpu_shares: '256' }), async () => true);
  assert.ok(!existsSync(join(dir, 'applied.json')));
  assert.equal(ctx.containers.get(c.id)!.resources?.cpu_shares, '256');
});

test('a runtime failure on a live container changes nothing', async () => {
  const c = await container('running');
  const before = await readFile(join(c.bundle, 'config.json'), 'utf8');
  await writeFile(join(dir, 'fail'), '');
  try {
    await assert.rejects(updateContainerResources(ctx, c, runtime, resources({ cpu_quota: '30000' }), async () => false), (e: unknown) => isSkiffError(e, 'SKIFF_RUNTIME_FAILED') && /container is stopped/.test(e.message));
  } finally {
    await rm(join(dir, 'fail'), { force: true });
  }
  assert.equal(await readFile(join(c.bundle, 'config.json'), 'utf8'), before);
  assert.equal(ctx.containers.get(c.id)!.resources, undefined);
});

test('a container that exits during the update: recorded only, and the call succeeds', async () => {
  const c = await container('running');
  await writeFile(join(dir, 'fail'), '');
  try {
    await updateContainerResources(ctx, c, runtime, resources({ cpu_quota: '30000' }), async () => true);
  } finally {
    await rm(join(dir, 'fail'), { force: true });
  }
  assert.equal(ctx.containers.get(c.id)!.resources?.cpu_quota, '30000');
});

test('bad input is refused before anything runs: INVALID_ARGUMENT naming the field', async () => {
  const c = await container('running');
  await rm(join(dir, 'applied.json'), { force: true });
  const rows: [Parameters<typeof resources>[0], RegExp][] = [
    [{ cpu_quota: '-5' }, /UpdateContainerResources: container 0+\w+: linux\.cpu_quota -5 is negative/],
    [{ memory_limit_in_bytes: '9223372036854775807' }, /linux\.memory_limit_in_bytes 9223372036854775807 is absurd/],
    [{ unified: { 'memory.high': '1' } }, /linux\.unified .* cannot be set on this host, which has cgroup v1/],
    [{ oom_score_adj: '-2000' }, /linux\.oom_score_adj -2000 is out of range/],
  ];
  for (const [r, want] of rows) {
    await assert.rejects(updateContainerResources(ctx, c, runtime, resources(r), async () => false), (e: unknown) => isSkiffError(e, 'SKIFF_INVALID_ARGUMENT') && want.test(e.message));
  }
  assert.ok(!existsSync(join(dir, 'applied.json')));
  assert.equal(ctx.containers.get(c.id)!.resources, undefined);
});

test('UpdatePodSandboxResources checks and records the pod\'s overhead and resources', async () => {
  const s = await ctx.sandboxes.create({
    version: SANDBOX_RECORD_VERSION, id: 'f'.repeat(64), name: 'p', fingerprint: '', config: {} as never, runtimeHandler: 'fake', phase: 'ready', createdAt: '1', dir, hostname: 'p', ips: [],
  });
  await updateSandboxResources(ctx, s, resources({ cpu_shares: '10' }), resources({ memory_limit_in_bytes: '1000000000' }));
  assert.equal(ctx.sandboxes.get(s.id)!.resources?.memory_limit_in_bytes, '1000000000');
  assert.equal(ctx.sandboxes.get(s.id)!.overhead?.cpu_shares, '10');
  await assert.rejects(updateSandboxResources(ctx, s, null, resources({ cpu_period: '-1' })), /UpdatePodSandboxResources: sandbox f+: resources\.cpu_period -1 is out of range/);
});
