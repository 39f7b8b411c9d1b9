// `ipckit ls` sections for path-based IPC: FIFOs in the --path directories,
// and Unix domain sockets (from /proc/net/unix: every listening or bound
// path socket on the system, plus any socket file found in --path
// directories, stale ones included).
import { lstatSync, readdirSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { holders } from './fd-scan.js';
import { lsPaths, type LsProvider, type LsRow } from './ls.js';
import { userName } from './users.js';

/** Files of one kind in the --path directories (not recursive), as absolute real paths. */
function filesIn(test: (st: Stats) => boolean): string[] {
  const out: string[] = [];
  for (const dir of lsPaths) {
    let base: string;
    try {
      base = realpathSync(resolve(dir));
    } catch {
      continue;
    }
    let names: string[];
    try {
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const p = join(base, name);
      try {
        if (test(lstatSync(p))) out.push(p);
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return out;
}

function ownerRow(kind: string, path: string): LsRow | null {
  try {
    const st = lstatSync(path);
    return { kind, name: path, owner: userName(st.uid), uid: st.uid, mode: st.mode & 0o7777 };
  } catch {
    return null;
  }
}

export const fifoProvider: LsProvider = {
  kind: 'fifo',
  title: 'FIFOs (named pipes, in --path directories)',
  countName: 'opens',
  detailName: 'state',
  list(): LsRow[] {
    const paths = filesIn((st) => st.isFIFO());
    const open = holders(new Set(paths));
    const rows: LsRow[] = [];
    for (const p of paths) {
      const row = ownerRow('fifo', p);
      if (!row) continue;
      const hs = open.get(p) ?? [];
      const readers = hs.filter((h) => h.access !== 1).length;
      const writers = hs.filter((h) => h.access !== 0).length;
      row.count = hs.length;
      row.detail = `${readers}r/${writers}w`;
      row.extra = { state: row.detail, readers, writers, pids: [...new Set(hs.map((h) => h.pid))] };
      rows.push(row);
    }
    return rows;
  },
};

interface ProcUnixEntry {
  path: string;
  type: string;
  listening: boolean;
  connected: boolean;
}

const TYPES: Record<string, string> = { '0001': 'stream', '0002': 'dgram', '0005': 'seqpacket' };
const SO_ACCEPTCON = 0x10000;
const SS_CONNECTED = '03';

/** /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]. Abstract names start with '@'. */
function procNetUnix(): ProcUnixEntry[] {
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
    const path = f.slice(7).join(' ');
    out.push({
      path,
      type: TYPES[f[4]!] ?? f[4]!,
      listening: (parseInt(f[3]!, 16) & SO_ACCEPTCON) !== 0,
      connected: f[5] === SS_CONNECTED,
    });
  }
  return out;
}

export const unixSocketProvider: LsProvider = {
  kind: 'unix-socket',
  title: 'Unix domain sockets (bound to a path)',
  countName: 'connections',
  detailName: 'state',
  list(): LsRow[] {
    const entries = procNetUnix().filter((e) => e.path.startsWith('/'));
    const byPath = new Map<string, ProcUnixEntry[]>();
    for (const e of entries) {
      let list = byPath.get(e.path);
      if (!list) byPath.set(e.path, (list = []));
      list.push(e);
    }
    // Every path someone serves, plus every socket file in the --path directories.
    const wanted = new Set<string>([...byPath.keys()].filter((p) => byPath.get(p)!.some((e) => e.listening || e.type === 'dgram')));
    for (const p of filesIn((st) => st.isSocket())) wanted.add(p);
    const rows: LsRow[] = [];
    for (const p of [...wanted].sort()) {
      const row = ownerRow('unix-socket', p);
      if (!row) continue; // bound, but its file was removed
      const es = byPath.get(p) ?? [];
      const server = es.find((e) => e.listening) ?? es.find((e) => !e.connected);
      // Accepted connections carry the listener's path in /proc/net/unix.
      const connections = es.filter((e) => e.connected).length;
      const state = server ? (server.listening ? 'listening' : 'bound') : 'stale';
      row.count = connections;
      row.detail = state;
      row.extra = { state, type: server?.type ?? null };
      rows.push(row);
    }
    return rows;
  },
};
