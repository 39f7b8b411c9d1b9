// Channel URLs: the transport is a choice in a string.
import { typeError } from '../errors.js';

export type Endpoint =
  | { scheme: 'shm'; name: string }
  | { scheme: 'unix'; path: string }
  | { scheme: 'unix-abstract'; name: string }
  | { scheme: 'tcp'; host: string; port: number }
  | { scheme: 'pipe'; fd: number }
  | { scheme: 'mq'; name: string }
  | { scheme: 'sysvmq'; name: string }
  | { scheme: 'unix-seqpacket'; path: string }
  | { scheme: 'unix-seqpacket-abstract'; name: string }
  | { scheme: 'fifo'; path: string };

export const SCHEMES = ['shm', 'unix', 'unix-abstract', 'tcp', 'pipe', 'mq', 'sysvmq', 'unix-seqpacket', 'unix-seqpacket-abstract', 'fifo'] as const;

function bad(url: string, why: string): TypeError {
  return typeError('ERR_IPCKIT_INVALID_URL', `invalid channel URL '${url}': ${why}`);
}

export function parseUrl(url: string): Endpoint {
  if (typeof url !== 'string') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'url must be a string such as shm:NAME or unix:/path');
  const colon = url.indexOf(':');
  if (colon < 0) throw bad(url, `no scheme (one of ${SCHEMES.join(', ')})`);
  const scheme = url.slice(0, colon);
  const rest = url.slice(colon + 1);
  switch (scheme) {
    case 'shm':
    case 'unix-abstract':
    case 'unix-seqpacket-abstract': {
      const name = rest.replace(/^\/\//, '');
      if (!name || name.includes('\0') || Buffer.byteLength(name) > 90) throw bad(url, 'the name must be 1..90 bytes without NUL');
      return { scheme, name };
    }
    case 'unix-seqpacket': {
      const path = rest.replace(/^\/\/(?=\/)/, '');
      if (!path || path.includes('\0')) throw bad(url, 'needs a path, e.g. unix-seqpacket:/tmp/app.sock');
      if (Buffer.byteLength(path) > 107) throw bad(url, 'socket paths are limited to 107 bytes (sockaddr_un)');
      return { scheme, path };
    }
    case 'fifo': {
      const path = rest.replace(/^\/\/(?=\/)/, '');
      if (!path || path.includes('\0')) throw bad(url, 'needs a path, e.g. fifo:/tmp/app.fifo');
      return { scheme, path };
    }
    case 'unix': {
      const path = rest.replace(/^\/\/(?=\/)/, '');
      if (!path || path.includes('\0')) throw bad(url, 'needs a path, e.g. unix:/tmp/app.sock');
      if (Buffer.byteLength(path) > 107) throw bad(url, 'socket paths are limited to 107 bytes (sockaddr_un)');
      return { scheme, path };
    }
    case 'tcp': {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        throw bad(url, 'expected tcp://host:port');
      }
      const port = Number(u.port);
      if (!u.hostname || !Number.isInteger(port) || port < 0 || port > 65535 || u.port === '') throw bad(url, 'expected tcp://host:port');
      return { scheme, host: u.hostname.replace(/^\[|\]$/g, ''), port };
    }
    case 'mq': {
      // mq:/NAME, as POSIX queue names are written; the name is the rendezvous.
      const name = rest.replace(/^\/+/, '');
      if (!name || name.includes('\0') || name.includes('/') || Buffer.byteLength(name) > 90) throw bad(url, 'expected mq:/NAME (1..90 bytes, no further slash)');
      return { scheme, name };
    }
    case 'sysvmq': {
      // sysvmq:KEY — any name (a key such as 0x1234 reads naturally); it is the rendezvous.
      const name = rest.replace(/^\/+/, '');
      if (!name || name.includes('\0') || name.includes('/') || Buffer.byteLength(name) > 90) throw bad(url, 'expected sysvmq:KEY (1..90 bytes, no slash)');
      return { scheme, name };
    }
    case 'pipe': {
      const fdText = rest.replace(/^\/\//, '') || process.env.IPCKIT_CHANNEL_FD || '3';
      const fd = Number(fdText);
      if (!Number.isInteger(fd) || fd < 0) throw bad(url, 'expected pipe: or pipe:FD');
      return { scheme, fd };
    }
    default:
      throw bad(url, `unknown scheme '${scheme}' (one of ${SCHEMES.join(', ')})`);
  }
}
