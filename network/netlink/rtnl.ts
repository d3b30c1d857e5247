// rtnetlink messages, pure: the fixed headers (ifinfomsg, ifaddrmsg, rtmsg), the requests skiff
// sends (links, veth pairs, bridge ports, addresses, routes) and the parsers of the kernel's
// answers. Constants from linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/veth.h and
// linux/if_bridge.h.
import { attr, attrNested, attrString, attrU32, attrU8, decodeAttrs, NetlinkDecodeError, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, type Attrs } from './codec.js';
import { formatIp, formatMac, type IpFamily } from './ip.js';

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

/** net/if.h */
export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

/** enum IFLA_* (if_link.h) */
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_PROTINFO = 12;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
export const IFLA_LINK_NETNSID = 37;

export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;

export const VETH_INFO_PEER = 1;

/** enum IFLA_BRPORT_* (if_link.h): MODE is the hairpin switch. */
export const IFLA_BRPORT_STATE = 1;
export const IFLA_BRPORT_MODE = 4;

/** RTEXT_FILTER_SKIP_STATS: leave the (large) counters out of link answers. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** enum IFA_* (if_addr.h) */
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;

/** enum RTA_* (rtnetlink.h) */
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;

export const RT_TABLE_MAIN = 254;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RTN_UNICAST = 1;

export function familyOf(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

export function afOf(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

// ---- fixed headers ----------------------------------------------------------------------------

export interface IfInfoMsg {
  family?: number;
  /** ARPHRD_* */
  type?: number;
  index?: number;
  flags?: number;
  change?: number;
}

/** struct ifinfomsg: 16 bytes. */
export function ifinfomsg(h: IfInfoMsg = {}): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(h.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(h.type ?? 0, 2);
  b.writeInt32LE(h.index ?? 0, 4);
  b.writeUInt32LE((h.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((h.change ?? 0) >>> 0, 12);
  return b;
}

/** struct ifaddrmsg: 8 bytes. */
export function ifaddrmsg(h: { family: number; prefixLen?: number; flags?: number; scope?: number; index?: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.prefixLen ?? 0, 1);
  b.writeUInt8(h.flags ?? 0, 2);
  b.writeUInt8(h.scope ?? 0, 3);
  b.writeUInt32LE(h.index ?? 0, 4);
  return b;
}

export interface RtMsg {
  family: number;
  dstLen?: number;
  srcLen?: number;
  tos?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}

/** struct rtmsg: 12 bytes. */
export function rtmsg(h: RtMsg): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.dstLen ?? 0, 1);
  b.writeUInt8(h.srcLen ?? 0, 2);
  b.writeUInt8(h.tos ?? 0, 3);
  b.writeUInt8(h.table ?? 0, 4);
  b.writeUInt8(h.protocol ?? 0, 5);
  b.writeUInt8(h.scope ?? 0, 6);
  b.writeUInt8(h.type ?? 0, 7);
  b.writeUInt32LE(h.flags ?? 0, 8);
  return b;
}

// ---- requests ---------------------------------------------------------------------------------

/** A request's type and payload; the socket adds the header flags it always needs. */
export interface Request {
  type: number;
  /** NLM_F_CREATE, NLM_F_EXCL, NLM_F_DUMP…: NLM_F_REQUEST and NLM_F_ACK are added by the socket. */
  flags: number;
  payload: Buffer;
}

/** Selects one link: by index when given, else by name. */
export type LinkRef = number | string;

function refHeader(ref: LinkRef, h: IfInfoMsg = {}): { header: Buffer; attrs: Buffer[] } {
  if (typeof ref === 'number') return { header: ifinfomsg({ ...h, index: ref }), attrs: [] };
  return { header: ifinfomsg(h), attrs: [attrString(IFLA_IFNAME, ref)] };
}

/** RTM_GETLINK of one link, without statistics. */
export function getLinkRequest(ref: LinkRef): Request {
  const { header, attrs } = refHeader(ref);
  return { type: RTM_GETLINK, flags: 0, payload: Buffer.concat([header, ...attrs, attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]) };
}

/** The link attributes that can be set at creation and changed later. */
export interface LinkAttrs {
  mtu?: number;
  /** 6 bytes. */
  mac?: Buffer;
  /** Bridge (or other master) ifindex; 0 releases the link from its master. */
  master?: number;
  /** New name (for a change) or the name (for a creation). */
  name?: string;
  /** An open fd of a network namespace to create or move the link in. */
  netnsFd?: number;
  /** Set or clear IFF_UP. */
  up?: boolean;
}

function linkAttrs(a: LinkAttrs): Buffer[] {
  const out: Buffer[] = [];
  if (a.name !== undefined) out.push(attrString(IFLA_IFNAME, a.name));
  if (a.mtu !== undefined) out.push(attrU32(IFLA_MTU, a.mtu));
  if (a.mac !== undefined) out.push(attr(IFLA_ADDRESS, a.mac));
  if (a.netnsFd !== undefined) out.push(attrU32(IFLA_NET_NS_FD, a.netnsFd));
  if (a.master !== undefined) out.push(attrU32(IFLA_MASTER, a.master));
  return out;
}

function upFlags(up: boolean | undefined): IfInfoMsg {
  return up === undefined ? {} : { flags: up ? IFF_UP : 0, change: IFF_UP };
}

/** RTM_NEWLINK (no NLM_F_CREATE) on an existing link: change what `a` names, nothing else. */
export function setLinkRequest(ref: LinkRef, a: LinkAttrs): Request {
  // Renaming by name would be ambiguous (IFLA_IFNAME both selects and renames): look up the index.
  if (typeof ref === 'string' && a.name !== undefined && a.name !== ref) {
    throw new Error(`rename of link "${ref}": select it by index`);
  }
  const { header, attrs } = refHeader(ref, upFlags(a.up));
  const rest = linkAttrs(typeof ref === 'string' ? { ...a, name: undefined } : a);
  return { type: RTM_NEWLINK, flags: 0, payload: Buffer.concat([header, ...attrs, ...rest]) };
}

/** RTM_DELLINK of one link. */
export function deleteLinkRequest(ref: LinkRef): Request {
  const { header, attrs } = refHeader(ref);
  return { type: RTM_DELLINK, flags: 0, payload: Buffer.concat([header, ...attrs]) };
}

function linkInfo(kind: string, data?: Buffer[]): Buffer {
  const info = [attrString(IFLA_INFO_KIND, kind)];
  if (data) info.push(attrNested(IFLA_INFO_DATA, data));
  return attrNested(IFLA_LINKINFO, info);
}

/** RTM_NEWLINK, NLM_F_CREATE|NLM_F_EXCL, of a bridge (STP off, as the kernel defaults). */
export function newBridgeRequest(name: string, a: Omit<LinkAttrs, 'name'> = {}): Request {
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    payload: Buffer.concat([ifinfomsg(upFlags(a.up)), ...linkAttrs({ ...a, name }), linkInfo('bridge')]),
  };
}

/**
 * RTM_NEWLINK of a veth pair in one request: the local end (`name`, `a`) and its peer (`peer`),
 * which the kernel creates directly in the namespace of `peer.netnsFd` when given, under its own
 * name there. `up` on either end brings it up at creation (rtnl_configure_link); `a.master`
 * enslaves the local end at creation. If any part fails the kernel removes both ends.
 */
export function newVethRequest(name: string, a: Omit<LinkAttrs, 'name'>, peer: LinkAttrs): Request {
  const peerBody = Buffer.concat([ifinfomsg(upFlags(peer.up)), ...linkAttrs(peer)]);
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    payload: Buffer.concat([ifinfomsg(upFlags(a.up)), ...linkAttrs({ ...a, name }), linkInfo('veth', [attr(VETH_INFO_PEER, peerBody)])]),
  };
}

/**
 * RTM_SETLINK with family AF_BRIDGE on a bridge port: IFLA_PROTINFO (flagged NLA_F_NESTED, or the
 * kernel reads it as the legacy one-byte STP state) with IFLA_BRPORT_MODE, the hairpin switch.
 */
export function setHairpinRequest(index: number, on: boolean): Request {
  return {
    type: RTM_SETLINK,
    flags: 0,
    payload: Buffer.concat([ifinfomsg({ family: AF_BRIDGE, index }), attrNested(IFLA_PROTINFO, [attrU8(IFLA_BRPORT_MODE, on ? 1 : 0)], true)]),
  };
}

/** RTM_GETLINK dump of every link (family AF_UNSPEC), without statistics. */
export function dumpLinksRequest(): Request {
  return { type: RTM_GETLINK, flags: NLM_F_DUMP, payload: Buffer.concat([ifinfomsg(), attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]) };
}

export interface AddressSpec {
  family: IpFamily;
  /** 4 or 16 bytes. */
  bytes: Buffer;
  prefixLen: number;
  index: number;
  /** IPv4 broadcast; omitted for IPv6. */
  broadcast?: Buffer;
  /** IFA_F_NODAD: usable at once (addresses skiff's IPAM handed out need no duplicate detection). */
  noDad?: boolean;
}

/** RTM_NEWADDR (NLM_F_CREATE|NLM_F_EXCL) or RTM_DELADDR of one address. */
export function addressRequest(op: 'add' | 'delete', s: AddressSpec): Request {
  const flags = s.family === 6 && s.noDad ? IFA_F_NODAD : 0;
  const attrs = [attr(IFA_LOCAL, s.bytes), attr(IFA_ADDRESS, s.bytes)];
  if (s.family === 6) attrs.shift(); // IPv6 has only IFA_ADDRESS (iproute2 sends both; either works)
  if (s.broadcast && op === 'add') attrs.push(attr(IFA_BROADCAST, s.broadcast));
  return {
    type: op === 'add' ? RTM_NEWADDR : RTM_DELADDR,
    flags: op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0,
    payload: Buffer.concat([ifaddrmsg({ family: afOf(s.family), prefixLen: s.prefixLen, flags, scope: RT_SCOPE_UNIVERSE, index: s.index }), ...attrs]),
  };
}

/** RTM_GETADDR dump of one family (or both), filtered to `index` by the kernel when it can. */
export function dumpAddressesRequest(family?: IpFamily, index = 0): Request {
  return { type: RTM_GETADDR, flags: NLM_F_DUMP, payload: ifaddrmsg({ family: family === undefined ? AF_UNSPEC : afOf(family), index }) };
}

export interface RouteSpec {
  family: IpFamily;
  /** Destination bytes; omitted with dstLen 0 for a default route. */
  dst?: Buffer;
  dstLen: number;
  gateway?: Buffer;
  oif?: number;
  metric?: number;
}

/** RTM_NEWROUTE (NLM_F_CREATE|NLM_F_EXCL) or RTM_DELROUTE in the main table. */
export function routeRequest(op: 'add' | 'delete', s: RouteSpec): Request {
  const attrs: Buffer[] = [];
  if (s.dst && s.dstLen > 0) attrs.push(attr(RTA_DST, s.dst));
  if (s.gateway) attrs.push(attr(RTA_GATEWAY, s.gateway));
  if (s.oif !== undefined) attrs.push(attrU32(RTA_OIF, s.oif));
  if (s.metric !== undefined) attrs.push(attrU32(RTA_PRIORITY, s.metric));
  const header = rtmsg({
    family: afOf(s.family),
    dstLen: s.dstLen,
    table: RT_TABLE_MAIN,
    protocol: op === 'add' ? RTPROT_BOOT : 0,
    scope: s.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
    type: RTN_UNICAST,
  });
  return { type: op === 'add' ? RTM_NEWROUTE : RTM_DELROUTE, flags: op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0, payload: Buffer.concat([header, ...attrs]) };
}

/** RTM_GETROUTE dump of one family. */
export function dumpRoutesRequest(family: IpFamily): Request {
  return { type: RTM_GETROUTE, flags: NLM_F_DUMP, payload: rtmsg({ family: afOf(family) }) };
}

// ---- answers ----------------------------------------------------------------------------------

export interface Link {
  index: number;
  name: string;
  /** IFF_* flags. */
  flags: number;
  up: boolean;
  mtu: number;
  /** ARPHRD_* (1 = ether, 772 = loopback). */
  linkType: number;
  mac?: string;
  /** ifindex of the bridge (or bond…) this link is enslaved to. */
  master?: number;
  /** IFLA_INFO_KIND: "bridge", "veth"… (undefined for a physical or loopback device). */
  kind?: string;
  /** IFLA_INFO_SLAVE_KIND: "bridge" for a bridge port. */
  slaveKind?: string;
  /** IFLA_BRPORT_MODE of a bridge port, from IFLA_INFO_SLAVE_DATA (or AF_BRIDGE's IFLA_PROTINFO). */
  hairpin?: boolean;
  /** IFLA_LINK: a veth's peer ifindex (in the peer's namespace). */
  peerIndex?: number;
  /** IFLA_LINK_NETNSID: the peer's namespace as seen from here, when it is another one. */
  peerNetnsId?: number;
  /** RFC 2863 IF_OPER_* (6 = up). */
  operState?: number;
}

/** Parses an RTM_NEWLINK message's payload (ifinfomsg + attributes). */
export function parseLink(payload: Buffer): Link {
  if (payload.length < 16) throw new NetlinkDecodeError(`RTM_NEWLINK of ${payload.length} bytes`);
  const a = decodeAttrs(payload, 16);
  const flags = payload.readUInt32LE(8);
  const link: Link = {
    index: payload.readInt32LE(4),
    name: a.string(IFLA_IFNAME) ?? '',
    flags,
    up: (flags & IFF_UP) !== 0,
    mtu: a.u32(IFLA_MTU) ?? 0,
    linkType: payload.readUInt16LE(2),
  };
  const mac = a.get(IFLA_ADDRESS);
  if (mac && mac.length === 6) link.mac = formatMac(mac);
  setIf(link, 'master', a.u32(IFLA_MASTER));
  setIf(link, 'peerIndex', a.s32(IFLA_LINK));
  setIf(link, 'peerNetnsId', a.s32(IFLA_LINK_NETNSID));
  setIf(link, 'operState', a.u8(IFLA_OPERSTATE));
  const info = a.nested(IFLA_LINKINFO);
  if (info) {
    setIf(link, 'kind', info.string(IFLA_INFO_KIND));
    setIf(link, 'slaveKind', info.string(IFLA_INFO_SLAVE_KIND));
    if (link.slaveKind === 'bridge') setIf(link, 'hairpin', hairpinOf(info.nested(IFLA_INFO_SLAVE_DATA)));
  }
  // AF_BRIDGE answers carry the port settings in IFLA_PROTINFO instead.
  if (payload.readUInt8(0) === AF_BRIDGE && link.hairpin === undefined) {
    setIf(link, 'hairpin', hairpinOf(a.nested(IFLA_PROTINFO)));
  }
  return link;
}

function hairpinOf(port: Attrs | undefined): boolean | undefined {
  const mode = port?.u8(IFLA_BRPORT_MODE);
  return mode === undefined ? undefined : mode !== 0;
}

function setIf<T, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

export interface Address {
  family: IpFamily;
  index: number;
  address: string;
  prefixLen: number;
  /** IFA_F_* (from IFA_FLAGS when present: the header holds only the low 8 bits). */
  flags: number;
  scope: number;
  label?: string;
}

/** Parses an RTM_NEWADDR payload; undefined for families other than IPv4/IPv6. */
export function parseAddress(payload: Buffer): Address | undefined {
  if (payload.length < 8) throw new NetlinkDecodeError(`RTM_NEWADDR of ${payload.length} bytes`);
  const family = familyOf(payload.readUInt8(0));
  if (family === undefined) return undefined;
  const a = decodeAttrs(payload, 8);
  // IFA_LOCAL is the address itself on point-to-point links too; IFA_ADDRESS then is the peer.
  const bytes = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
  if (!bytes) return undefined;
  const addr: Address = {
    family,
    index: payload.readUInt32LE(4),
    address: formatIp(bytes),
    prefixLen: payload.readUInt8(1),
    flags: a.u32(IFA_FLAGS) ?? payload.readUInt8(2),
    scope: payload.readUInt8(3),
  };
  setIf(addr, 'label', a.string(IFA_LABEL));
  return addr;
}

export interface Route {
  family: IpFamily;
  /** "0.0.0.0" / "::" for a default route. */
  dst: string;
  dstLen: number;
  gateway?: string;
  oif?: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  metric?: number;
}

/** Parses an RTM_NEWROUTE payload; undefined for families other than IPv4/IPv6. */
export function parseRoute(payload: Buffer): Route | undefined {
  if (payload.length < 12) throw new NetlinkDecodeError(`RTM_NEWROUTE of ${payload.length} bytes`);
  const family = familyOf(payload.readUInt8(0));
  if (family === undefined) return undefined;
  const a = decodeAttrs(payload, 12);
  const dst = a.get(RTA_DST);
  const gw = a.get(RTA_GATEWAY);
  const route: Route = {
    family,
    dst: dst ? formatIp(dst) : family === 4 ? '0.0.0.0' : '::',
    dstLen: payload.readUInt8(1),
    table: a.u32(RTA_TABLE) ?? payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    scope: payload.readUInt8(6),
    type: payload.readUInt8(7),
  };
  if (gw) route.gateway = formatIp(gw);
  setIf(route, 'oif', a.u32(RTA_OIF));
  setIf(route, 'metric', a.u32(RTA_PRIORITY));
  return route;
}
