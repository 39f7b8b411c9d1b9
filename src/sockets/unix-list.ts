// Listing Unix domain sockets bound to filesystem paths: the kernel's table
// (/proc/net/unix) of every bound socket in this network namespace, plus
// socket files found in given directories, stale ones included.
import { lstatSync, readFileSync } from 'node:fs';
import { typeError } from '../core/errors.js';
import { filesIn } from '../core/scan.js';
import { checkString, show } from '../core/validate.js';

export interface UnixSocketListEntry {
  path: string;
  /** Permission bits of the socket file. */
  mode: number;
  uid: number;
  gid: number;
  /**
   * 'listening' (stream/seqpacket server), 'bound' (a datagram socket, or a
   * server not listening yet), or 'stale': a socket file no socket is bound
   * to any more (its server died or closed without removing it).
   */
  state: 'listening' | 'bound' | 'stale';
  type: 'stream' | 'dgram' | 'seqpacket' | null;
  /** Connected sockets accepted on it (they carry the listener's path). */
  connections: number;
}

export interface ProcUnixEntry {
  path: string;
  type: string;
  listening: boolean;
  connected: boolean;
}

const TYPES: Record<string, string> = { '0001': 'stream', '0002': 'dgram', '0005': 'seqpacket' };
const SO_ACCEPTCON = 0x10000;
const SS_CONNECTED = '03';

/** /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]; abstract names start with '@'. */
export function procNetUnix(): ProcUnixEntry[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return [];
  }
  const out: ProcUnixEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    out.push({
      path: f.slice(7).join(' '),
      type: TYPES[f[4]!] ?? f[4]!,
      listening: (parseInt(f[3]!, 16) & SO_ACCEPTCON) !== 0,
      connected: f[5] === SS_CONNECTED,
    });
  }
  return out;
}

/**
 * Lists path-bound Unix sockets: every path a socket serves now (listening
 * stream/seqpacket servers and bound datagram sockets, anywhere), plus every
 * socket file in the directories `dirs` (not recursive), stale ones
 * included. Sorted by path.
 */
export function list(dirs: string | readonly string[] = []): UnixSocketListEntry[] {
  const dirList = typeof dirs === 'string' ? [dirs] : dirs;
  if (!Array.isArray(dirList)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `dirs must be a path or an array of paths, got ${show(dirs)}`);
  dirList.forEach((d, i) => checkString(d, `dirs[${i}]`));
  const byPath = new Map<string, ProcUnixEntry[]>();
  for (const e of procNetUnix()) {
    if (!e.path.startsWith('/')) continue;
    let list = byPath.get(e.path);
    if (!list) byPath.set(e.path, (list = []));
    list.push(e);
  }
  const wanted = new Set<string>([...byPath.keys()].filter((p) => byPath.get(p)!.some((e) => e.listening || e.type === 'dgram')));
  for (const { path } of filesIn(dirList, (st) => st.isSocket())) wanted.add(path);
  const out: UnixSocketListEntry[] = [];
  for (const path of [...wanted].sort()) {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // bound, but its file was removed
    }
    const es = byPath.get(path) ?? [];
    const server = es.find((e) => e.listening) ?? es.find((e) => !e.connected);
    out.push({
      path,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      state: server ? (server.listening ? 'listening' : 'bound') : 'stale',
      type: (server?.type as UnixSocketListEntry['type']) ?? null,
      connections: es.filter((e) => e.connected).length,
    });
  }
  return out;
}
