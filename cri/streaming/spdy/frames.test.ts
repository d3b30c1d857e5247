import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SPDY3_DICTIONARY } from './dictionary.js';
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameReader,
  SpdyProtocolError,
  decodeHeaderBlock,
  encodeFrame,
  encodeHeaderBlock,
  type Frame,
} from './frames.js';
import { transport } from './peer.js';

const LIMITS = { maxControlFrame: 1024, maxDataFrame: 4096 };
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('the SPDY/3 dictionary matches spdy-transport byte for byte', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.deepEqual(SPDY3_DICTIONARY, transport.protocol.spdy.dictionary['3']);
});

// Bytes written out by hand from the draft's frame diagrams (§2.2, §2.6).
const TABLE: { name: string; frame: Frame; bytes: string }[] = [
  {
    name: 'DATA with FIN',
    frame: { type: 'DATA', streamId: 5, flags: FLAG_FIN, data: Buffer.from('hi') },
    bytes: '00000005 01 000002 6869',
  },
  {
    name: 'SYN_STREAM unidirectional, priority 3',
    frame: { type: 'SYN_STREAM', streamId: 1, associatedStreamId: 0, priority: 3, slot: 0, flags: FLAG_UNIDIRECTIONAL, headerBlock: hex('aabb') },
    bytes: '8003 0001 02 00000c 00000001 00000000 60 00 aabb',
  },
  {
    name: 'SYN_REPLY with FIN',
    frame: { type: 'SYN_REPLY', streamId: 3, flags: FLAG_FIN, headerBlock: hex('01') },
    bytes: '8003 0002 01 000005 00000003 01',
  },
  { name: 'RST_STREAM CANCEL', frame: { type: 'RST_STREAM', streamId: 7, status: 5 }, bytes: '8003 0003 00 000008 00000007 00000005' },
  {
    name: 'SETTINGS with two entries',
    frame: { type: 'SETTINGS', flags: 0, entries: [{ id: 4, flags: 0, value: 100 }, { id: 7, flags: 1, value: 65536 }] },
    bytes: '8003 0004 00 000014 00000002 00000004 00000064 01000007 00010000',
  },
  { name: 'PING', frame: { type: 'PING', id: 0xfffffffd }, bytes: '8003 0006 00 000004 fffffffd' },
  { name: 'GOAWAY PROTOCOL_ERROR', frame: { type: 'GOAWAY', lastGoodStreamId: 9, status: 1 }, bytes: '8003 0007 00 000008 00000009 00000001' },
  { name: 'HEADERS', frame: { type: 'HEADERS', streamId: 1, flags: 0, headerBlock: hex('ff') }, bytes: '8003 0008 00 000005 00000001 ff' },
  { name: 'session WINDOW_UPDATE', frame: { type: 'WINDOW_UPDATE', streamId: 0, delta: 0x7fffffff }, bytes: '8003 0009 00 000008 00000000 7fffffff' },
  { name: 'unknown control frame (CREDENTIAL)', frame: { type: 'UNKNOWN', frameType: 10, flags: 0, payload: hex('0102') }, bytes: '8003 000a 00 000002 0102' },
];

for (const { name, frame, bytes } of TABLE) {
  test(`${name} encodes to the draft's bytes and decodes back`, () => {
    assert.deepEqual(encodeFrame(frame), hex(bytes));
    const reader = new FrameReader(LIMITS);
    reader.push(hex(bytes));
    assert.deepEqual(reader.next(), frame);
    assert.equal(reader.next(), null);
  });
}

test('FrameReader reassembles frames fed one byte at a time', () => {
  const all = Buffer.concat(TABLE.map((t) => hex(t.bytes)));
  const reader = new FrameReader(LIMITS);
  const got: Frame[] = [];
  for (const b of all) {
    reader.push(Buffer.from([b]));
    for (let f = reader.next(); f; f = reader.next()) got.push(f);
  }
  assert.deepEqual(got, TABLE.map((t) => t.frame));
  assert.equal(reader.buffered, 0);
});

const MALFORMED: { name: string; bytes: string; message: RegExp }[] = [
  { name: 'a control frame of SPDY version 2', bytes: '8002 0006 00 000004 00000001', message: /version 2/ },
  { name: 'a PING of 5 bytes', bytes: '8003 0006 00 000005 0000000100', message: /PING frame has length 5/ },
  { name: 'an RST_STREAM of 4 bytes', bytes: '8003 0003 00 000004 00000001', message: /RST_STREAM/ },
  { name: 'a SETTINGS whose count does not match', bytes: '8003 0004 00 00000c 00000002 00000004 00000064', message: /cannot hold 2/ },
  { name: 'a SYN_STREAM without its fixed fields', bytes: '8003 0001 00 000004 00000001', message: /SYN_STREAM/ },
  { name: 'a control frame over the limit (refused from its header)', bytes: '8003 0001 00 ffffff', message: /exceeds the limit/ },
  { name: 'a DATA frame over the limit', bytes: '00000001 00 100000', message: /DATA frame of 1048576 bytes/ },
];

for (const { name, bytes, message } of MALFORMED) {
  test(`FrameReader rejects ${name}`, () => {
    const reader = new FrameReader(LIMITS);
    reader.push(hex(bytes));
    assert.throws(() => reader.next(), (e: unknown) => e instanceof SpdyProtocolError && message.test(e.message));
  });
}

test('a header block round-trips, multiple values joined by NUL', () => {
  const block = encodeHeaderBlock([
    ['streamtype', ['stdout']],
    ['x-multi', ['a', 'b']],
  ]);
  assert.deepEqual(block, hex('00000002 0000000a 73747265616d74797065 00000006 7374646f7574 00000007 782d6d756c7469 00000003 610062'));
  assert.deepEqual(
    decodeHeaderBlock(block),
    new Map([
      ['streamtype', ['stdout']],
      ['x-multi', ['a', 'b']],
    ]),
  );
});

const BAD_BLOCKS: { name: string; block: Buffer; message: RegExp }[] = [
  { name: 'an upper-case name', block: encodeHeaderBlockRaw([['Port', '80']]), message: /not lower-case/ },
  { name: 'a duplicate name', block: encodeHeaderBlockRaw([['port', '80'], ['port', '81']]), message: /duplicate/ },
  { name: 'an empty name', block: encodeHeaderBlockRaw([['', 'x']]), message: /empty header name/ },
  { name: 'a count larger than the block can hold', block: hex('7fffffff 00000000'), message: /cannot fit/ },
  { name: 'a truncated value', block: hex('00000001 00000001 61 00000009 62'), message: /truncated/ },
  { name: 'trailing bytes', block: Buffer.concat([encodeHeaderBlockRaw([['a', 'b']]), hex('00')]), message: /after the last pair/ },
];

for (const { name, block, message } of BAD_BLOCKS) {
  test(`decodeHeaderBlock rejects ${name}`, () => {
    assert.throws(() => decodeHeaderBlock(block), (e: unknown) => e instanceof SpdyProtocolError && message.test(e.message));
  });
}

/** A block built without encodeHeaderBlock's lower-casing, to produce what a bad peer would send. */
function encodeHeaderBlockRaw(pairs: [string, string][]): Buffer {
  const parts = [u32(pairs.length)];
  for (const [n, v] of pairs) parts.push(u32(Buffer.byteLength(n)), Buffer.from(n), u32(Buffer.byteLength(v)), Buffer.from(v));
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
