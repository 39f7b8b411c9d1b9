// Unix socket addresses: a filesystem path, or a name in Linux's abstract
// namespace (no file; gone when the last socket closes). On the wire to the
// native layer an address is the raw sun_path bytes: the path without its
// NUL, or NUL + the abstract name. Like Node's net, a string starting with
// '\0' also means an abstract name.
import { rangeError, typeError } from '../core/errors.js';
import { show } from '../core/validate.js';

/** A socket path, or `{ abstract: 'name' }` for the abstract namespace (`'\0name'` works too). */
export type UnixAddress = string | { abstract: string };

/** sun_path is 108 bytes: 107 for a path plus its NUL, or NUL plus 107 for an abstract name. */
const MAX_ADDRESS_BYTES = 107;

export interface EncodedAddress {
  /** sun_path bytes for the native layer. */
  raw: Buffer;
  /** The filesystem path (absent for abstract names). */
  path?: string;
  /** For messages and errors: the path, or '@name' as ss(8) and socat print it. */
  display: string;
}

export function encodeAddress(address: unknown, what = 'address'): EncodedAddress {
  let abstract: string | undefined;
  let path: string | undefined;
  if (typeof address === 'string') {
    if (address.startsWith('\0')) abstract = address.slice(1);
    else path = address;
  } else if (typeof address === 'object' && address !== null && typeof (address as { abstract?: unknown }).abstract === 'string') {
    abstract = (address as { abstract: string }).abstract;
  } else {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a socket path or { abstract: 'name' }, got ${show(address)}`);
  }
  if (path !== undefined) {
    if (path.length === 0 || path.includes('\0')) {
      throw typeError('ERR_IPCKIT_INVALID_NAME', `${what} must be a non-empty path without NUL bytes`);
    }
    const raw = Buffer.from(path, 'utf8');
    if (raw.length > MAX_ADDRESS_BYTES) {
      throw rangeError(
        'ERR_IPCKIT_INVALID_NAME',
        `Unix socket path is ${raw.length} bytes, but sun_path holds at most ${MAX_ADDRESS_BYTES} (plus NUL): ` +
          `use a shorter or relative path, or an abstract name ({ abstract: 'name' }): '${path}'`,
      );
    }
    return { raw, path, display: path };
  }
  const name = Buffer.from(abstract!, 'utf8');
  if (name.length > MAX_ADDRESS_BYTES) {
    throw rangeError('ERR_IPCKIT_INVALID_NAME', `abstract socket name is ${name.length} bytes, at most ${MAX_ADDRESS_BYTES} fit in sun_path`);
  }
  return { raw: Buffer.concat([Buffer.alloc(1), name]), display: `@${abstract}` };
}

/** Kernel sun_path bytes back to a string: the path, or '\0name' for an abstract name; undefined when unnamed. */
export function decodeAddress(raw: Buffer | undefined): string | undefined {
  if (raw === undefined || raw.length === 0) return undefined;
  return raw.toString('utf8');
}
