// ipckit: Linux IPC as real kernel objects for Node.js.
import * as shmPosix from './shm.js';
import { mmap } from './mmap.js';

export { IpcError, type IpcLimit, type IpcMisuseError } from './errors.js';
export { SharedRegion } from './region.js';
export type { FdRegion, ShmRegion, ShmOpenOptions, ShmStat, AnonymousOptions, FromFdOptions } from './shm.js';
export type { SysvSegment, SysvShmStat, SysvShmGetOptions, AttachOptions } from './shm-sysv.js';
export type { MappedFile, MmapFileOptions } from './mmap.js';
export { ftok, type SysvKey } from './sysv-key.js';

/** Shared memory: POSIX named objects, anonymous memfd regions, descriptors, and System V segments. */
export const shm = {
  open: shmPosix.open,
  unlink: shmPosix.unlink,
  anonymous: shmPosix.anonymous,
  fromFd: shmPosix.fromFd,
  sysv: shmPosix.sysv,
} as const;

export { mmap };
