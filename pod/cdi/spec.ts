// One CDI spec file, parsed and checked as the CDI library loads it (tags.cncf.io/
// container-device-interface pkg/cdi/spec.go, specs-go/version.go, pkg/parser, api/producer
// validator-default.go): unknown fields refused (it unmarshals strictly), a known cdiVersion that
// covers the features used, kind "vendor/class", device names, and well-formed edits. Pure: the
// caller reads the file.
import { parse as parseYaml } from 'yaml';
import type { CdiContainerEdits, CdiDeviceNode, CdiHook, CdiMount } from '../spec/cdi.js';
import { CDI_HOOK_NAMES } from '../spec/cdi.js';

export interface CdiSpec {
  path: string;
  /** Index of its spec dir: a device in a later dir wins over one in an earlier dir. */
  priority: number;
  kind: string;
  edits: CdiContainerEdits;
  /** Device name → its edits, in file order. */
  devices: Map<string, CdiContainerEdits>;
}

export class CdiSpecError extends Error {
  override name = 'CdiSpecError';
}

/** Released spec versions (SPEC.md "Released versions"), oldest first. */
const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0'];

type Obj = Record<string, unknown>;

function fail(message: string): never {
  throw new CdiSpecError(message);
}

function object(v: unknown, what: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) fail(`${what}: unknown field "${k}"`);
  return v as Obj;
}

function optString(o: Obj, key: string, what: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(`${what}.${key} must be a string`);
  return v;
}

function optStrings(o: Obj, key: string, what: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(`${what}.${key} must be a list of strings`);
  return v;
}

function optInt(o: Obj, key: string, what: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`${what}.${key} must be an integer between ${min} and ${max}`);
  return v;
}

function optList(o: Obj, key: string, what: string): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(`${what}.${key} must be a list`);
  return v;
}

function checkEnv(env: string[] | undefined, what: string): void {
  for (const e of env ?? []) if (e.indexOf('=') <= 0) fail(`${what}: invalid environment variable "${e}"`);
}

const UINT32 = 0xffffffff;

function deviceNode(v: unknown, what: string): CdiDeviceNode {
  const o = object(v, what, ['path', 'hostPath', 'type', 'major', 'minor', 'fileMode', 'permissions', 'uid', 'gid']);
  const path = optString(o, 'path', what);
  if (!path) fail(`${what}: invalid (empty) device path`);
  const type = optString(o, 'type', what) ?? '';
  if (!['', 'b', 'c', 'u', 'p'].includes(type)) fail(`device "${path}": invalid type "${type}"`);
  const permissions = optString(o, 'permissions', what) ?? '';
  if (permissions !== 'none' && !/^[rwm]*$/.test(permissions)) fail(`device "${path}": invalid permissions "${permissions}"`);
  const n: CdiDeviceNode = { path };
  const hostPath = optString(o, 'hostPath', what);
  if (hostPath) n.hostPath = hostPath;
  if (type) n.type = type;
  // Negative numbers are refused: -1 would be a wildcard in the device cgroup.
  const major = optInt(o, 'major', `device "${path}"`, 0, Number.MAX_SAFE_INTEGER);
  const minor = optInt(o, 'minor', `device "${path}"`, 0, Number.MAX_SAFE_INTEGER);
  if (major !== undefined) n.major = major;
  if (minor !== undefined) n.minor = minor;
  const fileMode = optInt(o, 'fileMode', `device "${path}"`, 0, UINT32);
  if (fileMode !== undefined) n.fileMode = fileMode;
  if (permissions) n.permissions = permissions;
  const uid = optInt(o, 'uid', `device "${path}"`, 0, UINT32);
  const gid = optInt(o, 'gid', `device "${path}"`, 0, UINT32);
  if (uid !== undefined) n.uid = uid;
  if (gid !== undefined) n.gid = gid;
  return n;
}

function mount(v: unknown, what: string): CdiMount {
  const o = object(v, what, ['hostPath', 'containerPath', 'options', 'type']);
  const hostPath = optString(o, 'hostPath', what);
  const containerPath = optString(o, 'containerPath', what);
  if (!hostPath) fail(`${what}: invalid mount, empty host path`);
  if (!containerPath) fail(`${what}: invalid mount, empty container path`);
  const m: CdiMount = { hostPath, containerPath };
  const options = optStrings(o, 'options', what);
  if (options) m.options = options;
  const type = optString(o, 'type', what);
  if (type) m.type = type;
  return m;
}

function hook(v: unknown, what: string): CdiHook {
  const o = object(v, what, ['hookName', 'path', 'args', 'env', 'timeout']);
  const hookName = optString(o, 'hookName', what) ?? '';
  if (!(CDI_HOOK_NAMES as readonly string[]).includes(hookName)) fail(`invalid hook name "${hookName}"`);
  const path = optString(o, 'path', what);
  if (!path) fail(`invalid hook "${hookName}" with empty path`);
  const h: CdiHook = { hookName, path };
  const args = optStrings(o, 'args', what);
  if (args) h.args = args;
  const env = optStrings(o, 'env', what);
  checkEnv(env, `invalid hook "${hookName}"`);
  if (env) h.env = env;
  const timeout = optInt(o, 'timeout', what, -2147483648, 2147483647);
  if (timeout !== undefined) h.timeout = timeout;
  return h;
}

function edits(v: unknown, what: string): CdiContainerEdits {
  if (v === undefined || v === null) return {};
  const o = object(v, what, ['env', 'deviceNodes', 'hooks', 'mounts', 'intelRdt', 'additionalGids', 'netDevices']);
  const e: CdiContainerEdits = {};
  const env = optStrings(o, 'env', what);
  checkEnv(env, `${what}: invalid container edits`);
  if (env?.length) e.env = env;
  const nodes = optList(o, 'deviceNodes', what).map((d, i) => deviceNode(d, `${what}.deviceNodes[${i}]`));
  if (nodes.length) e.deviceNodes = nodes;
  const hooks = optList(o, 'hooks', what).map((h, i) => hook(h, `${what}.hooks[${i}]`));
  if (hooks.length) e.hooks = hooks;
  const mounts = optList(o, 'mounts', what).map((m, i) => mount(m, `${what}.mounts[${i}]`));
  if (mounts.length) e.mounts = mounts;
  const gids = optList(o, 'additionalGids', what);
  if (!gids.every((g) => typeof g === 'number' && Number.isInteger(g) && g >= 0 && g <= UINT32)) fail(`${what}.additionalGids must be uint32 gids`);
  if (gids.length) e.additionalGids = gids as number[];
  if (o.intelRdt !== undefined && o.intelRdt !== null) e.intelRdt = o.intelRdt;
  const net = optList(o, 'netDevices', what);
  if (net.length) e.netDevices = net;
  return e;
}

function isEmpty(e: CdiContainerEdits): boolean {
  return !e.env?.length && !e.deviceNodes?.length && !e.hooks?.length && !e.mounts?.length && !e.additionalGids?.length && e.intelRdt === undefined && !e.netDevices?.length;
}

const letter = (c: string): boolean => /^[A-Za-z]$/.test(c);
const alnum = (c: string): boolean => /^[A-Za-z0-9]$/.test(c);

/** parser.ValidateVendorName / ValidateClassName: a letter, then [A-Za-z0-9_.-], ending alphanumeric. */
export function checkVendorOrClass(name: string, what: 'vendor' | 'class'): string | undefined {
  if (!name) return `invalid ${what}. empty name`;
  if (!letter(name[0])) return `invalid ${what}. "${name}", should start with letter`;
  const bad = [...name.slice(1, -1)].find((c) => !alnum(c) && !'_-.'.includes(c));
  if (bad) return `invalid ${what}. invalid character '${bad}' in name "${name}"`;
  if (!alnum(name[name.length - 1])) return `invalid ${what}. "${name}", should end with a letter or digit`;
  return undefined;
}

/** parser.ValidateDeviceName: alphanumeric first and last, [A-Za-z0-9_.:-] between. */
export function checkDeviceName(name: string): string | undefined {
  if (!name) return 'invalid (empty) device name';
  if (!alnum(name[0])) return `invalid device name "${name}", should start with a letter or digit`;
  const bad = [...name.slice(1, -1)].find((c) => !alnum(c) && !'_-.:'.includes(c));
  if (bad) return `invalid character '${bad}' in device name "${name}"`;
  if (!alnum(name[name.length - 1])) return `invalid device name "${name}", should end with a letter or digit`;
  return undefined;
}

/** parser.ParseQualifiedName: "vendor/class=name"; undefined when valid, else why not. */
export function qualifiedNameError(device: string): string | undefined {
  const eq = device.indexOf('=');
  const slash = device.indexOf('/');
  if (device.startsWith('/') || eq <= 0 || slash <= 0 || slash > eq) return `unqualified device "${device}", want vendor.com/class=name`;
  const vendor = device.slice(0, slash);
  const cls = device.slice(slash + 1, eq);
  const why = checkVendorOrClass(vendor, 'vendor') ?? checkVendorOrClass(cls, 'class') ?? checkDeviceName(device.slice(eq + 1));
  return why && `invalid device "${device}": ${why}`;
}

function semverCompare(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

/** specs-go MinimumRequiredVersion: the oldest version with every feature the spec uses. */
function requiredVersion(kind: string, annotated: boolean, all: { name?: string; edits: CdiContainerEdits }[]): string {
  const edits = all.map((x) => x.edits);
  if (edits.some((e) => e.netDevices?.length)) return '1.1.0';
  if (edits.some((e) => e.intelRdt !== undefined || e.additionalGids?.length)) return '0.7.0';
  if (annotated || kind.slice(kind.indexOf('/') + 1).includes('.')) return '0.6.0';
  if (all.some((x) => x.name !== undefined && !letter(x.name[0] ?? 'a')) || edits.some((e) => e.deviceNodes?.some((d) => d.hostPath))) return '0.5.0';
  if (edits.some((e) => e.mounts?.some((m) => m.type))) return '0.4.0';
  return '0.3.0';
}

/** Parses and checks a spec file's text (YAML, of which JSON is a subset). Throws CdiSpecError. */
export function parseCdiSpec(text: string, path: string, priority: number): CdiSpec {
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    fail(`failed to unmarshal CDI Spec: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) fail('no Spec data');
  const o = object(doc, 'spec', ['cdiVersion', 'kind', 'annotations', 'devices', 'containerEdits']);
  const raw = optString(o, 'cdiVersion', 'spec') ?? '';
  const version = raw.replace(/^v/, '');
  if (!VERSIONS.includes(version)) fail(`invalid version "${raw}"`);
  const kind = optString(o, 'kind', 'spec') ?? '';
  const slash = kind.indexOf('/');
  const vendorError = slash > 0 && slash < kind.length - 1 ? checkVendorOrClass(kind.slice(0, slash), 'vendor') ?? checkVendorOrClass(kind.slice(slash + 1), 'class') : `invalid kind "${kind}", want vendor.com/class`;
  if (vendorError) fail(vendorError);
  const annotations = typeof o.annotations === 'object' && o.annotations !== null && Object.keys(o.annotations).length > 0;
  const specEdits = edits(o.containerEdits, 'containerEdits');
  const devices = new Map<string, CdiContainerEdits>();
  let deviceAnnotations = false;
  const all: { name?: string; edits: CdiContainerEdits }[] = [{ edits: specEdits }];
  optList(o, 'devices', 'spec').forEach((v, i) => {
    const d = object(v, `devices[${i}]`, ['name', 'annotations', 'containerEdits']);
    const name = optString(d, 'name', `devices[${i}]`) ?? '';
    const nameError = checkDeviceName(name);
    if (nameError) fail(`invalid device "${name}": ${nameError}`);
    if (devices.has(name)) fail(`invalid spec, multiple device "${name}"`);
    if (typeof d.annotations === 'object' && d.annotations !== null && Object.keys(d.annotations).length) deviceAnnotations = true;
    const e = edits(d.containerEdits, `device "${name}" containerEdits`);
    if (isEmpty(e)) fail(`invalid device "${name}": empty container edits`);
    devices.set(name, e);
    all.push({ name, edits: e });
  });
  if (devices.size === 0) fail('invalid spec, no devices');
  const min = requiredVersion(kind, annotations || deviceAnnotations, all);
  if (semverCompare(min, version) > 0) fail(`the spec version must be at least v${min}`);
  return { path, priority, kind, edits: specEdits, devices };
}
