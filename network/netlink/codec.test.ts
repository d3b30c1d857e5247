// Netlink framing against hand-built bytes (linux/netlink.h layouts, little endian).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attr,
  attrNested,
  attrString,
  attrU32,
  attrU8,
  collectReply,
  decodeAck,
  decodeAttrs,
  decodeDone,
  decodeMessages,
  encodeMessage,
  NetlinkDecodeError,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
} from './codec.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** An nlmsghdr: len, type, flags, seq, pid. */
function hdr(len: number, type: number, flags: number, seq: number, pid = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(pid, 12);
  return b;
}

void test('encodeMessage writes nlmsghdr then the payload, padded to 4 bytes', () => {
  const m = encodeMessage({ type: 18, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0x01020304, payload: Buffer.from([1, 2, 3, 4, 5]) });
  assert.deepEqual(m, hex('15000000 1200 0500 04030201 00000000 0102030405 000000'));
});

void test('attributes: header (len, type), NUL-terminated strings, padding not counted in len', () => {
  assert.deepEqual(attrString(3, 'eth0'), hex('0900 0300 65746830 00 000000'));
  assert.deepEqual(attrU32(4, 1500), hex('0800 0400 dc050000'));
  assert.deepEqual(attrU8(4, 1), hex('0500 0400 01 000000'));
  assert.deepEqual(attr(1, Buffer.from([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])), hex('0a00 0100 aabbccddeeff 0000'));
});

void test('nested attributes: IFLA_LINKINFO { IFLA_INFO_KIND "veth", IFLA_INFO_DATA { … } }, flag only on request', () => {
  const info = attrNested(18, [attrString(1, 'veth'), attrNested(2, [attrU8(4, 1)])]);
  assert.deepEqual(info, hex('1c00 1200 0900 0100 76657468 00 000000 0c00 0200 0500 0400 01 000000'));
  const flagged = attrNested(12, [attrU8(4, 1)], true);
  assert.equal(flagged.readUInt16LE(2), 12 | NLA_F_NESTED);
  // Decoding masks the flag off and walks the nesting.
  const a = decodeAttrs(Buffer.concat([info, flagged]));
  assert.equal(a.nested(18)?.string(1), 'veth');
  assert.equal(a.nested(18)?.nested(2)?.u8(4), 1);
  assert.equal(a.nested(12)?.u8(4), 1);
});

void test('decodeAttrs keeps repeated types and rejects a length that overruns', () => {
  const a = decodeAttrs(Buffer.concat([attrU32(6, 1), attrU32(6, 2), attrString(3, 'x')]));
  assert.deepEqual(a.all(6).map((d) => d.readUInt32LE(0)), [1, 2]);
  assert.equal(a.u32(6), 1);
  assert.equal(a.string(3), 'x');
  assert.equal(a.get(99), undefined);
  assert.throws(() => decodeAttrs(hex('0900 0300 6574')), NetlinkDecodeError);
  assert.throws(() => decodeAttrs(hex('0200 0300')), NetlinkDecodeError);
});

void test('decodeMessages splits a datagram holding several messages (a multipart dump)', () => {
  const p1 = Buffer.from([1, 2, 3, 4]);
  const data = Buffer.concat([
    hdr(20, 20, NLM_F_MULTI, 9, 1234),
    p1,
    hdr(21, 20, NLM_F_MULTI, 9, 1234),
    Buffer.from([5, 6, 7, 8, 9, 0, 0, 0]),
    hdr(20, NLMSG_DONE, NLM_F_MULTI, 9, 1234),
    Buffer.alloc(4),
  ]);
  const ms = decodeMessages(data);
  assert.equal(ms.length, 3);
  assert.deepEqual(ms[0], { type: 20, flags: NLM_F_MULTI, seq: 9, pid: 1234, payload: p1 });
  assert.deepEqual(ms[1].payload, Buffer.from([5, 6, 7, 8, 9]));
  const r = collectReply(ms, 9, true);
  assert.equal(r.messages.length, 2);
  assert.equal(r.ack.errno, 0);
  assert.equal(r.interrupted, false);
});

void test('decodeMessages rejects a header whose length is too small or too large', () => {
  assert.throws(() => decodeMessages(hdr(8, 20, 0, 1)), NetlinkDecodeError);
  assert.throws(() => decodeMessages(hdr(64, 20, 0, 1)), NetlinkDecodeError);
});

void test('an ack is NLMSG_ERROR with error 0 and the request header echoed (capped)', () => {
  const req = hdr(32, 16, NLM_F_REQUEST | NLM_F_ACK, 77, 0);
  const ack = Buffer.concat([hdr(36, NLMSG_ERROR, NLM_F_CAPPED, 77, 999), Buffer.alloc(4), req]);
  const [m] = decodeMessages(ack);
  assert.deepEqual(decodeAck(m), { errno: 0, seq: 77 });
});

void test('an error with extended ack: errno, message and offending attribute offset', () => {
  const err = Buffer.alloc(4);
  err.writeInt32LE(-22, 0); // EINVAL
  const tlvs = Buffer.concat([attrString(1, 'Invalid MTU'), attrU32(2, 36)]);
  const body = Buffer.concat([err, hdr(40, 16, NLM_F_REQUEST | NLM_F_ACK, 5), tlvs]);
  const data = Buffer.concat([hdr(16 + body.length, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 5), body]);
  const [m] = decodeMessages(data);
  assert.deepEqual(decodeAck(m), { errno: 22, seq: 5, message: 'Invalid MTU', offset: 36 });
});

void test('an error that is not capped echoes the whole request before its TLVs', () => {
  const err = Buffer.alloc(4);
  err.writeInt32LE(-17, 0); // EEXIST
  const request = Buffer.concat([hdr(24, 16, NLM_F_REQUEST | NLM_F_ACK, 6), Buffer.alloc(8, 0xab)]);
  const body = Buffer.concat([err, request, attrString(1, 'exists')]);
  const [m] = decodeMessages(Buffer.concat([hdr(16 + body.length, NLMSG_ERROR, NLM_F_ACK_TLVS, 6), body]));
  assert.deepEqual(decodeAck(m), { errno: 17, seq: 6, message: 'exists' });
});

void test('NLMSG_DONE carries a dump status', () => {
  const st = Buffer.alloc(4);
  st.writeInt32LE(-16, 0); // EBUSY
  const [m] = decodeMessages(Buffer.concat([hdr(20, NLMSG_DONE, NLM_F_MULTI, 3), st]));
  assert.deepEqual(decodeDone(m), { errno: 16, seq: 3 });
});

void test('collectReply skips late answers to other requests, notes NLM_F_DUMP_INTR, needs the terminal message', () => {
  const stale = Buffer.concat([hdr(20, 16, 0, 41), Buffer.alloc(4)]);
  const staleAck = Buffer.concat([hdr(36, NLMSG_ERROR, NLM_F_CAPPED, 41), Buffer.alloc(4), hdr(16, 18, 5, 41)]);
  const part = Buffer.concat([hdr(20, 16, NLM_F_MULTI | NLM_F_DUMP_INTR, 42), Buffer.alloc(4)]);
  const done = Buffer.concat([hdr(20, NLMSG_DONE, NLM_F_MULTI, 42), Buffer.alloc(4)]);
  const r = collectReply(decodeMessages(Buffer.concat([stale, staleAck, part, done])), 42, true);
  assert.equal(r.messages.length, 1);
  assert.equal(r.messages[0].seq, 42);
  assert.equal(r.interrupted, true);
  assert.throws(() => collectReply(decodeMessages(Buffer.concat([stale, part])), 42, true), /no NLMSG_DONE/);
  // Not a dump: NLMSG_DONE is data, only the ack ends it.
  assert.throws(() => collectReply(decodeMessages(done), 42, false), /no ack/);
});
