// rtnetlink requests against hand-built bytes (the layouts of linux/rtnetlink.h and if_link.h, as
// iproute2 sends them), and the parsers against answers captured from the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectReply, decodeMessages, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL } from './codec.js';
import { parseIp } from './ip.js';
import {
  addressRequest,
  deleteLinkRequest,
  dumpAddressesRequest,
  getLinkRequest,
  newBridgeRequest,
  newVethRequest,
  parseAddress,
  parseLink,
  parseRoute,
  routeRequest,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTM_SETLINK,
  setHairpinRequest,
  setLinkRequest,
} from './rtnl.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ip = (s: string): Buffer => parseIp(s)!.bytes;

void test('GETLINK by name: empty ifinfomsg, IFLA_IFNAME, IFLA_EXT_MASK skip-stats', () => {
  const r = getLinkRequest('eth0');
  assert.equal(r.type, RTM_GETLINK);
  assert.equal(r.flags, 0);
  assert.deepEqual(r.payload, hex('00 00 0000 00000000 00000000 00000000  0900 0300 65746830 00 000000  0800 1d00 08000000'));
  assert.deepEqual(getLinkRequest(7).payload.subarray(0, 16), hex('00 00 0000 07000000 00000000 00000000'));
});

void test('veth pair in one NEWLINK: peer ifinfomsg + attributes inside IFLA_LINKINFO/IFLA_INFO_DATA/VETH_INFO_PEER', () => {
  const r = newVethRequest('veth0', { mtu: 1500, master: 5, up: true }, { name: 'eth0', mac: hex('020000000003'), netnsFd: 9 });
  assert.equal(r.type, RTM_NEWLINK);
  assert.equal(r.flags, NLM_F_CREATE | NLM_F_EXCL);
  const expected = hex(`
    00 00 0000 00000000 01000000 01000000
    0a00 0300 7665746830 00 0000
    0800 0400 dc050000
    0800 0a00 05000000
    4800 1200
      0900 0100 76657468 00 000000
      3800 0200
        3400 0100
          00 00 0000 00000000 00000000 00000000
          0900 0300 65746830 00 000000
          0a00 0100 020000000003 0000
          0800 1c00 09000000`);
  assert.deepEqual(r.payload, expected);
});

void test('bridge NEWLINK: name, MTU, MAC, up, IFLA_LINKINFO kind "bridge"', () => {
  const r = newBridgeRequest('br0', { mtu: 9000, mac: hex('02aabbccddee'), up: true });
  assert.deepEqual(
    r.payload,
    hex(`00 00 0000 00000000 01000000 01000000
         0800 0300 62723000
         0800 0400 28230000
         0a00 0100 02aabbccddee 0000
         1000 1200 0b00 0100 627269646765 00 00`),
  );
});

void test('set link: up/down only touch IFF_UP; rename goes by index; delete by name', () => {
  assert.deepEqual(setLinkRequest(3, { up: false }).payload, hex('00 00 0000 03000000 00000000 01000000'));
  assert.deepEqual(setLinkRequest(3, { name: 'eth0' }).payload, hex('00 00 0000 03000000 00000000 00000000 0900 0300 65746830 00 000000'));
  assert.deepEqual(setLinkRequest('lo', { up: true }).payload, hex('00 00 0000 00000000 01000000 01000000 0700 0300 6c6f00 00'));
  assert.throws(() => setLinkRequest('eth1', { name: 'eth0' }), /by index/);
  const d = deleteLinkRequest('skiff0');
  assert.equal(d.type, RTM_DELLINK);
  assert.deepEqual(d.payload, hex('00 00 0000 00000000 00000000 00000000 0b00 0300 736b69666630 00 00'));
});

void test('hairpin: AF_BRIDGE SETLINK with IFLA_PROTINFO (NLA_F_NESTED) { IFLA_BRPORT_MODE u8 }', () => {
  const r = setHairpinRequest(42, true);
  assert.equal(r.type, RTM_SETLINK);
  assert.deepEqual(r.payload, hex('07 00 0000 2a000000 00000000 00000000  0c00 0c80 0500 0400 01 000000'));
  assert.equal(setHairpinRequest(42, false).payload.readUInt8(24), 0);
});

void test('addresses: IPv4 with IFA_LOCAL, IFA_ADDRESS and broadcast; IPv6 with IFA_F_NODAD', () => {
  const v4 = addressRequest('add', { family: 4, bytes: ip('10.233.0.1'), prefixLen: 24, index: 3, broadcast: ip('10.233.0.255') });
  assert.equal(v4.type, RTM_NEWADDR);
  assert.equal(v4.flags, NLM_F_CREATE | NLM_F_EXCL);
  assert.deepEqual(v4.payload, hex('02 18 00 00 03000000  0800 0200 0ae90001  0800 0100 0ae90001  0800 0400 0ae900ff'));
  const v6 = addressRequest('add', { family: 6, bytes: ip('fd33::1'), prefixLen: 64, index: 3, noDad: true });
  assert.deepEqual(v6.payload, hex('0a 40 02 00 03000000  1400 0100 fd330000000000000000000000000001'));
  const dump = dumpAddressesRequest(4, 3);
  assert.equal(dump.type, RTM_GETADDR);
  assert.equal(dump.flags, NLM_F_DUMP);
  assert.deepEqual(dump.payload, hex('02 00 00 00 03000000'));
});

void test('routes: a default route via a gateway out of an interface, in the main table, proto boot', () => {
  const r = routeRequest('add', { family: 4, dstLen: 0, gateway: ip('10.233.0.1'), oif: 3 });
  assert.equal(r.type, RTM_NEWROUTE);
  assert.deepEqual(r.payload, hex('02 00 00 00 fe 03 00 01 00000000  0800 0500 0ae90001  0800 0400 03000000'));
  const v6 = routeRequest('add', { family: 6, dst: ip('fd33:1::'), dstLen: 64, oif: 3 });
  assert.deepEqual(v6.payload, hex('0a 40 00 00 fe 03 fd 01 00000000  1400 0100 fd330001000000000000000000000000  0800 0400 03000000'));
});

// RTM_NEWLINK for a veth enslaved to a bridge with hairpin on, captured from the kernel (6.18):
// v0 (index 4, 02:00:00:00:00:02, peer index 3) in bridge br0 (index 2). Statistics were skipped
// (RTEXT_FILTER_SKIP_STATS); IFLA_AF_SPEC and friends are there, as the kernel sends them.
const GETLINK_BRIDGE_PORT = [
  'c805000010000000070000000000000000000100040000000310000000000000070003007630000008000d00e8030000050010000300000005001100',
  '00000000050043000000000008000400dc050000080032004400000008003300ffff000008001b000000000008001e000100000008003d0001000000',
  '08001f000200000008002800ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff070008003c00',
  'ffff00000800420000000000080020000200000008000a00020000000500210000000000080023000100000008002f00000000000800300001000000',
  '0600440000000000060045000000000005002700000000000a00010002000000000200000a000200ffffffffffff0000cc0017000000000000000000',
  '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  '000000000000000000000000640007000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000c002b0005000200',
  '000000006c0112000900010076657468000000000b000400627269646765000050010500050001000000000006000200200000000800030002000000',
  '050004000100000005000500000000000500060000000000050007000000000005001c00000000000500080001000000050009000100000005001b00',
  '0100000005001e000100000005000a000000000005000c00000000000c000d0080000200000000010c000e00800002000000000106000f0001800000',
  '0600100000000000060011000180000006001200010000000500130000000000050014000000000005001d000000000006001f000000000005002000',
  '000000000500230000000000050024000000000005002100000000000500270000000000050028000000000005002b00000000000c00150000000000',
  '000000000c00160000000000000000000c00170000000000000000000500190001000000080025000002000008002600000000000800290000000000',
  '08002a000000000008000500030000000c0006006e6f717565756500c0011a008c000200880001000100000000000000000000000100000001000000',
  '010000000100000000000000010000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  '00000000000000000000000000000000000000000000000010270000e8030000000000000000000000000000000000000100000030010a0008000100',
  '0000000014000500ffff00002d00120040550000e8030000f40002000000000040000000dc05000001000000010000000100000001000000ffffffff',
  'a00f0000e803000000000000803a0900805101000300000058020000100000000000000001000000010000000100000060ea00000000000000000000',
  '0000000000000000000000000000000001000000000000000000000010270000e8030000010000000000000000000000010000000000000000000000',
  '010000000000000000000000000000000000000080ee3600000000000000000001000000000000000000000000000000000000000000000000040000',
  '00000000ffff0000ffffffff010000000000000000000000000000001400070000000000000000000000000000000000050008000000000024000e00',
  '000000000000000000000000000000000000000000000000000000000000000004003e8004004180',
].join('');

void test('parseLink on a captured bridge port: name, flags, MTU, MAC, master, veth peer, hairpin', () => {
  const [m] = decodeMessages(hex(GETLINK_BRIDGE_PORT));
  assert.equal(m.type, RTM_NEWLINK);
  assert.deepEqual(parseLink(m.payload), {
    index: 4,
    name: 'v0',
    flags: 0x1003,
    up: true,
    mtu: 1500,
    linkType: 1,
    mac: '02:00:00:00:00:02',
    master: 2,
    peerIndex: 3,
    operState: 3,
    kind: 'veth',
    slaveKind: 'bridge',
    hairpin: true,
  });
});

// RTM_GETADDR dump (IPv4) from the same namespace: lo's 127.0.0.1/8 and br0's 10.233.0.1/24, then
// the NLMSG_DONE that ends it.
const ADDR_DUMP = [
  '4c000000140002000800000000000000020880fe01000000080001007f000001080002007f000001070003006c6f0000080008008000000014000600ffffffffffffffff',
  'f9e61100f9e61100',
  '540000001400020008000000000000000218800002000000080001000ae90001080002000ae90001080004000ae900ff0800030062723000080008008000000014000600',
  'fffffffffffffffffee61100fee61100',
  '14000000030002000800000000000000 00000000',
].join('');

void test('parseAddress over a captured multipart dump', () => {
  const reply = collectReply(decodeMessages(hex(ADDR_DUMP)), 8, true);
  assert.equal(reply.ack.errno, 0);
  assert.deepEqual(
    reply.messages.map((m) => parseAddress(m.payload)),
    [
      { family: 4, index: 1, address: '127.0.0.1', prefixLen: 8, flags: 0x80, scope: 254, label: 'lo' },
      { family: 4, index: 2, address: '10.233.0.1', prefixLen: 24, flags: 0x80, scope: 0, label: 'br0' },
    ],
  );
});

void test('parseRoute on captured routes: br0\'s connected /24 in main, a local route in table 255', () => {
  const main = parseRoute(hex('02180000fe02fd011000000008000f00fe000000080001000ae90000080007000ae900010800040002000000'));
  assert.deepEqual(main, { family: 4, dst: '10.233.0.0', dstLen: 24, table: 254, protocol: 2, scope: 253, type: 1, oif: 2 });
  const local = parseRoute(hex('02200000ff02fe020000000008000f00ff000000080001000ae90001080007000ae900010800040002000000'));
  assert.equal(local?.table, 255);
  assert.equal(local?.type, 2); // RTN_LOCAL
  const dflt = parseRoute(hex('02 00 00 00 fe 03 00 01 00000000  0800 0500 0ae90001  0800 0400 03000000'));
  assert.deepEqual(dflt, { family: 4, dst: '0.0.0.0', dstLen: 0, gateway: '10.233.0.1', table: 254, protocol: 3, scope: 0, type: 1, oif: 3 });
});
