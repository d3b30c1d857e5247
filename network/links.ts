// Links, addresses and routes over rtnetlink, in whichever network namespace the given socket lives
// in. Each operation exists twice: as a request item (`linkOps.*`, for RouteSocket.batch, which
// sends several in one trip to the netlink worker) and as an async call that sends just that one.
// Inputs are checked here (SKIFF_INVALID_ARGUMENT); the kernel's refusals come back as
// SKIFF_NETWORK_FAILED with its errno (errnoOf) and extended-ack message.
import { SkiffError } from '../common/errors.js';
import { errnoOf, type RouteSocket } from './netlink/netns.js';
import { broadcast4, parseCidr, parseIp, parseMac, type IpFamily } from './netlink/ip.js';
import {
  addressRequest,
  deleteLinkRequest,
  dumpAddressesRequest,
  dumpLinksRequest,
  dumpRoutesRequest,
  getLinkRequest,
  newBridgeRequest,
  newVethRequest,
  parseAddress,
  parseLink,
  parseRoute,
  routeRequest,
  RT_TABLE_MAIN,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  setHairpinRequest,
  setLinkRequest,
  type Address,
  type Link,
  type LinkAttrs,
  type LinkRef,
  type Request,
  type Route,
} from './netlink/rtnl.js';

export type { Address, Link, LinkRef, Route };

/** One request and what it does, for messages: an element of RouteSocket.batch. */
export interface LinkOp {
  req: Request;
  what: string;
}

/** What a link can be given at creation or changed to. */
export interface LinkSettings {
  mtu?: number;
  /** "aa:bb:cc:dd:ee:ff" */
  mac?: string;
  /** ifindex of the bridge to enslave to; 0 releases. */
  master?: number;
  up?: boolean;
}

export interface VethSpec extends LinkSettings {
  name: string;
  peer: LinkSettings & {
    name: string;
    /** An open fd of the network namespace to create the peer in (RouteSocket.nsFd). */
    netnsFd?: number;
  };
}

function invalid(message: string): never {
  throw new SkiffError('SKIFF_INVALID_ARGUMENT', message);
}

/** The kernel's dev_valid_name: 1-15 bytes, not "." or "..", no "/", ":" or white space. */
export function checkIfName(name: string, what = 'interface name'): string {
  if (!/^[^/:\s]{1,15}$/.test(name) || name === '.' || name === '..' || Buffer.byteLength(name) > 15) {
    invalid(`${what} "${name}" is not valid (1-15 characters, no "/", ":" or spaces)`);
  }
  return name;
}

function checkRef(ref: LinkRef): LinkRef {
  if (typeof ref === 'string') return checkIfName(ref);
  if (!Number.isInteger(ref) || ref <= 0 || ref > 0x7fffffff) invalid(`interface index ${ref} is not valid`);
  return ref;
}

function show(ref: LinkRef): string {
  return typeof ref === 'number' ? `link #${ref}` : `link "${ref}"`;
}

function linkAttrs(s: LinkSettings, what: string): LinkAttrs {
  const a: LinkAttrs = {};
  if (s.mtu !== undefined) {
    if (!Number.isInteger(s.mtu) || s.mtu < 68 || s.mtu > 65535) invalid(`${what}: MTU ${s.mtu} is not between 68 and 65535`);
    a.mtu = s.mtu;
  }
  if (s.mac !== undefined) {
    const mac = parseMac(s.mac);
    if (!mac || (mac[0] & 1) !== 0 || mac.every((b) => b === 0)) invalid(`${what}: "${s.mac}" is not a unicast MAC address`);
    a.mac = mac;
  }
  if (s.master !== undefined) {
    if (!Number.isInteger(s.master) || s.master < 0) invalid(`${what}: master index ${s.master} is not valid`);
    a.master = s.master;
  }
  if (s.up !== undefined) a.up = s.up;
  return a;
}

function single(messages: { type: number; payload: Buffer }[], type: number, what: string): Buffer {
  const m = messages.find((x) => x.type === type);
  if (!m) throw new SkiffError('SKIFF_NETWORK_FAILED', `${what}: the kernel sent no answer`);
  return m.payload;
}

export interface IpPrefix {
  address: string;
  prefixLen: number;
}

function parsePrefix(p: IpPrefix | string, what: string): { family: IpFamily; bytes: Buffer; prefixLen: number; text: string } {
  const text = typeof p === 'string' ? p : `${p.address}/${p.prefixLen}`;
  const c = parseCidr(text);
  if (!c) invalid(`${what}: "${text}" is not an address/prefix`);
  return { family: c.family, bytes: c.bytes, prefixLen: c.prefixLen, text: `${c.address}/${c.prefixLen}` };
}

/** Request items, for RouteSocket.batch. Each checks its input when built. */
export const linkOps = {
  getLink(ref: LinkRef): LinkOp {
    return { req: getLinkRequest(checkRef(ref)), what: `get ${show(ref)}` };
  },

  addBridge(name: string, s: LinkSettings = {}): LinkOp {
    const what = `create bridge "${checkIfName(name, 'bridge name')}"`;
    return { req: newBridgeRequest(name, linkAttrs(s, what)), what };
  },

  addVeth(v: VethSpec): LinkOp {
    const what = `create veth "${checkIfName(v.name)}" (peer "${checkIfName(v.peer.name)}")`;
    const peer: LinkAttrs = { ...linkAttrs(v.peer, what), name: v.peer.name };
    if (v.peer.netnsFd !== undefined) peer.netnsFd = v.peer.netnsFd;
    return { req: newVethRequest(v.name, linkAttrs(v, what), peer), what };
  },

  setLink(ref: LinkRef, s: LinkSettings & { name?: string }): LinkOp {
    const parts = Object.entries(s).map(([k, v]) => `${k} ${String(v)}`);
    const what = `set ${show(checkRef(ref))} ${parts.join(' ')}`;
    const a = linkAttrs(s, what);
    if (s.name !== undefined) {
      if (typeof ref !== 'number') invalid(`${what}: rename a link by its index`);
      a.name = checkIfName(s.name);
    }
    return { req: setLinkRequest(ref, a), what };
  },

  deleteLink(ref: LinkRef): LinkOp {
    return { req: deleteLinkRequest(checkRef(ref)), what: `delete ${show(ref)}` };
  },

  setHairpin(index: number, on: boolean): LinkOp {
    return { req: setHairpinRequest(checkRef(index) as number, on), what: `set hairpin ${on ? 'on' : 'off'} on ${show(index)}` };
  },

  addAddress(index: number, p: IpPrefix | string, opts: { noDad?: boolean } = {}): LinkOp {
    const what = `add address to ${show(checkRef(index))}`;
    const c = parsePrefix(p, what);
    const broadcast = c.family === 4 && c.prefixLen < 31 ? broadcast4(c.bytes, c.prefixLen) : undefined;
    return {
      req: addressRequest('add', { family: c.family, bytes: c.bytes, prefixLen: c.prefixLen, index, broadcast, noDad: opts.noDad }),
      what: `add address ${c.text} to ${show(index)}`,
    };
  },

  deleteAddress(index: number, p: IpPrefix | string): LinkOp {
    const c = parsePrefix(p, `delete address from ${show(checkRef(index))}`);
    return {
      req: addressRequest('delete', { family: c.family, bytes: c.bytes, prefixLen: c.prefixLen, index }),
      what: `delete address ${c.text} from ${show(index)}`,
    };
  },

  /** A route in the main table: `dst` is "default" or a CIDR; via `gateway` and/or out of `oif`. */
  addRoute(r: { dst: string; gateway?: string; oif?: number; metric?: number }): LinkOp {
    const what = `add route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` dev #${r.oif}` : ''}`;
    const gw = r.gateway === undefined ? undefined : parseIp(r.gateway);
    if (r.gateway !== undefined && !gw) invalid(`${what}: "${r.gateway}" is not an IP address`);
    let family = gw?.family;
    let dst: Buffer | undefined;
    let dstLen = 0;
    if (r.dst !== 'default') {
      const c = parsePrefix(r.dst, what);
      [family, dst, dstLen] = [c.family, c.bytes, c.prefixLen];
    }
    if (family === undefined) invalid(`${what}: a default route needs a gateway`);
    if (gw && gw.family !== family) invalid(`${what}: the gateway's family differs from the destination's`);
    if (!gw && r.oif === undefined) invalid(`${what}: needs a gateway or an interface`);
    if (r.oif !== undefined) checkRef(r.oif);
    return { req: routeRequest('add', { family, dst, dstLen, gateway: gw?.bytes, oif: r.oif, metric: r.metric }), what };
  },
};

async function send(sock: RouteSocket, op: LinkOp): Promise<void> {
  await sock.request(op.req, op.what);
}

/** One link, or undefined when there is none by that name or index. */
export async function getLink(sock: RouteSocket, ref: LinkRef): Promise<Link | undefined> {
  const op = linkOps.getLink(ref);
  try {
    return parseLink(single(await sock.request(op.req, op.what), RTM_NEWLINK, op.what));
  } catch (err) {
    if (errnoOf(err) === 'ENODEV') return undefined;
    throw err;
  }
}

export async function listLinks(sock: RouteSocket): Promise<Link[]> {
  const messages = await sock.dump(dumpLinksRequest(), 'list links');
  return messages.filter((m) => m.type === RTM_NEWLINK).map((m) => parseLink(m.payload));
}

export async function addBridge(sock: RouteSocket, name: string, s: LinkSettings = {}): Promise<void> {
  await send(sock, linkOps.addBridge(name, s));
}

/** Creates a veth pair in one request; the peer directly in `peer.netnsFd`'s namespace if given. */
export async function addVethPair(sock: RouteSocket, v: VethSpec): Promise<void> {
  await send(sock, linkOps.addVeth(v));
}

export async function setLink(sock: RouteSocket, ref: LinkRef, s: LinkSettings): Promise<void> {
  await send(sock, linkOps.setLink(ref, s));
}

export async function setLinkUp(sock: RouteSocket, ref: LinkRef, up = true): Promise<void> {
  await send(sock, linkOps.setLink(ref, { up }));
}

export async function renameLink(sock: RouteSocket, index: number, name: string): Promise<void> {
  await send(sock, linkOps.setLink(index, { name }));
}

/** Deletes a link (a veth takes its peer along); false when there was none. */
export async function deleteLink(sock: RouteSocket, ref: LinkRef): Promise<boolean> {
  try {
    await send(sock, linkOps.deleteLink(ref));
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENODEV') return false;
    throw err;
  }
}

/** Hairpin mode of a bridge port: frames may leave through the port they came in by. */
export async function setHairpin(sock: RouteSocket, index: number, on: boolean): Promise<void> {
  await send(sock, linkOps.setHairpin(index, on));
}

export async function listAddresses(sock: RouteSocket, filter: { family?: IpFamily; index?: number } = {}): Promise<Address[]> {
  const messages = await sock.dump(dumpAddressesRequest(filter.family, filter.index ?? 0), 'list addresses');
  return messages
    .filter((m) => m.type === RTM_NEWADDR)
    .map((m) => parseAddress(m.payload))
    .filter((a): a is Address => a !== undefined && (filter.index === undefined || a.index === filter.index));
}

/** Adds an address; `noDad` skips IPv6 duplicate detection so that it is usable at once. */
export async function addAddress(sock: RouteSocket, index: number, p: IpPrefix | string, opts: { noDad?: boolean } = {}): Promise<void> {
  await send(sock, linkOps.addAddress(index, p, opts));
}

export async function deleteAddress(sock: RouteSocket, index: number, p: IpPrefix | string): Promise<void> {
  await send(sock, linkOps.deleteAddress(index, p));
}

/** The routes of the main table. */
export async function listRoutes(sock: RouteSocket, family: IpFamily): Promise<Route[]> {
  const messages = await sock.dump(dumpRoutesRequest(family), 'list routes');
  return messages
    .filter((m) => m.type === RTM_NEWROUTE)
    .map((m) => parseRoute(m.payload))
    .filter((r): r is Route => r !== undefined && r.table === RT_TABLE_MAIN);
}

export async function addRoute(sock: RouteSocket, r: { dst: string; gateway?: string; oif?: number; metric?: number }): Promise<void> {
  await send(sock, linkOps.addRoute(r));
}

/** The default route via `gateway` (out of `oif` when given). */
export async function addDefaultRoute(sock: RouteSocket, gateway: string, oif?: number): Promise<void> {
  await send(sock, linkOps.addRoute({ dst: 'default', gateway, oif }));
}
