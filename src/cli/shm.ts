// `ipckit shm create|write|read|stat|rm` for POSIX names and System V keys/ids.
// Every command opens what it needs, does one thing and closes it again
// (`using`), so nothing stays mapped or attached, and a failed create leaves
// nothing behind (the library removes what it made).
import type { Command } from 'commander';
import * as posix from '../shm/shm.js';
import { sysv, type SysvSegment } from '../shm/shm-sysv.js';
import { lengthOption, modeOption, octal, offsetOption, parseTarget, removeEach, sizeOption, UsageError, sysvTarget, type Target } from './args.js';
import { readStdin, writeStdout } from './io.js';
import { targetCommand } from './ls.js';
import { posixShmProvider, sysvShmProvider } from './shm-ls.js';
import { formatPairs } from './table.js';
import { groupName, grp, sysvIdentityPairs, sysvOwnerPairs, sysvStatJson, userName, when, who } from './users.js';

/** An existing System V segment named by key or id. */
function segment(t: Target): SysvSegment {
  return sysvTarget(t, sysv.get, sysv.fromId, 'segment', 'ipckit ls');
}


interface CreateOptions {
  size: number;
  mode?: string;
  exclusive?: boolean;
}

async function create(text: string, o: CreateOptions): Promise<void> {
  const t = parseTarget(text, true);
  if (t.kind === 'posix') {
    try {
      using _region = posix.open(t.name, { create: true, exclusive: !!o.exclusive, size: o.size, mode: o.mode });
    } catch (e) {
      // The command line is fine; the object that is there is not: a failure, not a usage error.
      if ((e as { code?: string }).code === 'ERR_IPCKIT_SIZE_MISMATCH') {
        throw new Error(`${(e as Error).message.split(';')[0]} (it already exists; create does not resize)`);
      }
      throw e;
    }
    return;
  }
  if (t.kind === 'sysv-id') throw new UsageError('cannot create by id: the kernel picks ids; give a key or private');
  const key = t.kind === 'private' ? 'private' : t.key;
  using seg = sysv.get(key, { create: true, exclusive: !!o.exclusive, size: o.size, mode: o.mode });
  // The id is what `id:N`, ipcs and ipcrm use; for a private segment the only name it has.
  await writeStdout(`${seg.id}\n`);
}

async function write(text: string, o: { data?: string; offset?: number }): Promise<void> {
  const t = parseTarget(text);
  // Read all input first, so the object is not held open while a pipe fills.
  const data = o.data !== undefined ? Buffer.from(o.data, 'utf8') : await readStdin('--data <string>');
  if (t.kind === 'posix') {
    using region = posix.open(t.name);
    region.write(data, o.offset ?? 0);
  } else {
    using seg = segment(t);
    seg.attach();
    seg.write(data, o.offset ?? 0);
  }
}

async function read(text: string, o: { offset?: number; length?: number }): Promise<void> {
  const t = parseTarget(text);
  let bytes: Buffer;
  if (t.kind === 'posix') {
    using region = posix.open(t.name, { readOnly: true });
    bytes = region.read(o.offset ?? 0, o.length);
  } else {
    using seg = segment(t);
    seg.attach({ readOnly: true });
    bytes = seg.read(o.offset ?? 0, o.length);
  }
  await writeStdout(bytes);
}

async function stat(text: string, o: { json?: boolean }): Promise<void> {
  const t = parseTarget(text);
  if (t.kind === 'posix') {
    let st: posix.ShmStat;
    {
      using region = posix.open(t.name, { readOnly: true });
      st = region.stat();
    }
    if (o.json) {
      await writeStdout(
        `${JSON.stringify({ kind: 'posix-shm', name: t.name, ...st, mode: octal(st.mode), owner: userName(st.uid), group: groupName(st.gid) }, null, 2)}\n`,
      );
      return;
    }
    await writeStdout(
      formatPairs([
        ['name', t.name],
        ['kind', 'POSIX shared memory'],
        ['size', String(st.size)],
        ['mode', octal(st.mode)],
        ['owner', who(st.uid)],
        ['group', grp(st.gid)],
        ['inode', String(st.ino)],
        ['atime', when(st.atime)],
        ['mtime', when(st.mtime)],
        ['ctime', when(st.ctime)],
      ]),
    );
    return;
  }
  using seg = segment(t);
  const st = seg.stat();
  if (o.json) {
    await writeStdout(sysvStatJson('sysv-shm', seg.id, st));
    return;
  }
  const status = [st.markedForRemoval && 'marked for removal', st.locked && 'locked (SHM_LOCK)'].filter(Boolean).join(', ');
  await writeStdout(
    formatPairs([
      ...sysvIdentityPairs(seg.id, st.key, 'System V shared memory'),
      ['size', String(st.size)],
      ...sysvOwnerPairs(st),
      ['cpid', String(st.cpid)],
      ['lpid', String(st.lpid)],
      ['attaches', String(st.nattch)],
      ['atime', when(st.atime)],
      ['dtime', when(st.dtime)],
      ['ctime', when(st.ctime)],
      ['status', status || '-'],
    ]),
  );
}

function rm(texts: string[]): void {
  removeEach(texts, (t) => {
    if (t.kind === 'posix') {
      posix.unlink(t.name);
    } else {
      using seg = segment(t);
      seg.remove();
    }
  });
}

export function register(program: Command): void {
  const shm = targetCommand(program, 'shm', 'shared memory: POSIX objects (/name) and System V segments (key or id:N)', [posixShmProvider, sysvShmProvider]);

  shm
    .command('create')
    .description('create a shared memory object or segment (prints the id of a System V segment)')
    .argument('<target>', "/name, a System V key, or 'private'")
    .requiredOption('--size <bytes>', 'size, e.g. 4096, 4k, 1m', sizeOption)
    .option('--mode <octal>', 'permission bits of a new object', modeOption, '600')
    .option('--exclusive', 'fail with EEXIST if it already exists')
    .action(create);

  shm
    .command('write')
    .description('copy bytes into the object: --data, or all of stdin (binary-safe)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--data <string>', 'write this string (UTF-8) instead of reading stdin')
    .option('--offset <bytes>', 'where to start writing', offsetOption)
    .action(write);

  shm
    .command('read')
    .description('copy bytes out of the object to stdout (binary-safe)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--offset <bytes>', 'where to start reading', offsetOption)
    .option('--length <bytes>', 'how many bytes (default: to the end)', lengthOption)
    .action(read);

  shm
    .command('stat')
    .description('show size, mode, owner and times (System V: every shmid_ds field)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--json', 'print one JSON object')
    .action(stat);

  shm
    .command('rm')
    .description('remove objects: shm_unlink for /name, IPC_RMID for System V (gone once the last process detaches)')
    .argument('<targets...>', '/name, a System V key, or id:N')
    .action(rm);
}
