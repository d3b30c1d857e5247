// Table, size, JSON/YAML and error formatting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { failure, formatStatus, goFormatG, humanSize, jsonText, renderTable, RpcFailure, sortKeys, truncateId, yamlText } from './output.js';
import { SkiffError } from '../../common/errors.js';

void test('renderTable pads every column but the last like tabwriter(20, 1, 3)', () => {
  const text = renderTable([
    ['IMAGE', 'TAG', 'IMAGE ID', 'SIZE'],
    ['docker.io/library/busybox-with-a-long-name', '1.36', '3f57d9401f8d4', '4.26MB'],
  ]);
  assert.equal(
    text,
    'IMAGE                                        TAG                 IMAGE ID            SIZE\n' +
      'docker.io/library/busybox-with-a-long-name   1.36                3f57d9401f8d4       4.26MB\n',
  );
});

void test('humanSize matches go-units HumanSizeWithPrecision', () => {
  const cases: [number, number, string][] = [
    [0, 3, '0B'],
    [999, 3, '999B'],
    [1000, 3, '1kB'],
    [1234, 3, '1.23kB'],
    [4_261_000, 3, '4.26MB'],
    [4_265_000, 3, '4.26MB'],
    [77_800_000, 3, '77.8MB'],
    [999_500, 3, '1e+03kB'],
    [1_500_000_000, 3, '1.5GB'],
    [123_456_789, 4, '123.5MB'],
  ];
  for (const [bytes, precision, text] of cases) assert.equal(humanSize(bytes, precision), text, String(bytes));
  assert.equal(goFormatG(0.00001234, 3), '1.23e-05');
});

void test('truncateId drops sha256: and keeps 13 characters', () => {
  assert.equal(truncateId(`sha256:${'0123456789abcdef'.repeat(4)}`), '0123456789abc');
  assert.equal(truncateId('short'), 'short');
});

void test('jsonText indents by two and sortKeys sorts every level', () => {
  assert.equal(jsonText(sortKeys({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })), '{\n  "a": {\n    "c": null,\n    "d": [\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n');
});

void test('yamlText writes block YAML with go-yaml list style and quotes ambiguous strings', () => {
  const text = yamlText({
    images: [{ id: 'sha256:abc', repoTags: ['busybox:1.36'], size: '4261000', pinned: false, spec: null }],
    empty: [],
    obj: {},
    tricky: 'a: b',
    word: 'true',
  });
  assert.equal(
    text,
    [
      'empty: []',
      'images:',
      '- id: sha256:abc',
      '  pinned: false',
      '  repoTags:',
      '  - busybox:1.36',
      '  size: "4261000"',
      '  spec: null',
      'obj: {}',
      'tricky: "a: b"',
      'word: "true"',
      '',
    ].join('\n'),
  );
});

void test('rpc failures read like crictl and exit 1; usage errors exit 2', () => {
  const status = Object.assign(new Error('5 NOT_FOUND: image "x" not found'), {
    code: grpc.status.NOT_FOUND,
    details: 'image "x" not found',
    metadata: new grpc.Metadata(),
  });
  assert.equal(formatStatus(status), 'rpc error: code = NotFound desc = image "x" not found');
  assert.deepEqual(failure(new RpcFailure('PullImage', status)), {
    message: 'skiff: PullImage failed: rpc error: code = NotFound desc = image "x" not found',
    exitCode: 1,
  });
  assert.deepEqual(failure(new SkiffError('SKIFF_INVALID_ARGUMENT', 'bad flag')), { message: 'skiff: bad flag', exitCode: 2 });
  assert.deepEqual(failure(new SkiffError('SKIFF_IMAGE_NOT_FOUND', 'no such image "x" present')), {
    message: 'skiff: no such image "x" present',
    exitCode: 1,
  });
  assert.equal(formatStatus({ ...status, code: 14, details: 'down' }), 'rpc error: code = Unavailable desc = down');
});
