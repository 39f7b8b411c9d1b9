// Loads the N-API addon built by `npm install` (scripts/build-native.mjs).
// Each worker thread gets its own copy of these exports and its own state.
import { createRequire } from 'node:module';

export interface NativeMapping {
  buffer: SharedArrayBuffer;
  /** Opaque: owned by the mapping record in native/mapping.c. */
  handle: object;
}

export interface ShmidDs {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
  seq: number;
  size: number;
  atime: number;
  dtime: number;
  ctime: number;
  cpid: number;
  lpid: number;
  nattch: number;
}

export interface Native {
  mappingDetach(handle: object): void;
  mappingSync(handle: object, offset: number, length: number, async: boolean): void;

  shmConstants: { MFD_CLOEXEC: number; MFD_ALLOW_SEALING: number; PAGE_SIZE: number };
  shmOpen(name: string, oflag: number, mode: number): number;
  shmUnlink(name: string): void;
  memfdCreate(name: string, flags: number): number;
  mapFd(fd: number, length: number, offset: number, writable: boolean, shared: boolean): NativeMapping;
  fdAccessMode(fd: number): number;

  sysvConstants: { IPC_PRIVATE: number; IPC_CREAT: number; IPC_EXCL: number; SHM_DEST: number; SHM_LOCKED: number };
  shmget(key: number, size: number, flags: number): number;
  shmat(id: number, readOnly: boolean): NativeMapping;
  shmStat(id: number): ShmidDs;
  shmSet(id: number, uid: number, gid: number, mode: number): void;
  shmRemove(id: number): void;
  ftok(path: string, projId: number): number;

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

  doorbellPipe(): [number, number];
  eventfdCreate(initval: number): number;
  doorbellRing(fd: number, isEventfd: boolean): boolean;
  doorbellDrain(fd: number): number;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  ringCopy(dst: ArrayBufferView, dstOffset: number, src: ArrayBufferView, srcOffset: number, length: number): void;
  ringYield(): void;
}

export interface ThreadMaskReport {
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
  for (const candidate of ['../build/Release/ipckit.node', '../build/Debug/ipckit.node']) {
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
