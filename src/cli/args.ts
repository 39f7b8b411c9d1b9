// Parsing what a person types: sizes with k/m/g suffixes, offsets, and IPC
// targets (POSIX names, System V keys and ids). Shared by every mechanism's
// subcommands so `ipckit sem`, `ipckit mq`, ... accept the same spellings.
import { InvalidArgumentError } from 'commander';
import { IpcError } from '../core/errors.js';
import { parseKey } from '../core/sysv-key.js';
import { checkMode, checkPosixName } from '../core/validate.js';

/** A mistake on the command line; printed as its message and a hint, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Runs a library check on command-line text: its complaint is a usage error. */
function asUsage<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** '4096', '4k', '1m', '2G' (binary units; a trailing 'b' or 'ib' is allowed) → bytes. */
export function parseBytes(text: string, what: string): number {
  const m = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const n = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${what} must be a byte count like 4096, 4k or 1m, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** commander option parsers (they receive the raw text). */
export const sizeOption = (text: string): number => parseBytes(text, 'size');
export const offsetOption = (text: string): number => parseBytes(text, 'offset');
export const lengthOption = (text: string): number => parseBytes(text, 'length');

/** A commander parser for an integer option from `min` to `max`. */
export const integerOption = (what: string, min: number, max = Number.MAX_SAFE_INTEGER) => (text: string): number => {
  const n = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${what} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(text)}`);
  }
  return n;
};

/** The largest timer Node can set (setTimeout's limit), about 24.8 days. */
const MAX_MS = 2 ** 31 - 1;

/**
 * A duration in whole milliseconds, as every ipckit option takes them: '0',
 * '250', '10000'. `max` is a timer's limit unless the duration is no timer
 * (an age).
 */
export function parseMs(text: string, what: string, max = MAX_MS): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(n <= max)) throw new InvalidArgumentError(`${what} must be milliseconds from 0 to ${max}, got ${JSON.stringify(text)}`);
  return n;
}
export const msOption = (text: string): number => parseMs(text, 'timeout');

/** Permission bits as octal text ('600', '0640'); checked here so a bad one is a usage error. */
export function modeOption(text: string): string {
  try {
    checkMode(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return text;
}

/** Flags whose value is optional (send/recv --retry [ms]; see withOptionalValuesSeparated). */
export const OPTIONAL_VALUE_FLAGS = ['--retry'];

/**
 * commander gives an option with an optional value (`--retry [ms]`) the next
 * word whatever it is, so `send --retry shm:x hello` would retry for "shm:x"
 * ms. A flag from `flags` followed by a word that is not a number is given
 * an empty value instead (`--retry=`), which its parser reads as the default.
 */
export function withOptionalValuesSeparated(argv: readonly string[], flags: readonly string[]): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length - 1; i++) {
    if (out[i] === '--') break;
    if (flags.includes(out[i]!) && !/^\d+$/.test(out[i + 1]!) && !out[i + 1]!.startsWith('-')) out[i] = `${out[i]}=`;
  }
  return out;
}

/** Where a command points: a POSIX name, a System V key or id, or a new private System V object. */
export type Target =
  | { kind: 'posix'; name: string }
  | { kind: 'sysv-key'; key: number }
  | { kind: 'sysv-id'; id: number }
  | { kind: 'private' };

export const TARGET_HELP =
  "/name (POSIX), 0x1234abcd or decimal (System V key), id:N (System V id), or 'private' (new System V object)";

/** Parses a target; 'private' only where `allowPrivate` (creating). */
export function parseTarget(text: string, allowPrivate = false): Target {
  if (text.startsWith('/')) return { kind: 'posix', name: asUsage(() => checkPosixName(text)) };
  const id = /^id:(\d+)$/.exec(text);
  if (id) {
    const n = Number(id[1]);
    if (!Number.isSafeInteger(n) || n > 0x7fffffff) throw new UsageError(`System V id out of range: ${text}`);
    return { kind: 'sysv-id', id: n };
  }
  if (text === 'private') {
    if (!allowPrivate) {
      throw new UsageError("'private' only makes sense with create (it always makes a new object); address it later as id:N");
    }
    return { kind: 'private' };
  }
  if (/^(0x[0-9a-f]+|-?\d+)$/i.test(text)) {
    const key = asUsage(() => parseKey(text));
    if (key === 0) throw new UsageError("key 0 is IPC_PRIVATE: write 'private' to create a new object, or id:N to address one");
    return { kind: 'sysv-key', key: key as number };
  }
  throw new UsageError(`not a target: ${JSON.stringify(text)} (use ${TARGET_HELP})`);
}

/**
 * The existing System V object a key or id:N names. `fromId` fails with
 * EINVAL for an id nothing has (that is what the kernel's *ctl says): the
 * error then says so, naming `what` and where to look.
 */
export function sysvTarget<T>(t: Target, get: (key: number) => T, fromId: (id: number) => T, what: string, lsHint: string): T {
  if (t.kind === 'sysv-key') return get(t.key);
  if (t.kind !== 'sysv-id') throw new UsageError('expected a System V key or id:N');
  try {
    return fromId(t.id);
  } catch (e) {
    if (e instanceof IpcError && e.code === 'EINVAL') {
      throw new IpcError(e.errno, e.syscall, { id: t.id }, `no System V ${what} has this id (see ${lsHint})`);
    }
    throw e;
  }
}

/** Permission bits as people write them: 0600. */
export function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/**
 * `rm` for any mechanism: parse every target first (a typo must not leave half
 * of the list removed), then, like ipcrm, try each one and report every failure.
 */
export function removeEach(texts: string[], remove: (target: Target) => void): void {
  const targets = texts.map((t) => parseTarget(t));
  const failures: unknown[] = [];
  for (const t of targets) {
    try {
      remove(t);
    } catch (e) {
      failures.push(e);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, failures.map((e) => (e as Error).message).join('\nipckit: '));
}
