// `ipckit mq create|send|recv|stat|rm` for POSIX queue names and System V
// keys/ids. Every command opens what it needs, does one thing and closes it.
import type { Command } from 'commander';
import { IpcError, errno } from '../core/errors.js';
import * as posix from '../mq/mq-posix.js';
import { fromId, get, type SysvQueue } from '../mq/mq-sysv.js';
import { integerOption as integer, modeOption, msOption, octal, parseBytes, parseTarget, removeEach, UsageError, sysvTarget, type Target } from './args.js';
import { readStdin, writeStdout } from './io.js';
import { targetCommand } from './ls.js';
import { MOUNT_HINT, posixMqProvider, sysvMqProvider } from './mq-ls.js';
import { formatPairs } from './table.js';
import { groupName, grp, sysvIdentityPairs, sysvOwnerPairs, sysvStatJson, userName, when, who } from './users.js';

/** An existing System V queue named by key or id. */
function queue(t: Target): SysvQueue {
  return sysvTarget(t, get, fromId, 'queue', 'ipckit ls');
}



/** A message as JSON: text when it is valid UTF-8, else base64. */
function messageJson(data: Buffer, rest: Record<string, number>): string {
  const text = data.toString('utf8');
  const utf8 = Buffer.from(text, 'utf8').equals(data);
  return `${JSON.stringify({ ...rest, size: data.length, encoding: utf8 ? 'utf8' : 'base64', data: utf8 ? text : data.toString('base64') })}\n`;
}

interface CreateOptions {
  maxMessages?: number;
  messageSize?: number;
  mode?: string;
  exclusive?: boolean;
}

async function create(text: string, o: CreateOptions): Promise<void> {
  const t = parseTarget(text, true);
  if (t.kind === 'posix') {
    using _q = posix.open(t.name, { create: true, exclusive: !!o.exclusive, mode: o.mode, maxMessages: o.maxMessages, messageSize: o.messageSize });
    return;
  }
  if (o.maxMessages !== undefined || o.messageSize !== undefined) {
    throw new UsageError('--max-messages/--message-size are for POSIX queues; a System V queue has a byte capacity (msg_qbytes, /proc/sys/kernel/msgmnb)');
  }
  if (t.kind === 'sysv-id') throw new UsageError('cannot create by id: the kernel picks ids; give a key or private');
  using q = get(t.kind === 'private' ? 'private' : t.key, { create: true, exclusive: !!o.exclusive, mode: o.mode });
  // The id is what `id:N`, ipcs and ipcrm use; for a private queue the only name it has.
  await writeStdout(`${q.id}\n`);
}

interface SendOptions {
  data?: string;
  priority?: number;
  type?: number;
  timeout?: number;
  nowait?: boolean;
}

async function send(text: string, o: SendOptions): Promise<void> {
  const t = parseTarget(text);
  const data = o.data !== undefined ? Buffer.from(o.data, 'utf8') : await readStdin('--data <string>');
  const timeout = o.nowait ? 0 : o.timeout;
  if (t.kind === 'posix') {
    if (o.type !== undefined) throw new UsageError('--type is for System V queues; POSIX queues have --priority');
    using q = posix.open(t.name, { writeOnly: true });
    await q.send(data, { priority: o.priority ?? 0, timeout });
    return;
  }
  if (o.priority !== undefined) throw new UsageError('--priority is for POSIX queues; System V queues have --type');
  using q = queue(t);
  await q.send(o.type ?? 1, data, { nowait: !!o.nowait, timeout: o.nowait ? undefined : timeout });
}

interface RecvOptions {
  type?: number;
  except?: boolean;
  timeout?: number;
  nowait?: boolean;
  maxSize?: number;
  truncate?: boolean;
  json?: boolean;
}

async function recv(text: string, o: RecvOptions): Promise<void> {
  const t = parseTarget(text);
  if (t.kind === 'posix') {
    if (o.type !== undefined || o.except) throw new UsageError('--type/--except select System V messages; a POSIX queue gives the highest priority first');
    using q = posix.open(t.name, { readOnly: true });
    const m = o.nowait ? q.tryReceive() : await q.receive({ timeout: o.timeout });
    if (!m) throw new IpcError(errno.EAGAIN, 'mq_receive', { path: t.name }, 'the queue is empty');
    await writeStdout(o.json ? messageJson(m.data, { priority: m.priority }) : m.data);
    return;
  }
  using q = queue(t);
  const m = await q.receive({ type: o.type ?? 0, except: !!o.except, nowait: !!o.nowait, timeout: o.timeout, maxSize: o.maxSize, noError: !!o.truncate });
  await writeStdout(o.json ? messageJson(m.data, { type: m.type }) : m.data);
}

async function stat(text: string, o: { json?: boolean }): Promise<void> {
  const t = parseTarget(text);
  if (t.kind === 'posix') {
    let a: posix.MqAttributes;
    {
      using q = posix.open(t.name, { readOnly: true });
      a = q.attributes();
    }
    const entry = posix.list()?.find((e) => e.name === t.name);
    if (o.json) {
      const { nonBlocking: _, ...attrs } = a;
      const extra = entry ? { bytes: entry.bytes, mode: octal(entry.mode), owner: userName(entry.uid), group: groupName(entry.gid), notifyPid: entry.notifyPid } : {};
      await writeStdout(`${JSON.stringify({ kind: 'posix-mq', name: t.name, ...attrs, ...extra }, null, 2)}\n`);
      return;
    }
    await writeStdout(
      formatPairs([
        ['name', t.name],
        ['kind', 'POSIX message queue'],
        ['messages', `${a.currentMessages} of ${a.maxMessages}`],
        ['message size', `${a.messageSize} bytes at most`],
        ...(entry
          ? ([
              ['bytes queued', String(entry.bytes)],
              ['mode', octal(entry.mode)],
              ['owner', who(entry.uid)],
              ['group', grp(entry.gid)],
              ['notify pid', entry.notifyPid ? String(entry.notifyPid) : '-'],
            ] as Array<[string, string]>)
          : ([['note', `mode/owner/bytes need the mqueue filesystem: ${MOUNT_HINT}`]] as Array<[string, string]>)),
      ]),
    );
    return;
  }
  using q = queue(t);
  const st = q.stat();
  if (o.json) {
    await writeStdout(sysvStatJson('sysv-mq', q.id, st));
    return;
  }
  await writeStdout(
    formatPairs([
      ...sysvIdentityPairs(q.id, st.key, 'System V message queue'),
      ['messages', String(st.qnum)],
      ['bytes queued', `${st.cbytes} of ${st.qbytes}`],
      ...sysvOwnerPairs(st),
      ['last send', `${when(st.stime)} (pid ${st.lspid || '-'})`],
      ['last receive', `${when(st.rtime)} (pid ${st.lrpid || '-'})`],
      ['ctime', when(st.ctime)],
    ]),
  );
}

function rm(texts: string[]): void {
  removeEach(texts, (t) => (t.kind === 'posix' ? posix.unlink(t.name) : queue(t).remove()));
}

export function register(program: Command): void {
  const mq = targetCommand(program, 'mq', 'message queues: POSIX (/name, priorities) and System V (key or id:N, typed messages)', [posixMqProvider, sysvMqProvider]);

  mq.command('create')
    .description('create a queue (prints the id of a System V queue)')
    .argument('<target>', "/name, a System V key, or 'private'")
    .option('--max-messages <n>', 'POSIX: capacity in messages (default /proc/sys/fs/mqueue/msg_default)', integer('max-messages', 1, 65536))
    .option('--message-size <bytes>', 'POSIX: largest message (default /proc/sys/fs/mqueue/msgsize_default)', (v: string) => parseBytes(v, 'message-size'))
    .option('--mode <octal>', 'permission bits of a new queue', modeOption, '600')
    .option('--exclusive', 'fail with EEXIST if it already exists')
    .action(create);

  mq.command('send')
    .description('send one message: --data, or all of stdin (binary-safe)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--data <string>', 'send this string (UTF-8) instead of reading stdin')
    .option('--priority <n>', 'POSIX priority 0-32767 (default 0)', integer('priority', 0, 32767))
    .option('--type <n>', 'System V message type > 0 (default 1)', integer('type', 1, Number.MAX_SAFE_INTEGER))
    .option('--timeout <ms>', 'wait at most this many ms for room (default: wait)', msOption)
    .option('--nowait', 'fail at once if the queue is full')
    .action(send);

  mq.command('recv')
    .description('receive one message to stdout (binary-safe), or as JSON')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--type <n>', 'System V: 0 first message, n first of type n, -n lowest type <= n', integer('type', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER))
    .option('--except', 'System V: with --type n > 0, the first message NOT of type n')
    .option('--timeout <ms>', 'wait at most this many ms for a message (default: wait)', msOption)
    .option('--nowait', 'fail at once if there is no message')
    .option('--max-size <bytes>', 'System V: largest message accepted (default msgmax)', (v: string) => parseBytes(v, 'max-size'))
    .option('--truncate', 'System V: cut a longer message to --max-size (MSG_NOERROR)')
    .option('--json', 'print {priority|type, size, encoding, data}')
    .action(recv);

  mq.command('stat')
    .description('show capacity, message count, mode and owner (System V: every msqid_ds field)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--json', 'print one JSON object')
    .action(stat);

  mq.command('rm')
    .description('remove queues: mq_unlink for /name, IPC_RMID for System V')
    .argument('<targets...>', '/name, a System V key, or id:N')
    .action(rm);
}
