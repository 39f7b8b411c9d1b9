// Who may use a channel: the peer's credentials, as the kernel reports them
// for the Unix socket a local channel meets on (SO_PEERCRED), checked against
// the allowUids / allowGids options of listen() (which connectors to serve)
// and connect() (which listener to trust with our messages).
//
// This process's own user and root are always allowed: both can already
// read and write this process's memory (ptrace, /proc/PID/mem), so refusing
// them would protect nothing. Everyone else needs to be listed, or
// allowUids: 'any'.
import { IpcError, typeError, errno } from '../core/errors.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface AccessOptions {
  /** Users (besides this process's own and root) allowed at the other end, or 'any'. Default: none. */
  allowUids?: readonly number[] | 'any';
  /** Groups whose members (by the peer's primary gid) are allowed at the other end. Default: none. */
  allowGids?: readonly number[];
}

function checkIds(value: unknown, what: string): readonly number[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((id) => !Number.isInteger(id) || id < 0 || id > 0xffffffff)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be an array of numeric ids${what.endsWith('Uids') ? " or 'any'" : ''}`);
  }
  return value as number[];
}

export class Access {
  readonly #any: boolean;
  readonly #uids: readonly number[];
  readonly #gids: readonly number[];

  constructor(any: boolean, uids: readonly number[], gids: readonly number[]) {
    this.#any = any;
    this.#uids = uids;
    this.#gids = gids;
  }

  /** From options.allowUids / options.allowGids (validated). */
  static from(o: AccessOptions): Access {
    const any = o.allowUids === 'any';
    const uids = any ? [] : (checkIds(o.allowUids, 'options.allowUids') ?? []);
    const gids = checkIds(o.allowGids, 'options.allowGids') ?? [];
    return new Access(any, uids, gids);
  }

  /** Whether options asked for anything beyond the default. */
  static given(o: AccessOptions): boolean {
    return o.allowUids !== undefined || o.allowGids !== undefined;
  }

  /** Whether anyone besides this user and root is admitted (a socket file must then let them connect). */
  get widened(): boolean {
    return this.#any || this.#uids.length > 0 || this.#gids.length > 0;
  }

  allows(cred: PeerCredentials): boolean {
    if (this.#any) return true;
    const self = process.geteuid?.() ?? -1;
    return cred.uid === 0 || cred.uid === self || this.#uids.includes(cred.uid) || this.#gids.includes(cred.gid);
  }

  /** The IpcError EACCES a refused side sees. */
  static refused(url: string, syscall: string, detail: string): IpcError {
    return new IpcError(errno.EACCES, syscall, { path: url }, detail);
  }
}
