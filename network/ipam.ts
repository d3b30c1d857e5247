// IPAM of the built-in pod network: one address per configured family (IPv4 and/or IPv6) per
// sandbox, kept on disk the way the CNI host-local plugin keeps them — one file per allocated
// address, named by the address and holding its owner, plus a last-reserved cursor per range so
// that a freed address is not handed out again at once (a late packet for the old pod must not
// reach a new one).
//
// Assumptions: one Ipam per directory per process (skiffd runs once: SKIFF_ALREADY_RUNNING).
// Within the process every operation is serialized; the state is read from disk on first use,
// so a restarted daemon sees what it had. An address file is created exclusively (link(2) of a
// fsynced temp file), so even a stale view could never hand one address out twice.
import { link, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, isAtomicTemp, writeFileAtomic } from '../common/atomic.js';
import { SkiffError, errnoCode, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { type Cidr, type IpFamily, familyBits, formatCidr, formatIp, lastAddress, parseCidr, parseIp, cidrContains } from './cidr.js';

const log = logger('ipam');

/** One range of the config, as the operator writes it. */
export interface IpamRange {
  /** CIDR of the pod subnet, e.g. 10.88.0.0/16 or fd00:88::/64. */
  subnet: string;
  /** Default: the subnet's first host address. Never handed to a pod. */
  gateway?: string;
  /** First and last address handed out; default: the whole subnet less network (and IPv4 broadcast). */
  rangeStart?: string;
  rangeEnd?: string;
}

export interface IpamOptions {
  /** Where the address files live, e.g. /var/lib/skiff/network/ipam. */
  dir: string;
  /** At most one range per family; a pod gets one address from each. */
  ranges: IpamRange[];
}

export interface IpamAddress {
  address: string;
  prefixLen: number;
  gateway: string;
  family: IpFamily;
}

export interface IpamAllocation {
  /** '' for an address file whose owner could not be read (it stays reserved until reclaim()). */
  sandboxId: string;
  addresses: IpamAddress[];
}

interface Range {
  family: IpFamily;
  subnet: Cidr;
  gateway: bigint;
  start: bigint;
  end: bigint;
}

interface Held {
  sandboxId: string;
  file: string;
  value: bigint;
  address: IpamAddress;
}

/** The content of an address file (versioned JSON). */
interface AddressRecord {
  version: 1;
  sandboxId: string;
  address: string;
  prefixLen: number;
  gateway: string;
}

const familyName = (family: IpFamily): string => (family === 4 ? 'IPv4' : 'IPv6');
const cursorFile = (family: IpFamily): string => `last_reserved_ip.ipv${family}`;

export class Ipam {
  private readonly dir: string;
  private readonly ranges: Range[];
  /** Held addresses by family, by value. */
  private readonly held = new Map<IpFamily, Map<bigint, Held>>([
    [4, new Map()],
    [6, new Map()],
  ]);
  private readonly cursors = new Map<IpFamily, bigint>();
  private loaded = false;
  private tail: Promise<unknown> = Promise.resolve();

  /** Checks the config; throws SKIFF_INVALID_ARGUMENT naming the bad value. Touches no disk. */
  constructor(options: IpamOptions) {
    if (typeof options.dir !== 'string' || options.dir === '') throw invalid('IPAM: no state directory given');
    if (!Array.isArray(options.ranges) || options.ranges.length === 0) throw invalid('IPAM: no address range configured');
    this.dir = options.dir;
    this.ranges = options.ranges.map(checkRange);
    for (const family of [4, 6] as const) {
      const same = this.ranges.filter((r) => r.family === family);
      if (same.length > 1) {
        throw invalid(`IPAM: ${same.length} ${familyName(family)} ranges (${same.map((r) => formatCidr(r.subnet)).join(', ')}); want at most one per family`);
      }
    }
  }

  /** The gateway of each range, with the prefix length: the bridge's own addresses. */
  gateways(): IpamAddress[] {
    return this.ranges.map((r) => addressOf(r, r.gateway));
  }

  /**
   * One address per range for the sandbox. Idempotent: a sandbox that has addresses gets the same
   * ones back. All or nothing: when one family cannot be served, what this call took is freed.
   */
  async allocate(sandboxId: string): Promise<IpamAddress[]> {
    checkSandboxId(sandboxId);
    return this.serialize(async () => {
      const result: IpamAddress[] = [];
      const taken: Held[] = [];
      try {
        for (const range of this.ranges) {
          const mine = [...this.held.get(range.family)!.values()].find((h) => h.sandboxId === sandboxId);
          if (mine) {
            result.push({ ...mine.address });
            continue;
          }
          const h = await this.reserve(range, sandboxId);
          taken.push(h);
          result.push({ ...h.address });
        }
      } catch (err) {
        for (const h of taken.reverse()) {
          try {
            await this.releaseHeld([h]);
          } catch (dropErr) {
            log.error({ sandboxId, address: h.address.address, err: dropErr }, 'rollback of an address failed');
          }
        }
        throw err;
      }
      log.debug({ sandboxId, addresses: result.map((a) => a.address) }, 'allocated');
      return result;
    });
  }

  /** Frees the sandbox's addresses and returns them; a sandbox with none succeeds. */
  release(sandboxId: string): Promise<IpamAddress[]> {
    return this.serialize(async () => {
      const freed = await this.releaseHeld(this.heldBy(sandboxId));
      if (freed.length > 0) log.debug({ sandboxId, addresses: freed.map((a) => a.address) }, 'released');
      return freed;
    });
  }

  /**
   * Frees every address whose sandbox is not in `liveSandboxIds` (at daemon start, after a crash
   * between allocate and the sandbox record) and returns what it freed.
   */
  reclaim(liveSandboxIds: Iterable<string>): Promise<IpamAllocation[]> {
    const live = new Set(liveSandboxIds);
    return this.serialize(async () => {
      const freed: IpamAllocation[] = [];
      for (const { sandboxId } of this.list()) {
        if (live.has(sandboxId)) continue;
        const addresses = await this.releaseHeld(this.heldBy(sandboxId));
        freed.push({ sandboxId, addresses });
        log.info({ sandboxId, addresses: addresses.map((a) => a.address) }, 'reclaimed the addresses of a sandbox that is gone');
      }
      return freed;
    });
  }

  /** Every allocation, by sandbox id. */
  allocations(): Promise<IpamAllocation[]> {
    return this.serialize(async () => this.list());
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      if (!this.loaded) {
        await this.load();
        this.loaded = true;
      }
      return fn();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private list(): IpamAllocation[] {
    const by = new Map<string, IpamAddress[]>();
    for (const family of [4, 6] as const) {
      for (const h of this.held.get(family)!.values()) {
        let list = by.get(h.sandboxId);
        if (!list) by.set(h.sandboxId, (list = []));
        list.push({ ...h.address });
      }
    }
    return [...by].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sandboxId, addresses]) => ({ sandboxId, addresses }));
  }

  private heldBy(sandboxId: string): Held[] {
    return [4, 6].flatMap((f) => [...this.held.get(f as IpFamily)!.values()].filter((h) => h.sandboxId === sandboxId));
  }

  /** Takes the next free address of the range after its cursor, wrapping around once. */
  private async reserve(range: Range, sandboxId: string): Promise<Held> {
    const held = this.held.get(range.family)!;
    const cursor = this.cursors.get(range.family);
    let next = cursor !== undefined && cursor >= range.start && cursor < range.end ? cursor + 1n : range.start;
    for (let n = range.end - range.start + 1n; n > 0n; n--, next = next === range.end ? range.start : next + 1n) {
      if (next === range.gateway || held.has(next)) continue;
      const address = addressOf(range, next);
      const record: AddressRecord = { version: 1, sandboxId, address: address.address, prefixLen: address.prefixLen, gateway: address.gateway };
      const file = address.address;
      if (!(await createExclusive(join(this.dir, file), JSON.stringify(record) + '\n'))) {
        // Not in our view yet somebody's: take note of it and go on.
        await this.readRecord(file);
        continue;
      }
      try {
        await writeFileAtomic(join(this.dir, cursorFile(range.family)), address.address + '\n');
      } catch (err) {
        await rm(join(this.dir, file), { force: true });
        throw err;
      }
      const h: Held = { sandboxId, file, value: next, address };
      held.set(next, h);
      this.cursors.set(range.family, next);
      return h;
    }
    const total = range.end - range.start + 1n - (range.gateway >= range.start && range.gateway <= range.end ? 1n : 0n);
    const used = [...held.keys()].filter((v) => v >= range.start && v <= range.end && v !== range.gateway).length;
    throw new SkiffError(
      'SKIFF_NETWORK_EXHAUSTED',
      `no free ${familyName(range.family)} address in ${formatCidr(range.subnet)} (${formatIp(range.family, range.start)}-${formatIp(range.family, range.end)}): ${used} of ${total} in use`,
    );
  }

  private async releaseHeld(list: Held[]): Promise<IpamAddress[]> {
    for (const h of list) await rm(join(this.dir, h.file), { force: true });
    if (list.length > 0) await fsyncDir(this.dir);
    for (const h of list) this.held.get(h.address.family)!.delete(h.value);
    return list.map((h) => ({ ...h.address }));
  }

  private async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) {
      if (isAtomicTemp(name)) {
        await rm(join(this.dir, name), { force: true }); // a crash between write and link/rename
      } else if (name === cursorFile(4) || name === cursorFile(6)) {
        const ip = parseIp((await readFile(join(this.dir, name), 'utf8')).trim());
        if (ip && cursorFile(ip.family) === name) this.cursors.set(ip.family, ip.value);
      } else if (parseIp(name)) {
        await this.readRecord(name);
      }
    }
    log.debug({ dir: this.dir, allocations: this.list().length }, 'state read');
  }

  /** Adds an address file to the view; one that cannot be read stays reserved with owner ''. */
  private async readRecord(file: string): Promise<void> {
    const ip = parseIp(file)!;
    let text: string;
    try {
      text = await readFile(join(this.dir, file), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return; // freed meanwhile
      throw err;
    }
    let address: IpamAddress;
    let sandboxId = '';
    try {
      const rec = JSON.parse(text) as Partial<AddressRecord>;
      if (rec.version !== 1 || typeof rec.sandboxId !== 'string' || typeof rec.prefixLen !== 'number' || typeof rec.gateway !== 'string') {
        throw new Error('not an address record of version 1');
      }
      sandboxId = rec.sandboxId;
      address = { address: formatIp(ip.family, ip.value), prefixLen: rec.prefixLen, gateway: rec.gateway, family: ip.family };
    } catch (err) {
      log.warn({ file: join(this.dir, file), err: errorMessage(err) }, 'unreadable address record: kept reserved until reclaim');
      address = { address: formatIp(ip.family, ip.value), prefixLen: familyBits(ip.family), gateway: '', family: ip.family };
    }
    this.held.get(ip.family)!.set(ip.value, { sandboxId, file, value: ip.value, address });
  }
}

function addressOf(range: Range, value: bigint): IpamAddress {
  return { address: formatIp(range.family, value), prefixLen: range.subnet.prefixLen, gateway: formatIp(range.family, range.gateway), family: range.family };
}

function checkSandboxId(sandboxId: string): void {
  if (typeof sandboxId !== 'string' || sandboxId === '') throw invalid('IPAM: empty sandbox id');
}

function invalid(message: string): SkiffError {
  return new SkiffError('SKIFF_INVALID_ARGUMENT', message);
}

/** Validates one range of the config and fills in its defaults. */
function checkRange(r: IpamRange): Range {
  const subnet = typeof r?.subnet === 'string' ? parseCidr(r.subnet) : undefined;
  if (!subnet) throw invalid(`IPAM range subnet ${JSON.stringify(r?.subnet)} is not a CIDR (address/prefix)`);
  if (subnet.hostBits) throw invalid(`IPAM range subnet "${r.subnet}" has host bits set (the network is ${formatCidr(subnet)})`);
  const { family } = subnet;
  const name = formatCidr(subnet);
  const maxPrefix = familyBits(family) - 2;
  if (subnet.prefixLen > maxPrefix) throw invalid(`IPAM range subnet "${r.subnet}" is too small for pods (at most /${maxPrefix} for ${familyName(family)})`);
  const last = lastAddress(subnet);
  // IPv4 has a broadcast address; IPv6 none (host-local hands out its last address too).
  const lastUsable = family === 4 ? last - 1n : last;

  const address = (field: 'gateway' | 'rangeStart' | 'rangeEnd'): bigint | undefined => {
    const text = r[field];
    if (text === undefined) return undefined;
    const ip = typeof text === 'string' ? parseIp(text) : undefined;
    if (!ip || ip.family !== family) throw invalid(`IPAM range ${name}: ${field} ${JSON.stringify(text)} is not an ${familyName(family)} address`);
    if (!cidrContains(subnet, ip)) throw invalid(`IPAM range ${name}: ${field} "${text}" is outside the subnet`);
    if (ip.value === subnet.network || ip.value > lastUsable) {
      throw invalid(`IPAM range ${name}: ${field} "${text}" is the subnet's ${ip.value === subnet.network ? 'network' : 'broadcast'} address`);
    }
    return ip.value;
  };
  const gateway = address('gateway') ?? subnet.network + 1n;
  const start = address('rangeStart') ?? subnet.network + 1n;
  const end = address('rangeEnd') ?? lastUsable;
  if (start > end) throw invalid(`IPAM range ${name}: rangeStart "${r.rangeStart ?? formatIp(family, start)}" is after rangeEnd "${r.rangeEnd ?? formatIp(family, end)}"`);
  if (start === end && start === gateway) throw invalid(`IPAM range ${name}: the range holds only the gateway ${formatIp(family, gateway)}`);
  return { family, subnet, gateway, start, end };
}

/**
 * Creates `path` holding `data` only if it does not exist: the data is written and fsynced under a
 * temp name, then hard-linked to its name (link(2) fails with EEXIST rather than replace), so the
 * file is never seen half-written and never overwritten. False when the name was taken.
 */
async function createExclusive(path: string, data: string): Promise<boolean> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw err;
    }
  } finally {
    await rm(tmp, { force: true });
  }
  await fsyncDir(dir);
  return true;
}
