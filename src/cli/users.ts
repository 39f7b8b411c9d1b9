// uid/gid → names from /etc/passwd and /etc/group, read once. No NSS: names
// from LDAP and the like show as numbers, which is what ipcs does too.
import { readFileSync } from 'node:fs';

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
