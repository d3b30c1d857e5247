import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as zlib from 'node:zlib';
import { decompressStream, layerCompression, sniffCompression, type Compression } from './decompress.js';
import { FzstdDecompress, createZstdDecompress } from './zstd.js';
import { LAYER_MEDIA_TYPES, MediaType } from '../oci.js';
import { isSkiffError } from '../../common/errors.js';

const ZSTD_CLI = '/usr/bin/zstd';

/** zstd bytes from the CLI, or from zlib when this Node has it; undefined when neither exists. */
function zstdCompress(data: Buffer, level = 3): Buffer | undefined {
  if (existsSync(ZSTD_CLI)) return execFileSync(ZSTD_CLI, [`-${level}`, '-c', '-q'], { input: data, maxBuffer: 1 << 30 });
  const fn = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  return fn?.(data);
}

async function run(t: Transform, input: Buffer, chunk = 7919): Promise<Buffer> {
  const out: Buffer[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) chunks.push(input.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), t, async (src: AsyncIterable<Buffer>) => {
    for await (const b of src) out.push(b);
  });
  return Buffer.concat(out);
}

const payload = Buffer.concat([randomBytes(100_000), Buffer.alloc(300_000, 'a'), randomBytes(5)]);

void test('layerCompression maps every layer media type and refuses others by name', () => {
  const want: Array<[string, Compression]> = [
    [MediaType.OCI_LAYER, 'none'],
    [MediaType.OCI_LAYER_GZIP, 'gzip'],
    [MediaType.OCI_LAYER_ZSTD, 'zstd'],
    [MediaType.OCI_LAYER_NONDIST, 'none'],
    [MediaType.OCI_LAYER_NONDIST_GZIP, 'gzip'],
    [MediaType.OCI_LAYER_NONDIST_ZSTD, 'zstd'],
    [MediaType.DOCKER_LAYER, 'none'],
    [MediaType.DOCKER_LAYER_GZIP, 'gzip'],
    [MediaType.DOCKER_LAYER_FOREIGN, 'none'],
    [MediaType.DOCKER_LAYER_FOREIGN_GZIP, 'gzip'],
  ];
  for (const [type, compression] of want) assert.equal(layerCompression(type), compression, type);
  // The puller admits a layer by LAYER_MEDIA_TYPES: it must be exactly what unpacking accepts.
  assert.deepEqual(new Set(want.map(([type]) => type)), LAYER_MEDIA_TYPES);
  assert.throws(
    () => decompressStream('application/vnd.oci.image.config.v1+json'),
    (err) => isSkiffError(err, 'SKIFF_LAYER_INVALID') && err.message.includes('application/vnd.oci.image.config.v1+json'),
  );
});

void test('sniffCompression knows gzip and zstd magic and waits for 4 bytes', () => {
  assert.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(sniffCompression(Buffer.from('etc/')), 'none');
  assert.equal(sniffCompression(Buffer.from([0x28, 0xb5])), undefined);
});

void test('plain, gzip and zstd layers round trip', async () => {
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER), payload), payload);
  assert.deepEqual(await run(decompressStream(MediaType.DOCKER_LAYER_GZIP), zlib.gzipSync(payload)), payload);
  const z = zstdCompress(payload);
  assert.ok(z, 'zstd test data needs /usr/bin/zstd or zlib zstd');
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER_ZSTD), z), payload);
  // one byte at a time exercises the sniffer holding back the magic
  const small = payload.subarray(0, 2000);
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER_GZIP), zlib.gzipSync(small), 1), small);
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER_ZSTD), zstdCompress(small)!, 1), small);
});

void test('the fzstd fallback decodes the same bytes as the zstd CLI, across frames', async () => {
  const z = zstdCompress(payload);
  assert.ok(z);
  assert.deepEqual(await run(new FzstdDecompress(), z), payload);
  assert.deepEqual(await run(new FzstdDecompress(), z, 1000), payload);
  // pzstd and some builders emit several frames back to back
  assert.deepEqual(await run(new FzstdDecompress(), Buffer.concat([z, z])), Buffer.concat([payload, payload]));
  assert.deepEqual(await run(createZstdDecompress(), z), payload);
});

void test('a gzip layer labelled as a plain tar is still decompressed (sniffed)', async () => {
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER), zlib.gzipSync(payload)), payload);
  const z = zstdCompress(payload);
  assert.ok(z);
  assert.deepEqual(await run(decompressStream(MediaType.DOCKER_LAYER_GZIP), z), payload);
  // and a plain tar labelled gzip passes through untouched
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER_GZIP), payload), payload);
});

void test('truncated and corrupt gzip input errors', async () => {
  const gz = zlib.gzipSync(payload);
  await assert.rejects(run(decompressStream(MediaType.OCI_LAYER_GZIP), gz.subarray(0, gz.length - 100)));
  const bad = Buffer.from(gz);
  bad.fill(0xaa, 20, 60);
  await assert.rejects(run(decompressStream(MediaType.OCI_LAYER_GZIP), bad));
});

void test('truncated and corrupt zstd input errors instead of hanging (fzstd and native)', async () => {
  const z = zstdCompress(payload);
  assert.ok(z);
  const truncated = z.subarray(0, z.length - 50);
  const corrupt = Buffer.from(z);
  corrupt.fill(0xff, 10, 200);
  for (const make of [() => new FzstdDecompress(), () => decompressStream(MediaType.OCI_LAYER_ZSTD)]) {
    await assert.rejects(run(make(), truncated));
    await assert.rejects(run(make(), corrupt));
    await assert.rejects(run(make(), z.subarray(0, 3 + 4)));
  }
});

void test('fzstd output respects backpressure: a zstd bomb in one chunk is not decoded all at once', async () => {
  const raw = Buffer.alloc(64 << 20); // 64 MiB of zeros compresses to a few KiB
  const z = zstdCompress(raw, 19);
  assert.ok(z);
  assert.ok(z.length < 64 * 1024);
  const d = new FzstdDecompress();
  d.end(z); // the whole bomb as one input chunk
  await sleep(50); // nobody reads yet: decoding must have stopped near the high-water mark
  assert.ok(d.readableLength <= 256 * 1024, `buffered ${d.readableLength} bytes`);
  let total = 0;
  for await (const chunk of d) total += (chunk as Buffer).length;
  assert.equal(total, raw.length);
});

void test('an empty plain layer decompresses to nothing', async () => {
  assert.equal((await run(decompressStream(MediaType.OCI_LAYER), Buffer.alloc(0))).length, 0);
  assert.deepEqual(await run(decompressStream(MediaType.OCI_LAYER), Buffer.from('ab')), Buffer.from('ab'));
});
