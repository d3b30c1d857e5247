// The process's uid, gid and supplementary groups: run_as_user / run_as_group / run_as_username
// from the security context, else the image's USER, resolved through the image's /etc/passwd and
// /etc/group as containerd resolves them (pkg/oci/spec_opts.go WithUser, WithUserID,
// WithUsername, WithAdditionalGIDs; internal/cri/opts WithSupplementalGroups).
import { invalid, MAX_ID, parseId, securityContext, type SpecOption } from './option.js';
import type { ContainerSpecInput } from './types.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** passwd(5) lines `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped. */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of fields(text)) {
    if (f.length < 4 || !f[0]) continue;
    const uid = parseId(f[2].trim(), 0xffffffff);
    const gid = parseId(f[3].trim(), 0xffffffff);
    if (uid !== undefined && gid !== undefined) out.push({ name: f[0], uid, gid });
  }
  return out;
}

/** group(5) lines `name:password:gid:member,member`; malformed lines are skipped. */
export function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of fields(text)) {
    if (f.length < 3 || !f[0]) continue;
    const gid = parseId(f[2].trim(), 0xffffffff);
    const members = (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean);
    if (gid !== undefined) out.push({ name: f[0], gid, members });
  }
  return out;
}

function fields(text: string | undefined): string[][] {
  if (!text) return [];
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/**
 * The user string containerd builds from the security context (util.GenerateUserString):
 * run_as_username wins over run_as_user; run_as_group appends ":gid"; a group without a user is
 * an error. '' when the context names no user.
 */
export function criUserString(input: ContainerSpecInput): string {
  const sc = securityContext(input);
  let user = '';
  if (sc?.run_as_user) user = sc.run_as_user.value;
  if (sc?.run_as_username) user = sc.run_as_username;
  const group = sc?.run_as_group ? sc.run_as_group.value : '';
  if (!user) {
    if (group) throw invalid(input, `run_as_group ${group} is specified without run_as_user or run_as_username`);
    return '';
  }
  return group ? `${user}:${group}` : user;
}

/**
 * uid and gid of an image-spec USER value (`user`, `uid`, `user:group`, `uid:gid`, `uid:group`,
 * `user:gid`). A numeric uid missing from passwd is fine (gid 0); a name that is not there is not.
 */
export function resolveUser(input: ContainerSpecInput, userstr: string, passwd: PasswdEntry[], groups: GroupEntry[]): { uid: number; gid: number } {
  const parts = userstr.split(':');
  if (parts.length > 2 || parts.some((p) => p === '')) throw invalid(input, `invalid user "${userstr}"`);
  const [userPart, groupPart] = parts;
  const numericUid = numericId(input, userPart, 'uid');
  let uid: number;
  let gid: number;
  if (numericUid !== undefined) {
    uid = numericUid;
    gid = passwd.find((u) => u.uid === uid)?.gid ?? 0;
  } else {
    const entry = passwd.find((u) => u.name === userPart);
    if (!entry) throw invalid(input, `no users found for "${userPart}" in the image's /etc/passwd`);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (groupPart !== undefined) {
    const numericGid = numericId(input, groupPart, 'gid');
    if (numericGid !== undefined) {
      gid = numericGid;
    } else {
      const entry = groups.find((g) => g.name === groupPart);
      if (!entry) throw invalid(input, `no groups found for "${groupPart}" in the image's /etc/group`);
      gid = entry.gid;
    }
  }
  return { uid, gid };
}

/** A decimal id within runc's range, undefined for a name; a number out of range is an error. */
function numericId(input: ContainerSpecInput, value: string, what: 'uid' | 'gid'): number | undefined {
  if (!/^\d+$/.test(value)) {
    if (/^-\d+$/.test(value)) throw invalid(input, `${what} ${value} is out of range`);
    return undefined;
  }
  const id = parseId(value, MAX_ID);
  if (id === undefined) throw invalid(input, `${what} ${value} is out of range`);
  return id;
}

/**
 * Groups of /etc/group that list the user as a member (not the group named after the user). The
 * user is run_as_username, run_as_user, or the image USER's user part — by name, or by the name
 * passwd gives its uid; a uid passwd does not know is in no group.
 */
export function memberGroups(userPart: string, passwd: PasswdEntry[], groups: GroupEntry[]): number[] {
  let name = userPart;
  if (/^\d+$/.test(userPart)) {
    const entry = passwd.find((u) => u.uid === Number(userPart));
    if (!entry) return [];
    name = entry.name;
  }
  return groups.filter((g) => g.name !== name && g.members.includes(name)).map((g) => g.gid);
}

/**
 * process.user: CRI user, else image USER, else root. additionalGids = the primary gid, the CRI
 * supplemental_groups and (policy Merge, the default) the image's /etc/group memberships,
 * deduplicated and sorted as containerd writes them (WithAdditionalGIDs + WithSupplementalGroups,
 * mergeGids). Strict (KEP-3619) leaves /etc/group out: only the primary gid and the requested
 * groups, as containerd and CRI-O do. ContainerStatus.user reports this process.user
 * (containerd toCRIContainerUser), so the caller records it.
 */
export const withUser: SpecOption = (spec, input) => {
  const passwd = parsePasswd(input.imageFiles.passwd);
  const groups = parseGroup(input.imageFiles.group);
  const fromCri = criUserString(input);
  const userstr = fromCri || input.image.User || '0';
  const { uid, gid } = resolveUser(input, userstr, passwd, groups);

  const sc = securityContext(input);
  const gids = new Set<number>([gid]);
  const policy = String(sc?.supplemental_groups_policy ?? 'Merge');
  if (policy !== 'Merge' && policy !== 'Strict') {
    // containerd and CRI-O: "not implemented in this release"; a policy skiff does not know is
    // never read as Merge.
    throw invalid(input, `supplemental_groups_policy ${policy} is not supported (Merge or Strict)`);
  }
  if (policy === 'Merge') {
    for (const g of memberGroups(userstr.split(':')[0], passwd, groups)) gids.add(g);
  }
  for (const g of sc?.supplemental_groups ?? []) {
    const id = parseId(g, 0xffffffff);
    if (id === undefined) throw invalid(input, `supplemental group ${g} is out of range`);
    gids.add(id);
  }
  spec.process.user = { uid, gid, additionalGids: [...gids].sort((a, b) => a - b) };
};
