// A listener's socket file: removed on close only while it is still ours.
import { errno } from '../core/errors.js';
import { native } from '../core/native.js';
import { forget, ownByName } from '../core/owned.js';
import { encodeAddress } from './unix-address.js';

const S_IFSOCK = 0o140000;

// Socket files this process serves, removed at exit if their servers were not
// closed (a crash still leaves them; the next listen() reclaims them).
const liveFiles = new Map<string, { dev: number; ino: number }>();
process.on('exit', () => {
  for (const [path, id] of liveFiles) {
    try {
      native.unixUnlinkIfSame(path, id.dev, id.ino);
    } catch {
      /* best effort at exit */
    }
  }
});

/** Our socket file at `path`, removed on close only if it is still ours (same inode). */
export class SocketFile {
  readonly path: string;
  readonly #dev: number;
  readonly #ino: number;
  readonly #owned: boolean;
  #removed = false;

  /** `owned`: also removed at a fatal signal and at process exit from any thread (src/core/owned.ts). */
  constructor(path: string, dev: number, ino: number, owned = false) {
    this.path = path;
    this.#dev = dev;
    this.#ino = ino;
    this.#owned = owned;
    liveFiles.set(path, { dev, ino });
    if (owned) ownByName('file', path, { path, dev, ino, type: S_IFSOCK });
  }

  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    liveFiles.delete(this.path);
    if (this.#owned) forget('file', this.path);
    try {
      native.unixUnlinkIfSame(this.path, this.#dev, this.#ino);
    } catch {
      /* already gone */
    }
  }

  /** Forget it: close() will leave the file where it is (an owned one still goes at process exit). */
  keep(): void {
    this.#removed = true;
    liveFiles.delete(this.path);
  }
}

/** Removes the socket file at `path` only if it is still the file (dev, ino) named; false when another took its place. */
export function unlinkIfSame(path: string, dev: number, ino: number): boolean {
  return native.unixUnlinkIfSame(path, dev, ino);
}

/** Whether connect() to the socket file at `path` is refused (nobody bound, in any network namespace). */
export function connectRefused(path: string): boolean {
  let fd = -1;
  try {
    const addr = encodeAddress(path);
    fd = native.unixSocket(native.pipeConstants.SOCK_STREAM);
    native.unixConnect(fd, addr.raw);
    return false;
  } catch (e) {
    return e instanceof Error && Math.abs((e as { errno?: number }).errno ?? 0) === errno.ECONNREFUSED;
  } finally {
    if (fd >= 0) native.fdClose(fd);
  }
}
