// runp, stopp, rmp, pods and inspectp against a fake CRI server that records what it is sent.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';
import { runMain, writeFixture, type CliRun } from './cli-harness.test-helper.js';

const POD_A = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2';
const POD_B = 'b'.repeat(64);
const MINUTE_NS = 60_000_000_000n;
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

let server: FakeCri;
let workdir: string;
let calls: { rpc: string; request: unknown; deadline: Date | number }[] = [];
let pods: v1.PodSandbox[] = [];
const requests = <T>(rpc: string): T[] => calls.filter((c) => c.rpc === rpc).map((c) => c.request as T);

function podsFixture(): v1.PodSandbox[] {
  return [
    {
      id: POD_A,
      metadata: { name: 'web', uid: 'u-1', namespace: 'default', attempt: 1 },
      state: 'SANDBOX_READY',
      created_at: String(nowNs() - 5n * MINUTE_NS - 10_000_000_000n),
      labels: { app: 'web' },
      annotations: {},
      runtime_handler: '',
    },
    {
      id: POD_B,
      metadata: { name: 'db', uid: 'u-2', namespace: 'kube-system', attempt: 0 },
      state: 'SANDBOX_NOTREADY',
      created_at: String(nowNs() - 3n * 60n * MINUTE_NS),
      labels: {},
      annotations: {},
      runtime_handler: 'kata',
    },
  ];
}

const notFound = (what: string): Partial<grpc.StatusObject> => ({ code: grpc.status.NOT_FOUND, details: `pod sandbox "${what}" not found` });

before(async () => {
  workdir = await mkdtemp(join(tmpdir(), 'skiff-cli-pods-'));
  const record = (rpc: string, call: grpc.ServerUnaryCall<unknown, unknown>): void => {
    calls.push({ rpc, request: call.request, deadline: call.getDeadline() });
  };
  server = await startFakeCri({
    runtime: {
      RunPodSandbox: (call, done) => {
        record('RunPodSandbox', call);
        if (call.request.config?.metadata?.name === 'broken') return done({ code: grpc.status.INTERNAL, details: 'cni: no IP left' });
        done(null, { pod_sandbox_id: POD_A });
      },
      StopPodSandbox: (call, done) => {
        record('StopPodSandbox', call);
        if (call.request.pod_sandbox_id === 'fails') return done({ code: grpc.status.UNKNOWN, details: 'stop failed' });
        done(null, {});
      },
      RemovePodSandbox: (call, done) => {
        record('RemovePodSandbox', call);
        pods = pods.filter((p) => p.id !== call.request.pod_sandbox_id);
        done(null, {});
      },
      PodSandboxStatus: (call, done) => {
        record('PodSandboxStatus', call);
        const pod = pods.find((p) => p.id === call.request.pod_sandbox_id);
        if (!pod) return done(notFound(call.request.pod_sandbox_id));
        done(null, {
          status: { ...pod, network: { ip: '10.88.0.5', additional_ips: [{ ip: 'fd00::5' }] } },
          info: call.request.verbose ? { info: '{"pid":42,"runtimeSpec":{"ociVersion":"1.2.0"}}' } : {},
        });
      },
      ListPodSandbox: (call, done) => {
        record('ListPodSandbox', call);
        done(null, { items: pods });
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
  pods = podsFixture();
});

const run = (...argv: string[]): Promise<CliRun> => runMain(server.endpoint, argv);

const file = (name: string, content: string): Promise<string> => writeFixture(workdir, name, content);

void test('skiff runp sends a YAML pod config in snake_case with --runtime and prints the pod id', async () => {
  const config = await file(
    'pod.yaml',
    'metadata:\n  name: web\n  namespace: default\n  uid: fixed-uid\nlog_directory: /var/log/pods/web\nlinux:\n  cgroup_parent: /kubepods\nlabels:\n  app: web\n',
  );
  const r = await run('-t', '10s', 'runp', '--runtime', 'kata', config);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${POD_A}\n`);
  const [request] = requests<v1.RunPodSandboxRequest__Output>('RunPodSandbox');
  assert.equal(request.runtime_handler, 'kata');
  assert.equal(request.config?.metadata?.uid, 'fixed-uid');
  assert.equal(request.config?.log_directory, '/var/log/pods/web');
  assert.equal(request.config?.linux?.cgroup_parent, '/kubepods');
  assert.deepEqual(request.config?.labels, { app: 'web' });
  const deadline = Number(calls[0].deadline) - Date.now();
  assert.ok(deadline > 15_000 && deadline <= 20_000, `RunPodSandbox gets twice the deadline, got ${deadline} ms`);
});

void test('skiff runp reads protojson camelCase JSON, generates a missing uid and honours -T', async () => {
  const config = await file('pod.json', JSON.stringify({ metadata: { name: 'web', namespace: 'default' }, logDirectory: '/l', dnsConfig: { servers: ['1.1.1.1'] } }));
  const r = await run('runp', '-T', '1m', config);
  assert.equal(r.code, 0, r.stderr);
  const [request] = requests<v1.RunPodSandboxRequest__Output>('RunPodSandbox');
  assert.match(request.config?.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(request.config?.log_directory, '/l');
  assert.deepEqual(request.config?.dns_config?.servers, ['1.1.1.1']);
  assert.equal(request.runtime_handler, '');
  const deadline = Number(calls[0].deadline) - Date.now();
  assert.ok(deadline > 50_000 && deadline <= 60_000, `-T sets the deadline, got ${deadline} ms`);
});

void test('a bad pod config is a usage error naming the file and the field, and nothing is sent', async () => {
  const cases: [name: string, content: string, message: RegExp][] = [
    ['unknown.yaml', 'metadata: {name: a, namespace: b}\nlinux:\n  cgroup_parnet: /x\n', /unknown\.yaml: linux: unknown field "cgroup_parnet" in LinuxPodSandboxConfig/],
    ['root.json', '{"metadata": {"name": "a", "namespace": "b"}, "bogus": 1}', /root\.json: unknown field "bogus" in PodSandboxConfig/],
    ['kind.json', '{"metadata": {"name": "a", "namespace": "b", "attempt": "many"}}', /kind\.json: metadata\.attempt: expected an integer/],
    ['noname.yaml', 'metadata:\n  namespace: b\n', /noname\.yaml: name or namespace is not in metadata/],
    ['nometa.yaml', 'hostname: x\n', /nometa\.yaml: metadata is not set/],
    ['list.yaml', '- a\n- b\n', /list\.yaml: expected a PodSandboxConfig object/],
    ['broken.yaml', 'metadata: {name: a\n', /broken\.yaml is neither JSON nor YAML/],
  ];
  for (const [name, content, message] of cases) {
    const r = await run('runp', await file(name, content));
    assert.equal(r.code, 2, name);
    assert.match(r.stderr, message, name);
    assert.match(r.stderr, /^skiff: load podSandboxConfig: /, name);
  }
  const missing = await run('runp', join(workdir, 'absent.yaml'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /config at .*absent\.yaml not found/);
  assert.equal((await run('runp')).code, 2);
  assert.equal(calls.length, 0);
});

void test('a failed RunPodSandbox prints the rpc error and exits 1', async () => {
  const r = await run('runp', await file('broken-pod.json', '{"metadata": {"name": "broken", "namespace": "default"}}'));
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'skiff: RunPodSandbox failed: rpc error: code = Internal desc = cni: no IP left\n');
});

void test('skiff stopp stops each pod in turn and stops at the first failure', async () => {
  const r = await run('stopp', POD_A, POD_B);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Stopped sandbox ${POD_A}\nStopped sandbox ${POD_B}\n`);
  assert.deepEqual(requests<v1.StopPodSandboxRequest__Output>('StopPodSandbox').map((q) => q.pod_sandbox_id), [POD_A, POD_B]);
  calls = [];
  const failed = await run('stopp', 'fails', POD_A);
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr, 'skiff: StopPodSandbox failed: rpc error: code = Unknown desc = stop failed\n');
  assert.equal(requests('StopPodSandbox').length, 1);
  assert.equal((await run('stopp')).code, 2);
});

void test('skiff rmp refuses a ready pod without -f, removes the others, and exits 1', async () => {
  const r = await run('rmp', POD_A, POD_B);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `Removed sandbox ${POD_B}\n`);
  assert.equal(r.stderr, `skiff: pod sandbox "${POD_A}" is running, please stop it first\nskiff: unable to remove the pod(s)\n`);
  assert.deepEqual(requests<v1.RemovePodSandboxRequest__Output>('RemovePodSandbox').map((q) => q.pod_sandbox_id), [POD_B]);
});

void test('skiff rmp -f stops a ready pod first; -a removes every pod; then there is nothing to remove', async () => {
  const forced = await run('rmp', '-f', POD_A);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, `Stopped sandbox ${POD_A}\nRemoved sandbox ${POD_A}\n`);
  assert.deepEqual(calls.map((c) => c.rpc), ['PodSandboxStatus', 'StopPodSandbox', 'RemovePodSandbox']);
  pods = podsFixture();
  const all = await run('rmp', '-af');
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, `Stopped sandbox ${POD_A}\nRemoved sandbox ${POD_A}\nRemoved sandbox ${POD_B}\n`);
  const none = await run('rmp', '-a');
  assert.deepEqual(none, { code: 0, stdout: '', stderr: 'No pods to remove\n' });
  const missing = await run('rmp', 'nope');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^skiff: PodSandboxStatus failed: rpc error: code = NotFound desc = pod sandbox "nope" not found\n/);
});

void test('skiff pods prints crictl\'s table, newest first, with truncated ids and (default) for no handler', async () => {
  const r = await run('pods');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    'POD ID              CREATED             STATE               NAME                NAMESPACE           ATTEMPT             RUNTIME\n' +
      'a1b2c3d4e5f6a       5 minutes ago       Ready               web                 default             1                   (default)\n' +
      'bbbbbbbbbbbbb       3 hours ago         NotReady            db                  kube-system         0                   kata\n',
  );
  assert.deepEqual(requests<v1.ListPodSandboxRequest__Output>('ListPodSandbox')[0].filter, { id: '', state: null, label_selector: {} });
  const full = await run('pods', '--no-trunc', '-q');
  assert.equal(full.stdout, `${POD_A}\n${POD_B}\n`);
  const noTrunc = await run('pods', '--no-trunc');
  assert.match(noTrunc.stdout, new RegExp(`^${POD_A}   5 minutes ago`, 'm'));
});

void test('skiff pods sends id, state and labels to the runtime and filters names and namespaces itself', async () => {
  const r = await run('pods', '--id', 'a1b2', '--state', 'Ready', '--label', 'app=web', '--label', 'tier=front', '-q');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(requests<v1.ListPodSandboxRequest__Output>('ListPodSandbox')[0].filter, {
    id: 'a1b2',
    state: { state: 'SANDBOX_READY' },
    label_selector: { app: 'web', tier: 'front' },
  });
  assert.equal((await run('pods', '--name', '^d', '-q')).stdout, `${POD_B}\n`);
  assert.equal((await run('pods', '--namespace', 'default', '-q')).stdout, `${POD_A}\n`);
  assert.equal((await run('pods', '--name', 'nomatch', '-q')).stdout, '');
  assert.equal((await run('pods', '-l', '-q')).stdout, `${POD_A}\n`, '--latest: the newest');
  assert.equal((await run('pods', '-n', '5', '-q')).stdout, `${POD_A}\n${POD_B}\n`);
  assert.equal((await run('pods', '--state', 'notready')).code, 0);
  assert.equal(requests<v1.ListPodSandboxRequest__Output>('ListPodSandbox').at(-1)?.filter?.state?.state, 'SANDBOX_NOTREADY');
});

void test('skiff pods rejects a bad state, label, pattern or format before sending anything', async () => {
  const cases: [string[], RegExp][] = [
    [['pods', '--state', 'running'], /--state should be ready or notready/],
    [['pods', '--label', 'a=b=c'], /incorrectly specified label: a=b=c/],
    [['pods', '--label', 'novalue'], /incorrectly specified label: novalue/],
    [['pods', '--name', '('], /invalid --name pattern/],
    [['pods', '-o', 'wide'], /unsupported output format "wide"/],
    [['pods', '-n', 'x'], /invalid value "x" for flag -last/],
  ];
  for (const [argv, message] of cases) {
    const r = await run(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.stderr, message, argv.join(' '));
  }
  assert.equal(calls.length, 0);
});

void test('skiff pods -o json prints {"items": [...]} in protojson; -o yaml the same in YAML', async () => {
  const r = await run('pods', '-o', 'json', '--latest');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { items: Record<string, unknown>[] };
  assert.deepEqual(doc.items, [
    {
      id: POD_A,
      metadata: { name: 'web', uid: 'u-1', namespace: 'default', attempt: 1 },
      state: 'SANDBOX_READY',
      createdAt: pods[0].created_at,
      labels: { app: 'web' },
      annotations: {},
      runtimeHandler: '',
    },
  ]);
  const yaml = await run('pods', '-o', 'yaml', '-q');
  assert.match(yaml.stdout, /^items:\n- annotations: \{\}\n {2}createdAt: "\d+"\n {2}id: a1b2/);
});

void test('skiff pods -v prints crictl\'s field list', async () => {
  pods[0].created_at = '1700000000123400000';
  const r = await run('pods', '-v', '--id', POD_A, '--name', 'web');
  assert.equal(
    r.stdout,
    `ID: ${POD_A}\nName: web\nUID: u-1\nNamespace: default\nAttempt: 1\nStatus: Ready\n` +
      'Created: 2023-11-14 22:13:20.1234 +0000 UTC\nLabels:\n\tapp -> web\nRuntime: (default)\n\n',
  );
});

void test('skiff inspectp prints {"info": ..., "status": ...} with an RFC3339 createdAt, an array for several', async () => {
  pods[0].created_at = '1700000000123400000';
  const r = await run('inspectp', POD_A);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { status: Record<string, unknown>; info: unknown };
  assert.deepEqual(Object.keys(doc), ['info', 'status']);
  assert.deepEqual(doc.info, { pid: 42, runtimeSpec: { ociVersion: '1.2.0' } });
  assert.equal(doc.status.createdAt, '2023-11-14T22:13:20.1234Z');
  assert.deepEqual(doc.status.network, { ip: '10.88.0.5', additionalIps: [{ ip: 'fd00::5' }] });
  assert.equal(requests<v1.PodSandboxStatusRequest__Output>('PodSandboxStatus')[0].verbose, true);

  const quiet = await run('inspectp', '-q', POD_A, POD_B);
  const docs = JSON.parse(quiet.stdout) as { status: { id: string } }[];
  assert.deepEqual(docs.map((d) => Object.keys(d)), [['status'], ['status']]);
  assert.deepEqual(docs.map((d) => d.status.id), [POD_A, POD_B]);
  assert.equal(requests<v1.PodSandboxStatusRequest__Output>('PodSandboxStatus').at(-1)?.verbose, false);
});

void test('skiff inspectp -o table prints crictl\'s text form; a missing pod fails with NotFound', async () => {
  pods[0].created_at = '1700000000000000000';
  const r = await run('inspectp', '-o', 'table', POD_A);
  assert.equal(
    r.stdout,
    `ID: ${POD_A}\nName: web\nUID: u-1\nNamespace: default\nAttempt: 1\nStatus: SANDBOX_READY\n` +
      'Created: 2023-11-14 22:13:20 +0000 UTC\nIP Addresses: 10.88.0.5\nAdditional IP: fd00::5\nLabels:\n\tapp -> web\n' +
      'Info: map[info:{"pid":42,"runtimeSpec":{"ociVersion":"1.2.0"}}]\n',
  );
  const missing = await run('inspectp', 'nope');
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'skiff: PodSandboxStatus failed: rpc error: code = NotFound desc = pod sandbox "nope" not found\n');
});
