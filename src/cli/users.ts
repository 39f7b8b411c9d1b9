// uid/gid → names from /etc/passwd and /etc/group, read once. No NSS: names
// from LDAP and the like show as numbers, which is what ipcs does too.
import { readFileSync } from 'node:fs';
import { formatKey } from '../core/errors.js';
import type { SysvOwnership } from '../core/sysv-key.js';
import { octal } from './args.js';

function readIds(path: string): Map<number, string> {
  const names = new Map<number, string>();
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    const n = Number(id);
    if (name && id !== undefined && id !== '' && Number.isInteger(n) && !names.has(n)) names.set(n, name);
  }
  return names;
}

let users: Map<number, string> | undefined;
let groups: Map<number, string> | undefined;

/** The user name for `uid`, or the uid as text when /etc/passwd has none. */
export function userName(uid: number): string {
  users ??= readIds('/etc/passwd');
  return users.get(uid) ?? String(uid);
}

export function groupName(gid: number): string {
  groups ??= readIds('/etc/group');
  return groups.get(gid) ?? String(gid);
}

// How `stat` and `ls` commands show people, times and the parts every System V object shares.
export const who = (uid: number): string => `${userName(uid)} (uid ${uid})`;
export const grp = (gid: number): string => `${groupName(gid)} (gid ${gid})`;
/** A time for --json: ISO 8601, null for never. */
export const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
export const when = (d: Date | null): string => iso(d) ?? 'never';

/** `stat` lines that open every System V object's description. */
export function sysvIdentityPairs(id: number, key: number, kind: string): [string, string][] {
  return [
    ['id', String(id)],
    ['key', key === 0 ? `${formatKey(0)} (private)` : formatKey(key)],
    ['kind', kind],
  ];
}

/** `stat` lines for permissions and ownership of a System V object. */
export function sysvOwnerPairs(st: SysvOwnership): [string, string][] {
  return [
    ['mode', octal(st.mode)],
    ['owner', who(st.uid)],
    ['group', grp(st.gid)],
    ['creator', `${who(st.cuid)}, ${grp(st.cgid)}`],
  ];
}

/** `stat --json` of a System V object: its stat() with readable key, mode, owner and group. */
export function sysvStatJson(kind: string, id: number, st: SysvOwnership, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ kind, id, ...st, key: formatKey(st.key), mode: octal(st.mode), owner: userName(st.uid), group: groupName(st.gid), ...extra }, null, 2)}\n`;
}
