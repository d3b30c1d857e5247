// The built-in bridge network's link work, what the pod code calls: make sure the host bridge
// exists with its gateway addresses and forwarding on; wire a pod's network namespace to it with a
// veth pair (addresses, default routes, hairpin); unwire it. All in-process over rtnetlink — no
// `ip` or CNI plugin exec — so that an attach costs a few milliseconds.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, SkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { errnoOf, failedBatchIndex, hostRouteSocket, openRouteSocket } from './netlink/netns.js';
import { parseCidr, parseIp, randomMac, type IpFamily } from './netlink/ip.js';
import { checkIfName, getLink, linkOps, listAddresses, type Link } from './links.js';
import { RTM_NEWLINK, parseLink } from './netlink/rtnl.js';

const log = logger('bridge');

export interface BridgeSpec {
  /** The bridge's interface name. */
  name: string;
  /** Its MTU; left as it is when omitted. */
  mtu?: number;
  /** Its addresses, which are the pods' gateways: "10.88.0.1/16", "fd00:88::1/64". */
  gateways: string[];
}

export interface BridgeState {
  index: number;
  /** True when this call created it. */
  created: boolean;
}

export interface BridgeEnv {
  /** Where the sysctls are (tests point it at a copy): default /proc/sys. */
  procSys?: string;
}

export interface PodAddress {
  address: string;
  prefixLen: number;
  /** The default route of this family goes via this gateway (the first one given per family). */
  gateway?: string;
}

export interface AttachSpec {
  bridge: string;
  /** The pod's pinned network namespace. */
  netnsPath: string;
  /** The host end of the veth, e.g. "skiff" + 8 hex of the sandbox id. */
  hostIfName: string;
  /** The pod end's name inside the pod; default "eth0". */
  podIfName?: string;
  mtu?: number;
  /** The pod end's MAC; random (locally administered) when omitted. */
  mac?: string;
  addresses: PodAddress[];
}

export interface Attachment {
  hostIfName: string;
  hostIfIndex: number;
  podMac: string;
}

function invalid(message: string): never {
  throw new SkiffError('SKIFF_INVALID_ARGUMENT', message);
}

function failed(message: string, cause?: unknown): SkiffError {
  return new SkiffError('SKIFF_NETWORK_FAILED', message, cause === undefined ? undefined : { cause });
}

function checkMtu(mtu: number | undefined, what: string): void {
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) invalid(`${what}: MTU ${mtu} is not between 68 and 65535`);
}

/** Refuses a link of that name that is not a bridge (someone else's device). */
function requireBridge(link: Link, name: string): void {
  if (link.kind !== 'bridge') throw failed(`link "${name}" exists and is ${link.kind ? `a ${link.kind}` : 'not a bridge'}, not the pods' bridge`);
}

const bridgeLocks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same bridge has finished (in this process). */
async function serialized<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const prev = bridgeLocks.get(name) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  bridgeLocks.set(name, tail);
  try {
    return await next;
  } finally {
    if (bridgeLocks.get(name) === tail) bridgeLocks.delete(name);
  }
}

/**
 * Makes sure bridge `name` exists, is up, has the MTU and every gateway address (adding what is
 * missing, never removing), and that the kernel forwards IPv4 (and IPv6 when a gateway is IPv6).
 * Idempotent: a bridge that is already right costs two netlink requests and two sysctl reads.
 */
export async function ensureBridge(spec: BridgeSpec, env: BridgeEnv = {}): Promise<BridgeState> {
  const name = checkIfName(spec.name, 'bridge name');
  checkMtu(spec.mtu, `bridge "${name}"`);
  const gateways = spec.gateways.map((g) => parseCidr(g) ?? invalid(`bridge "${name}": gateway "${g}" is not an address/prefix`));
  const state = await serialized(name, async () => {
    const sock = await hostRouteSocket();
    let link = await getLink(sock, name);
    let created = false;
    if (!link) {
      // An explicit MAC keeps the bridge's address stable (the kernel otherwise takes the lowest of
      // its ports', and every pod's ARP entry for the gateway goes stale when that changes).
      const op = linkOps.addBridge(name, { mtu: spec.mtu, mac: randomMac(), up: true });
      try {
        await sock.request(op.req, op.what);
        created = true;
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err; // another process made it meanwhile
      }
      link = await getLink(sock, name);
      if (!link) throw failed(`bridge "${name}" vanished right after its creation`);
    }
    requireBridge(link, name);
    const ops = [];
    if (spec.mtu !== undefined && link.mtu !== spec.mtu) ops.push(linkOps.setLink(link.index, { mtu: spec.mtu }));
    const have = await listAddresses(sock, { index: link.index });
    for (const g of gateways) {
      const same = have.find((a) => a.family === g.family && a.address === g.address);
      if (same && same.prefixLen !== g.prefixLen) {
        throw failed(`bridge "${name}" has ${same.address}/${same.prefixLen}, not ${g.address}/${g.prefixLen}: remove it or fix the configuration`);
      }
      if (!same) ops.push(linkOps.addAddress(link.index, g, { noDad: true }));
    }
    if (!link.up) ops.push(linkOps.setLink(link.index, { up: true }));
    if (ops.length > 0) await sock.batch(ops);
    if (created) log.info({ bridge: name, index: link.index }, 'bridge created');
    return { index: link.index, created };
  });
  await enableForwarding(env.procSys ?? '/proc/sys', gateways.some((g) => g.family === 6));
  return state;
}

/** Turns on IPv4 (and IPv6) forwarding, writing only a sysctl that is not already 1. */
async function enableForwarding(procSys: string, ipv6: boolean): Promise<void> {
  const knobs = [{ family: 'IPv4', path: join(procSys, 'net/ipv4/ip_forward') }];
  if (ipv6) knobs.push({ family: 'IPv6', path: join(procSys, 'net/ipv6/conf/all/forwarding') });
  for (const k of knobs) {
    try {
      if ((await readFile(k.path, 'utf8')).trim() === '1') continue;
      await writeFile(k.path, '1\n');
      log.info({ sysctl: k.path }, `${k.family} forwarding enabled`);
    } catch (err) {
      throw failed(`enable ${k.family} forwarding (${k.path}): ${errorMessage(err)}`, err);
    }
  }
}

interface CheckedAttach {
  bridge: string;
  netnsPath: string;
  hostIfName: string;
  podIfName: string;
  mtu?: number;
  mac: string;
  addresses: { family: IpFamily; text: string }[];
  gateways: Map<IpFamily, string>;
}

function checkAttach(spec: AttachSpec): CheckedAttach {
  const what = `attach ${spec.netnsPath}`;
  const mtu = spec.mtu;
  checkMtu(mtu, what);
  const addresses: CheckedAttach['addresses'] = [];
  const gateways = new Map<IpFamily, string>();
  for (const a of spec.addresses) {
    const c = parseCidr(`${a.address}/${a.prefixLen}`);
    if (!c) invalid(`${what}: "${a.address}/${a.prefixLen}" is not an address/prefix`);
    addresses.push({ family: c.family, text: `${c.address}/${c.prefixLen}` });
    if (a.gateway === undefined) continue;
    const gw = parseIp(a.gateway);
    if (!gw || gw.family !== c.family) invalid(`${what}: gateway "${a.gateway}" is not an IPv${c.family} address`);
    if (!gateways.has(c.family)) gateways.set(c.family, a.gateway);
  }
  return {
    bridge: checkIfName(spec.bridge, 'bridge name'),
    netnsPath: spec.netnsPath,
    hostIfName: checkIfName(spec.hostIfName, 'host interface name'),
    podIfName: checkIfName(spec.podIfName ?? 'eth0', 'pod interface name'),
    mtu,
    mac: spec.mac ?? randomMac(),
    addresses,
    gateways,
  };
}

/**
 * Wires a pod's network namespace to the bridge: a veth pair whose pod end is born inside the
 * pod's namespace under its final name (no rename, no move), MTU set, host end enslaved to the
 * bridge with hairpin on, both ends up, the pod's addresses and default routes added, lo up. On
 * any failure everything made is removed (deleting the host end takes the pod end along) and the
 * error is thrown.
 */
export async function attachPod(spec: AttachSpec): Promise<Attachment> {
  const s = checkAttach(spec);
  const [hostR, podR] = await Promise.allSettled([hostRouteSocket(), openRouteSocket(s.netnsPath)]);
  if (hostR.status === 'rejected' || podR.status === 'rejected') {
    if (podR.status === 'fulfilled') podR.value.close();
    throw hostR.status === 'rejected' ? hostR.reason : (podR as PromiseRejectedResult).reason;
  }
  const [host, pod] = [hostR.value, podR.value];
  let created = false;
  try {
    const bridge = await getLink(host, s.bridge);
    if (!bridge) throw failed(`bridge "${s.bridge}" does not exist (ensureBridge makes it)`);
    requireBridge(bridge, s.bridge);

    let hostLink: Link;
    try {
      const [, got] = await host.batch([
        linkOps.addVeth({
          name: s.hostIfName,
          mtu: s.mtu,
          master: bridge.index,
          up: true,
          // Not up yet: the kernel configures the peer before pairing it, and a veth without its
          // peer refuses to open (ENOTCONN).
          peer: { name: s.podIfName, mtu: s.mtu, mac: s.mac, netnsFd: pod.nsFd },
        }),
        linkOps.getLink(s.hostIfName),
      ]);
      created = true;
      const answer = got.find((m) => m.type === RTM_NEWLINK);
      if (!answer) throw failed(`veth "${s.hostIfName}": the kernel did not describe it`);
      hostLink = parseLink(answer.payload);
    } catch (err) {
      if (failedBatchIndex(err) === 1) created = true; // the veth was made, only reading it back failed
      throw err;
    }
    if (hostLink.peerIndex === undefined) throw failed(`veth "${s.hostIfName}": the kernel did not report its peer`);

    // The host-side hairpin and the pod side go out together: the worker runs them back to back.
    const podOps = [linkOps.setLink('lo', { up: true }), linkOps.setLink(hostLink.peerIndex, { up: true })];
    for (const a of s.addresses) podOps.push(linkOps.addAddress(hostLink.peerIndex, a.text, { noDad: true }));
    for (const gw of s.gateways.values()) podOps.push(linkOps.addRoute({ dst: 'default', gateway: gw, oif: hostLink.peerIndex }));
    await settleAll([host.request(linkOps.setHairpin(hostLink.index, true).req, `set hairpin on "${s.hostIfName}"`), pod.batch(podOps)]);
    return { hostIfName: s.hostIfName, hostIfIndex: hostLink.index, podMac: s.mac };
  } catch (err) {
    if (created) await rollback(s.hostIfName, err);
    throw err;
  } finally {
    pod.close();
  }
}

/** Awaits every promise (so nothing is left running), then throws the first failure. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) throw bad.reason;
}

async function rollback(hostIfName: string, cause: unknown): Promise<void> {
  try {
    const host = await hostRouteSocket('teardown');
    await host.request(linkOps.deleteLink(hostIfName).req, `delete veth "${hostIfName}"`);
  } catch (err) {
    if (errnoOf(err) !== 'ENODEV') log.error({ veth: hostIfName, err: errorMessage(err), cause: errorMessage(cause) }, 'rollback of a pod attach failed');
  }
}

/**
 * Removes a pod's veth pair by its host end (the pod end goes with it). Idempotent: no such link
 * means done. Refuses to delete a link that is not a veth.
 */
export async function detachPod(spec: { hostIfName: string }): Promise<void> {
  const name = checkIfName(spec.hostIfName, 'host interface name');
  const host = await hostRouteSocket('teardown');
  const link = await getLink(host, name);
  if (!link) return;
  if (link.kind !== 'veth') throw failed(`link "${name}" is ${link.kind ? `a ${link.kind}` : 'not a veth'}: not a pod's, not deleting it`);
  try {
    await host.request(linkOps.deleteLink(link.index).req, `delete veth "${name}"`);
  } catch (err) {
    if (errnoOf(err) !== 'ENODEV') throw err;
  }
}
