export interface IpcObject {
  /** `/dev/shm/NAME`, `/dev/mqueue/NAME`, or `sysv-KIND key=0x… id=N`. */
  name: string;
  /** A file in /dev/shm or /dev/mqueue, or a System V object. */
  kind: 'posix' | 'sysv-shm' | 'sysv-sem' | 'sysv-msg';
  /** The System V identifier. */
  id?: number;
  /** Pids the kernel recorded for the object (may be empty). */
  pids: number[];
}
export function ipcObjects(): IpcObject[];
