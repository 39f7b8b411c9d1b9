// The kernel limits IPC runs into, with current use where the kernel lets
// one count it: what `ipckit limits` prints. Everything comes from /proc
// (the same numbers ipcs -l and lsipc show), except the RLIMIT_MSGQUEUE use,
// which the kernel does not publish: it is computed from this user's queues.
import { readFileSync } from 'node:fs';
import { rlimit } from '../core/limits.js';
import * as mq from '../mq/mq-posix.js';
import { readSysvTable } from '../core/sysv-key.js';
import { PAGE_SIZE } from '../shm/mmap.js';

export interface LimitRow {
  /** Section: posix-mq, sysv-shm, sysv-sem, sysv-msg, files. */
  group: string;
  /** As the kernel names it: the /proc/sys file, an RLIMIT_*, or a constant. */
  name: string;
  description: string;
  /** The limit (the soft one for rlimits): a number, 'unlimited', or null when it could not be read. Above 2^53 a bigint. */
  limit: number | bigint | 'unlimited' | null;
  /** rlimits: the hard limit, the most the soft one may be raised to without privilege. */
  hard?: number | bigint | 'unlimited' | null;
  /** Current use, in `unit`; null when it could not be counted; absent where "use" means nothing (a per-call maximum). */
  used?: number | null;
  unit: string;
  /** Where the limit is read (or set). */
  source: string;
}

export interface LimitGroup {
  group: string;
  title: string;
}

export const GROUPS: LimitGroup[] = [
  { group: 'posix-mq', title: 'POSIX message queues' },
  { group: 'sysv-shm', title: 'System V shared memory' },
  { group: 'sysv-sem', title: 'System V semaphores' },
  { group: 'sysv-msg', title: 'System V message queues' },
  { group: 'files', title: 'Descriptors and sockets' },
];

/** A number from a /proc file (first field unless `field`), bigint beyond 2^53; null if unreadable. */
function proc(path: string, field = 0): number | bigint | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const raw = text.trim().split(/\s+/)[field];
  if (raw === undefined || !/^\d+$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : BigInt(raw);
}

/**
 * Bytes charged to this user for POSIX queues: the kernel charges a queue
 * to the user that created it, who owns its file. null when the mqueue
 * filesystem is not mounted (no way to list queues) or a queue of ours
 * could not be opened to read its attributes.
 */
function msgqueueUse(queues: mq.MqListEntry[] | null): number | null {
  if (!queues) return null;
  const me = process.geteuid?.() ?? -1;
  let total = 0;
  for (const q of queues.filter((e) => e.uid === me)) {
    try {
      using handle = mq.open(q.name, { readOnly: true });
      const a = handle.attributes();
      total += mq.queueBytes(a.maxMessages, a.messageSize);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') continue; // removed while we counted
      return null;
    }
  }
  return total;
}

function sysvCount(kind: 'shm' | 'sem' | 'msg', sum?: string, per: (n: number) => number = (n) => n): { objects: number | null; total: number | null } {
  try {
    const rows = readSysvTable(kind, sum ? [sum] : []);
    return { objects: rows.length, total: sum ? rows.reduce((acc, r) => acc + per(r.num(sum)), 0) : null };
  } catch {
    return { objects: null, total: null };
  }
}

/** Every limit, in display order. */
export function readLimits(): LimitRow[] {
  const MQ = '/proc/sys/fs/mqueue';
  const K = '/proc/sys/kernel';
  const queues = mq.list();
  const shm = sysvCount('shm', 'size', (bytes) => Math.ceil(bytes / PAGE_SIZE));
  const sem = sysvCount('sem', 'nsems');
  const msg = sysvCount('msg');
  // /proc/sys/kernel/sem is "semmsl semmns semopm semmni".
  const SEM = `${K}/sem`;
  const msgqueue = rlimit('Max msgqueue size');
  const nofile = rlimit('Max open files');
  return [
    { group: 'posix-mq', name: 'queues_max', description: 'queues on the system (privileged processes may exceed it)', limit: proc(`${MQ}/queues_max`), used: queues ? queues.length : null, unit: 'queues', source: `${MQ}/queues_max` },
    { group: 'posix-mq', name: 'msg_max', description: 'messages per queue, the most an unprivileged mq_open may ask for', limit: proc(`${MQ}/msg_max`), unit: 'messages', source: `${MQ}/msg_max` },
    { group: 'posix-mq', name: 'msgsize_max', description: 'bytes per message, the most an unprivileged mq_open may ask for', limit: proc(`${MQ}/msgsize_max`), unit: 'bytes', source: `${MQ}/msgsize_max` },
    { group: 'posix-mq', name: 'msg_default', description: 'messages per queue when mq_open is given no attributes', limit: proc(`${MQ}/msg_default`), unit: 'messages', source: `${MQ}/msg_default` },
    { group: 'posix-mq', name: 'msgsize_default', description: 'bytes per message when mq_open is given no attributes', limit: proc(`${MQ}/msgsize_default`), unit: 'bytes', source: `${MQ}/msgsize_default` },
    { group: 'posix-mq', name: 'RLIMIT_MSGQUEUE', description: "bytes of queues this user may have (capacity plus the kernel's bookkeeping)", limit: msgqueue.soft, hard: msgqueue.hard, used: msgqueueUse(queues), unit: 'bytes', source: '/proc/self/limits (ulimit -q)' },
    { group: 'sysv-shm', name: 'shmmax', description: 'bytes per segment', limit: proc(`${K}/shmmax`), unit: 'bytes', source: `${K}/shmmax` },
    { group: 'sysv-shm', name: 'shmall', description: `pages (${PAGE_SIZE} bytes each) in all segments together`, limit: proc(`${K}/shmall`), used: shm.total, unit: 'pages', source: `${K}/shmall` },
    { group: 'sysv-shm', name: 'shmmni', description: 'segments on the system', limit: proc(`${K}/shmmni`), used: shm.objects, unit: 'segments', source: `${K}/shmmni` },
    { group: 'sysv-sem', name: 'semmsl', description: 'semaphores per set', limit: proc(SEM, 0), unit: 'semaphores', source: `${SEM} (1st field)` },
    { group: 'sysv-sem', name: 'semmns', description: 'semaphores in all sets together', limit: proc(SEM, 1), used: sem.total, unit: 'semaphores', source: `${SEM} (2nd field)` },
    { group: 'sysv-sem', name: 'semopm', description: 'operations per semop call', limit: proc(SEM, 2), unit: 'operations', source: `${SEM} (3rd field)` },
    { group: 'sysv-sem', name: 'semmni', description: 'semaphore sets on the system', limit: proc(SEM, 3), used: sem.objects, unit: 'sets', source: `${SEM} (4th field)` },
    { group: 'sysv-sem', name: 'SEMVMX', description: 'largest semaphore value', limit: 32767, unit: 'value', source: 'kernel constant (include/uapi/linux/sem.h)' },
    { group: 'sysv-msg', name: 'msgmax', description: 'bytes per message', limit: proc(`${K}/msgmax`), unit: 'bytes', source: `${K}/msgmax` },
    { group: 'sysv-msg', name: 'msgmnb', description: 'bytes per queue (the capacity of a new queue)', limit: proc(`${K}/msgmnb`), unit: 'bytes', source: `${K}/msgmnb` },
    { group: 'sysv-msg', name: 'msgmni', description: 'queues on the system', limit: proc(`${K}/msgmni`), used: msg.objects, unit: 'queues', source: `${K}/msgmni` },
    { group: 'files', name: 'RLIMIT_NOFILE', description: 'open descriptors per process (every socket, FIFO, queue and shm object open)', limit: nofile.soft, hard: nofile.hard, unit: 'descriptors', source: '/proc/self/limits (ulimit -n)' },
    { group: 'files', name: 'file-max', description: 'open files on the system', limit: proc('/proc/sys/fs/file-max'), used: numberOrNull(proc('/proc/sys/fs/file-nr')), unit: 'files', source: '/proc/sys/fs/file-max (use: file-nr)' },
    { group: 'files', name: 'somaxconn', description: 'connections waiting to be accepted per listening socket', limit: proc('/proc/sys/net/core/somaxconn'), unit: 'connections', source: '/proc/sys/net/core/somaxconn' },
    { group: 'files', name: 'wmem_default', description: 'socket send buffer; a unix-seqpacket message is at most this minus 32 bytes', limit: proc('/proc/sys/net/core/wmem_default'), unit: 'bytes', source: '/proc/sys/net/core/wmem_default' },
  ];
}

function numberOrNull(v: number | bigint | null): number | null {
  return typeof v === 'number' ? v : null;
}
