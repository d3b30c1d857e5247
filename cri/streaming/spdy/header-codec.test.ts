import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { FrameReader, SpdyProtocolError, encodeHeaderBlock } from './frames.js';
import { HeaderCodec } from './header-codec.js';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { stFramer, transport } from './peer.js';

function decompress(codec: HeaderCodec, block: Buffer): Promise<Map<string, string[]>> {
  return new Promise((resolve, reject) => codec.decompress(block, (err, h) => (err ? reject(err) : resolve(h!))));
}

function compress(codec: HeaderCodec, headers: [string, string[]][]): Promise<Buffer> {
  return new Promise((resolve, reject) => codec.compress(headers, (err, b) => (err ? reject(err) : resolve(b!))));
}

/** Runs one block through a spdy-transport zlib stream (flush: Z_SYNC_FLUSH on every write). */
function through(stream: zlib.Deflate | zlib.Inflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (c: Buffer): void => void out.push(c);
    stream.on('data', onData);
    stream.once('error', reject);
    stream.write(input, () => {
      // The flush on write completes before the write callback; let queued 'data' events run.
      setImmediate(() => {
        stream.off('data', onData);
        resolve(Buffer.concat(out));
      });
    });
  });
}

test('header blocks compressed by spdy-transport decode, the context carried across blocks', async () => {
  const pair = transport.protocol.spdy.compressionPool.create(true).get(3.1);
  const codec = new HeaderCodec({ maxHeaderBlockSize: 65536 });
  const first = await through(pair.compress, encodeHeaderBlock([['streamtype', ['stdin']], ['port', ['8080']]]));
  const second = await through(pair.compress, encodeHeaderBlock([['streamtype', ['stdin']], ['requestid', ['0']]]));
  // The second block refers back to the first: it cannot be inflated on its own.
  assert.throws(() => zlib.inflateSync(second, { dictionary: SPDY3_DICTIONARY }));
  assert.deepEqual(await decompress(codec, first), new Map([['streamtype', ['stdin']], ['port', ['8080']]]));
  assert.deepEqual(await decompress(codec, second), new Map([['streamtype', ['stdin']], ['requestid', ['0']]]));
  codec.close();
  pair.compress.destroy();
  pair.decompress.destroy();
});

test('header blocks we compress inflate with spdy-transport, block after block', async () => {
  const pair = transport.protocol.spdy.compressionPool.create(true).get(3.1);
  const codec = new HeaderCodec({ maxHeaderBlockSize: 65536 });
  const a = encodeHeaderBlock([['x-stream-protocol-version', ['v4.channel.k8s.io']]]);
  const b = encodeHeaderBlock([['x-stream-protocol-version', ['v4.channel.k8s.io']], ['status', ['200']]]);
  const ca = await compress(codec, [['x-stream-protocol-version', ['v4.channel.k8s.io']]]);
  const cb = await compress(codec, [['x-stream-protocol-version', ['v4.channel.k8s.io']], ['status', ['200']]]);
  assert.ok(cb.length < b.length, 'the second block reuses the first one\'s context');
  assert.deepEqual(await through(pair.decompress, ca), a);
  assert.deepEqual(await through(pair.decompress, cb), b);
  codec.close();
  pair.compress.destroy();
  pair.decompress.destroy();
});

test('a SYN_STREAM framed by spdy-transport decodes with its headers', async () => {
  const { framer, bytes } = stFramer();
  await new Promise<void>((resolve, reject) =>
    framer.requestFrame(
      { id: 3, method: 'POST', path: '/exec', host: 'node', priority: { parent: 0, weight: 16, exclusive: false }, headers: { streamtype: 'stdout' }, fin: false },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
  await new Promise((r) => setImmediate(r));
  const reader = new FrameReader({ maxControlFrame: 65536, maxDataFrame: 65536 });
  reader.push(bytes());
  const frame = reader.next();
  assert.equal(frame?.type, 'SYN_STREAM');
  if (frame?.type !== 'SYN_STREAM') return;
  assert.equal(frame.streamId, 3);
  const codec = new HeaderCodec({ maxHeaderBlockSize: 65536 });
  const headers = await decompress(codec, frame.headerBlock);
  assert.deepEqual(headers.get('streamtype'), ['stdout']);
  assert.deepEqual(headers.get(':method'), ['POST']);
  assert.deepEqual(headers.get(':path'), ['/exec']);
  codec.close();
});

test('a header block inflating past the limit fails, and so does every later block', async () => {
  const codec = new HeaderCodec({ maxHeaderBlockSize: 1024 });
  const sender = new HeaderCodec({ maxHeaderBlockSize: 1 << 20 });
  const bomb = await compress(sender, [['x-big', ['a'.repeat(100_000)]]]);
  assert.ok(bomb.length < 1024, 'small on the wire');
  await assert.rejects(decompress(codec, bomb), (e: unknown) => e instanceof SpdyProtocolError && /exceeds 1024 bytes/.test(e.message));
  const small = await compress(sender, [['a', ['b']]]);
  await assert.rejects(decompress(codec, small), SpdyProtocolError);
  codec.close();
  sender.close();
});

test('a garbage header block is a protocol error, not a crash', async () => {
  const codec = new HeaderCodec({ maxHeaderBlockSize: 1024 });
  await assert.rejects(decompress(codec, Buffer.from('definitely not zlib')), SpdyProtocolError);
  codec.close();
});
