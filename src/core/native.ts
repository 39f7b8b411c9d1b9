// Loads the N-API addon built by `npm install` (scripts/build-native.mjs).
// Each worker thread gets its own copy of these exports and its own state.
import { createRequire } from 'node:module';

export interface NativeMapping {
  buffer: SharedArrayBuffer;
  /** Opaque: owned by the mapping record in native/shm_mapping.c. */
  handle: object;
}

/** struct ipc_perm, as the System V stat calls return it (the start of shmid_ds, semid_ds, msqid_ds). */
export interface IpcPermDs {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
  seq: number;
}

interface ShmidDs extends IpcPermDs {
  size: number;
  atime: number;
  dtime: number;
  ctime: number;
  cpid: number;
  lpid: number;
  nattch: number;
}

interface NativeWaitHandle {
  promise: Promise<number>;
  id: number;
}

interface SemidDs extends IpcPermDs {
  nsems: number;
  otime: number;
  ctime: number;
}

/**
 * The addon's exports (test/native-names.test.ts keeps this list and the
 * addon's equal). Names are <mechanism>[Sysv]<Verb>: shmOpen, shmSysvGet,
 * semSysvOpAsync, mqSysvSendSync; constants are <mechanism>[Sysv]Constants,
 * and sysvConstants holds what every System V mechanism shares.
 */
export interface Native {
  mappingDetach(handle: object): void;
  /** A plain ArrayBuffer over the same mapped range (bulk copies run at memcpy speed through it). */
  mappingAlias(handle: object): ArrayBuffer;
  mappingSync(handle: object, offset: number, length: number, async: boolean): void;

  shmConstants: {
    MFD_CLOEXEC: number;
    MFD_ALLOW_SEALING: number;
    PAGE_SIZE: number;
    F_SEAL_SEAL: number;
    F_SEAL_SHRINK: number;
    F_SEAL_GROW: number;
    F_SEAL_WRITE: number;
    F_SEAL_FUTURE_WRITE: number;
    TMPFS_MAGIC: number;
    MQUEUE_MAGIC: number;
  };
  shmOpen(name: string, oflag: number, mode: number): number;
  shmUnlink(name: string): void;
  memfdCreate(name: string, flags: number): number;
  mappingCreate(fd: number, length: number, offset: number, writable: boolean, shared: boolean): NativeMapping;
  fdAccessMode(fd: number): number;
  memfdSeal(fd: number, seals: number): void;
  /** fstat + fstatfs + F_GET_SEALS (-1: cannot be sealed) + access mode of a descriptor. */
  fdInspect(fd: number): { mode: number; size: number; uid: number; gid: number; fsType: number; seals: number; access: number };

  sysvConstants: { IPC_PRIVATE: number; IPC_CREAT: number; IPC_EXCL: number };
  sysvFtok(path: string, projId: number): number;
  shmSysvConstants: { SHM_DEST: number; SHM_LOCKED: number };
  shmSysvGet(key: number, size: number, flags: number): number;
  shmSysvAttach(id: number, readOnly: boolean): NativeMapping;
  shmSysvStat(id: number): ShmidDs;
  shmSysvSet(id: number, uid: number, gid: number, mode: number): void;
  shmSysvRemove(id: number): void;

  pipeConstants: { SOCK_STREAM: number; SOCK_DGRAM: number; SOCK_SEQPACKET: number; PIPE_BUF: number };
  pipeCreate(nonBlocking: boolean): [number, number];
  socketpairCreate(type: number, nonBlocking: boolean): [number, number];
  fdSetNonBlocking(fd: number, on: boolean): void;
  fdClose(fd: number): void;
  pipeGetCapacity(fd: number): number;
  pipeSetCapacity(fd: number, bytes: number): number;

  fifoCreate(path: string, mode: number): void;
  fifoOpenAsync(path: string, flags: number): NativeWaitHandle;

  unixConstants: { SUN_PATH_MAX: number; MAX_FDS: number; SHUT_RD: number; SHUT_WR: number; SHUT_RDWR: number };
  unixSocket(type: number): number;
  /** 0, or EADDRINUSE when the address is taken; takes no lock. */
  unixBind(fd: number, addr: Buffer): number;
  /**
   * After unixBind() found a filesystem path taken: status 0 (bound; close
   * lockFd, the directory's flock or -1, after listen()), EWOULDBLOCK (a stale
   * socket file, and another process holds the directory lock) or EADDRINUSE
   * (a live socket or not a socket).
   */
  unixReclaim(fd: number, addr: Buffer): { status: number; lockFd: number };
  unixUnlinkIfSame(path: string, dev: number, ino: number): boolean;
  unixListen(fd: number, backlog: number): void;
  unixConnect(fd: number, addr: Buffer): number;
  unixAccept(fd: number): number;
  unixSend(fd: number, data: Uint8Array, fds: number[] | null, addr: Buffer | null): number;
  unixRecv(
    fd: number,
    scratch: Buffer,
  ): { length: number; fds: number[]; from?: Buffer; truncated: boolean; fdsTruncated: boolean } | null;
  unixPeerCred(fd: number): { pid: number; uid: number; gid: number };
  unixName(fd: number, peer: boolean): Buffer | undefined;
  unixSocketType(fd: number): number;
  unixShutdown(fd: number, how: number): void;

  waiterCancel(id: number): boolean;
  waiterCancelAll(): number;
  waiterStats(): { threads: number; idle: number; pending: number };

  futexWait(array: Int32Array, index: number, expected: number, timeoutNs: number): number;
  futexWaitAsync(array: Int32Array, index: number, expected: number, timeoutNs: number): NativeWaitHandle;
  futexNotify(array: Int32Array, index: number, count: number): number;
  futexUringOpen(): number;
  futexUringWait(array: Int32Array, index: number, expected: number, timeoutNs: number): NativeWaitHandle;
  futexUringCancel(id: number): boolean;
  futexUringReap(): number;

  semConstants: { SEM_VALUE_MAX: number; SIZEOF_SEM_T: number; ALIGNOF_SEM_T: number; O_CREAT: number; O_EXCL: number };
  semOpen(name: string, oflag: number, mode: number, value: number): object;
  semInMemory(view: Uint8Array, init: number): object;
  semClose(handle: object): void;
  semUnlink(name: string): void;
  semPost(handle: object): void;
  semTryWait(handle: object): boolean;
  semGetValue(handle: object): number;
  semWaitSync(handle: object, timeoutNs: number): number;
  semWaitAsync(handle: object, timeoutNs: number, keepAlive: object): NativeWaitHandle;

  semSysvConstants: { SEM_UNDO: number; IPC_NOWAIT: number; SEMVMX: number };
  semSysvGet(key: number, nsems: number, flags: number): number;
  semSysvOpSync(id: number, ops: Int32Array, timeoutNs: number): number;
  semSysvOpAsync(id: number, ops: Int32Array, timeoutNs: number): NativeWaitHandle;
  semSysvGetVal(id: number, index: number): number;
  semSysvSetVal(id: number, index: number, value: number): void;
  semSysvGetAll(id: number): number[];
  semSysvSetAll(id: number, values: number[]): void;
  semSysvGetPid(id: number, index: number): number;
  semSysvGetNcnt(id: number, index: number): number;
  semSysvGetZcnt(id: number, index: number): number;
  semSysvStat(id: number): SemidDs;
  semSysvSet(id: number, uid: number, gid: number, mode: number): void;
  semSysvRemove(id: number): void;

  mutexConstants: { SIZE: number; ALIGN: number; robustOffset: number };
  mutexTryLock(words: Int32Array, waited: boolean): number;
  mutexLockSync(words: Int32Array, timeoutNs: number): number;
  mutexUnlock(words: Int32Array): void;
  mutexState(words: Int32Array): { owner: number; ownerDied: boolean; waiters: boolean };
  mutexThreadId(): number;

  mqConstants: { O_NONBLOCK: number; MQ_PRIO_MAX: number; NOTIFY_WOKENUP: number; NOTIFY_REMOVED: number };
  mqOpen(name: string, oflag: number, mode: number, maxMessages: number, messageSize: number): number;
  mqClose(fd: number): void;
  mqUnlink(name: string): void;
  mqGetattr(fd: number): MqAttr;
  mqTrySend(fd: number, data: ArrayBufferView, priority: number): boolean;
  mqSendMany(fd: number, data: ArrayBufferView[], priority: number, start: number): number;
  mqTryReceive(fd: number, messageSize: number): MqMessage | null;
  mqReceiveMany(fd: number, messageSize: number, max: number): MqMessage[];
  mqSendSync(fd: number, data: ArrayBufferView, priority: number, timeoutNs: number): void;
  mqReceiveSync(fd: number, messageSize: number, timeoutNs: number): MqMessage;
  mqNotifySocket(): number;
  mqNotify(fd: number, socket: number): void;
  mqNotifyRead(socket: number): number[];

  mqSysvConstants: { MSG_EXCEPT: number; MSG_NOERROR: number; LONG_BYTES: number };
  mqSysvGet(key: number, flags: number): number;
  mqSysvTrySend(id: number, type: number, data: ArrayBufferView): boolean;
  mqSysvSendMany(id: number, type: number, data: ArrayBufferView[], start: number): number;
  mqSysvSendSync(id: number, type: number, data: ArrayBufferView, timeoutNs: number): void;
  mqSysvSendAsync(id: number, type: number, data: ArrayBufferView, timeoutNs: number): NativeWaitHandle;
  mqSysvTryReceive(id: number, maxSize: number, type: number, flags: number): MsgMessage | null;
  mqSysvReceiveMany(id: number, maxSize: number, type: number, flags: number, max: number): MsgMessage[];
  mqSysvReceiveSync(id: number, maxSize: number, type: number, flags: number, timeoutNs: number): MsgMessage;
  mqSysvReceiveAsync(id: number, maxSize: number, type: number, flags: number, timeoutNs: number, buffer: Buffer): NativeWaitHandle;
  mqSysvStat(id: number): MsqidDs;
  mqSysvSet(id: number, uid: number, gid: number, mode: number, qbytes: number): void;
  mqSysvRemove(id: number): void;
  pollerConstants: { READABLE: number; WRITABLE: number; DISCONNECT: number; PRIORITIZED: number };
  pollerStart(fd: number, events: number, callback: (errno: number, events: number) => void): object;
  pollerUpdate(handle: object, events: number): void;
  pollerRef(handle: object, keepAlive: boolean): void;
  pollerStop(handle: object): void;

  signalConstants: {
    names: Record<string, number>;
    codes: Record<string, number>;
    SIGRTMIN: number;
    SIGRTMAX: number;
    NSIG: number;
  };
  signalMaskThreads(block: number[], unblock: number[], avoid: number[]): ThreadMaskReport;
  signalfdCreate(signals: number[]): number;
  signalfdSetMask(fd: number, signals: number[]): void;
  signalfdRead(fd: number, max: number, chain: number[]): RawSignalInfo[];
  signalDiscard(signal: number): number;
  signalPending(): number[];
  signalSend(pid: number, signal: number, hasValue: boolean, value: number): boolean;
  pidfdOpen(pid: number): number;
  pidfdSend(fd: number, signal: number, hasValue: boolean, value: number): boolean;

  /** Sends one byte on a connected socket (MSG_DONTWAIT | MSG_NOSIGNAL); false when its buffer is full. */
  doorbellRing(fd: number): boolean;
  /** Bytes drained from the socket (at most 64 KiB), or -1 at end of file. */
  doorbellDrain(fd: number): number;
  /** 1 readable (a ring or end of file), -1 timeout; blocks the thread. */
  doorbellWait(fd: number, timeoutNs: number): number;
  ringCopy(dst: ArrayBufferView, dstOffset: number, src: ArrayBufferView, srcOffset: number, length: number): void;
  /** An ArrayBuffer holding src[srcOffset, srcOffset+length), in memory reused from collected ones (native/channel_ring.c). */
  ringTake(src: ArrayBufferView, srcOffset: number, length: number): ArrayBuffer;
  /** Detaches an ArrayBuffer of ringTake(): its block is reused at once. */
  ringGive(buffer: ArrayBuffer): void;
  ringYield(): void;
  /** The CPU the calling thread runs on (sched_getcpu), -1 if unknown. */
  ringCpu(): number;
  /** Moves the calling thread off `cpu` (affinity narrowed, then restored as it was): false if nothing changed. */
  ringLeaveCpu(cpu: number): boolean;

  /** Adds an object to the process-wide list removed at exit (native/core_owned.c): kind as in src/core/owned.ts. */
  ownedAdd(kind: number, name: string | null, check: string | null, dev: number, ino: number, type: number, id: number): void;
  /** Drops the list entries for an object removed early; returns how many. */
  ownedForget(kind: number, name: string | null, id: number): number;
  /** Removes every listed object now; returns how many were removed. */
  ownedRemoveAll(): number;
  ownedCount(): number;
}

interface MqAttr {
  flags: number;
  maxmsg: number;
  msgsize: number;
  curmsgs: number;
}

interface MqMessage {
  data: Buffer;
  priority: number;
}

interface MsgMessage {
  type: number;
  data: Buffer;
}

interface MsqidDs extends IpcPermDs {
  stime: number;
  rtime: number;
  ctime: number;
  cbytes: number;
  qnum: number;
  qbytes: number;
  lspid: number;
  lrpid: number;
}

interface ThreadMaskReport {
  /** Threads in the process when the last pass ran. */
  threads: number;
  /** Threads whose mask had to be changed (helper signals sent). */
  signalled: number;
  /** Threads that manage their own mask and do not block every requested signal. */
  uncovered: number[];
  /** False if some thread did not answer within 2 s. */
  complete: boolean;
  /** The helper signal used. */
  helper: number;
}

export interface RawSignalInfo {
  number: number;
  code: number;
  pid: number;
  uid: number;
  value: number;
  status: number;
}

function load(): Native {
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const candidate of ['../../build/Release/ipckit.node', '../../build/Debug/ipckit.node']) {
    try {
      return require(candidate) as Native;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'MODULE_NOT_FOUND') throw e;
      errors.push(candidate);
    }
  }
  throw new Error(
    `ipckit: the native addon is not built (looked for ${errors.join(', ')}). ` +
      'Run `npm install` in the ipckit package; it builds the addon with node-gyp against the local Node headers.',
  );
}

export const native: Native = load();
export const PAGE_SIZE = native.shmConstants.PAGE_SIZE;
