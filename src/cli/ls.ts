// `ipckit ls`: every IPC object on the system, one section per kind. Each
// mechanism's CLI module adds its section with addLsProvider(); this file only
// collects and prints.
import { statSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { formatKey } from '../core/errors.js';
import { octal, parseMs, TARGET_HELP, UsageError } from './args.js';
import { formatTable, type Column } from './table.js';
import { writeStdout } from './io.js';
import { userName } from './users.js';
import { listStale } from './stale.js';
import { watch } from './watch.js';

/** One object in the listing. Fields a kind does not have stay undefined (column hidden). */
export interface LsRow {
  /** Same as the provider's kind, e.g. 'posix-shm', 'sysv-shm'. */
  kind: string;
  /** What you type to address the object in ipckit commands: '/name', '0x1234abcd', 'id:5'. */
  name: string;
  /** System V key as 0x-hex. */
  key?: string;
  /** System V identifier. */
  id?: number;
  /** User name of the owner (falls back to the uid as text). */
  owner: string;
  uid: number;
  /** Permission bits. */
  mode: number;
  /** Bytes, when the kind has a size. */
  size?: number | null;
  /** The provider's count (attaches, messages, values, ...); null when unknowable. */
  count?: number | null;
  /** Creator pid; null when the kernel does not record it. */
  cpid?: number | null;
  /** A short per-kind text column (e.g. a semaphore set's values), headed by the provider's detailName. */
  detail?: string;
  /** The level `ls --watch` follows and gives a rate for, when it is not `count` (a set's values added up). */
  gauge?: number | null;
  /** Anything else worth having in --json. */
  extra?: Record<string, unknown>;
}

/**
 * The fields every System V row has: NAME is what you type to address it —
 * the key, or id:N for IPC_PRIVATE objects (and removed segments still
 * attached, whose key the kernel clears) — then key, id and owner.
 */
export function sysvRow(kind: string, o: { key: number; id: number; uid: number; mode: number }): LsRow {
  return { kind, name: o.key === 0 ? `id:${o.id}` : formatKey(o.key), key: formatKey(o.key), id: o.id, owner: userName(o.uid), uid: o.uid, mode: o.mode };
}

export interface LsProvider {
  /** Short machine name, also each row's kind. */
  kind: string;
  /** Section heading in the human listing. */
  title: string;
  /** What `count` counts: a column heading and the --json field name. */
  countName?: string;
  /** Heading of the `detail` column, when rows have one. */
  detailName?: string;
  list(): LsRow[];
  /** Remarks after listing, e.g. that a filesystem is not mounted and how to mount it. */
  notes?(): string[];
}

const providers: LsProvider[] = [];

/** Directories given with `ls --path DIR`: providers of path-based objects (FIFOs, Unix sockets) look there. */
export const lsPaths: string[] = [];

/** Adds a section to `ipckit ls`; sections print in the order they were added. */
export function addLsProvider(provider: LsProvider): void {
  if (!providers.some((p) => p.kind === provider.kind)) providers.push(provider);
}

/**
 * `ipckit NAME` for a mechanism with POSIX names and System V objects (shm,
 * sem, mq): the command, its help on targets, and its sections of `ls`.
 */
export function targetCommand(program: Command, name: string, description: string, sections: LsProvider[]): Command {
  for (const provider of sections) addLsProvider(provider);
  return program.command(name).description(description).addHelpText('after', `\nTargets: ${TARGET_HELP}.`);
}

/** The kinds `ipckit ls` knows, in section order. */
export function knownKinds(): string[] {
  return providers.map((p) => p.kind);
}

/** Throws a UsageError naming the kinds that are not known. */
export function checkKinds(kinds: string[]): void {
  const unknown = kinds.filter((k) => !providers.some((p) => p.kind === k));
  if (unknown.length) throw new UsageError(`unknown kind ${unknown.join(', ')} (known: ${knownKinds().join(', ')})`);
}

/** `--match REGEX` as a test of NAME; every name passes without it. */
export function nameFilter(pattern: string | undefined): (name: string) => boolean {
  if (pattern === undefined) return () => true;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (e) {
    throw new UsageError(`--match: not a regular expression: ${(e as Error).message}`);
  }
  return (name) => re.test(name);
}

export interface Section {
  provider: LsProvider;
  rows: LsRow[];
  notes: string[];
}

/** Every wanted provider's rows (those whose name passes `match`), with its notes; `failed` if one could not list. */
export function collect(kinds: string[], match: (name: string) => boolean = () => true): { sections: Section[]; failed: boolean } {
  let failed = false;
  const wanted = providers.filter((p) => kinds.length === 0 || kinds.includes(p.kind));
  const sections = wanted.map((provider): Section => {
    try {
      const rows = provider.list().filter((r) => match(r.name));
      return { provider, rows, notes: provider.notes?.() ?? [] };
    } catch (e) {
      failed = true;
      return { provider, rows: [], notes: [`could not list: ${(e as Error).message}`] };
    }
  });
  return { sections, failed };
}

export function toJson(row: LsRow, countName: string | undefined): Record<string, unknown> {
  // A fixed field order, the same for every kind, so the output diffs well.
  const out: Record<string, unknown> = { kind: row.kind, name: row.name };
  if (row.key !== undefined) out.key = row.key;
  if (row.id !== undefined) out.id = row.id;
  Object.assign(out, { owner: row.owner, uid: row.uid, mode: octal(row.mode) });
  if (row.size !== undefined) out.size = row.size;
  if (row.count !== undefined) out[countName ?? 'count'] = row.count;
  if (row.cpid !== undefined) out.cpid = row.cpid;
  if (row.extra !== undefined) out.extra = row.extra;
  return out;
}

const dash = (v: number | string | null | undefined): string => (v === null || v === undefined ? '-' : String(v));

/** A column some views add after the usual ones (`ls --watch`: the rate). */
export interface ExtraColumn {
  col: Column;
  cell: (row: LsRow) => string;
}

export function renderSection({ provider, rows, notes }: Section, more: ExtraColumn[] = []): string {
  let out = `${provider.title} [${provider.kind}]\n`;
  if (rows.length === 0) {
    out += '  (none)\n';
  } else {
    // A column appears when some row of this kind has the field at all.
    const cols: Array<{ col: Column; cell: (r: LsRow) => string; shown: boolean }> = [
      { col: { header: 'NAME' }, cell: (r) => r.name, shown: true },
      { col: { header: 'ID', align: 'right' }, cell: (r) => dash(r.id), shown: rows.some((r) => r.id !== undefined) },
      { col: { header: 'OWNER' }, cell: (r) => r.owner, shown: true },
      { col: { header: 'MODE' }, cell: (r) => octal(r.mode), shown: true },
      { col: { header: 'SIZE', align: 'right' }, cell: (r) => dash(r.size), shown: rows.some((r) => r.size !== undefined) },
      {
        col: { header: (provider.countName ?? 'count').toUpperCase(), align: 'right' },
        cell: (r) => dash(r.count),
        shown: rows.some((r) => r.count !== undefined),
      },
      { col: { header: 'CPID', align: 'right' }, cell: (r) => dash(r.cpid), shown: rows.some((r) => r.cpid !== undefined) },
      { col: { header: (provider.detailName ?? 'detail').toUpperCase() }, cell: (r) => dash(r.detail), shown: rows.some((r) => r.detail !== undefined) },
      ...more.map((m) => ({ col: m.col, cell: m.cell, shown: true })),
    ];
    const shown = cols.filter((c) => c.shown);
    out += formatTable(
      shown.map((c) => c.col),
      rows.map((r) => shown.map((c) => c.cell(r))),
      '  ',
    );
  }
  for (const note of notes) out += `  note: ${note}\n`;
  return out;
}

interface LsOptions {
  json?: boolean;
  path: string[];
  match?: string;
  stale?: boolean;
  minAge?: number;
  watch?: boolean;
  interval?: number;
}

/** The `--path DIR` option: repeatable. */
export const pathOption = ['--path <dir>', 'also look for FIFOs and Unix sockets in DIR (repeatable)', (dir: string, prev: string[]) => [...prev, checkDirectory(dir)], [] as string[]] as const;

/** A --path that names no directory is a mistake on the command line, not an empty listing. */
function checkDirectory(dir: string): string {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (e) {
    throw new InvalidArgumentError(`${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
  }
  if (!isDirectory) throw new InvalidArgumentError(`${dir}: not a directory`);
  return dir;
}
export const matchOption = ['--match <regex>', 'only objects whose NAME matches the regular expression'] as const;
export const minAgeOption = ['--min-age <ms>', 'only objects unchanged for at least this many milliseconds (default 0)', (text: string) => parseMs(text, '--min-age', Number.MAX_SAFE_INTEGER)] as const;

export function register(program: Command): void {
  program
    .command('ls')
    .description('list IPC objects: shared memory, semaphores and message queues (POSIX and System V), FIFOs and Unix sockets')
    .argument('[kinds...]', 'only these kinds, as in the section headings (e.g. posix-shm sysv-shm)')
    .option('--json', 'one JSON array of objects instead of tables (with --watch: one JSON line per refresh)')
    .option(...pathOption)
    .option(...matchOption)
    .option('--stale', 'only objects left behind: their creator is gone and nobody uses them (see ipckit rm --stale)')
    .option(...minAgeOption)
    .option('--watch', 'refresh the listing until Ctrl-C, with rates of change (per s)')
    .option('--interval <ms>', 'with --watch: time between refreshes (default 1000)', (text: string) => parseMs(text, '--interval'))
    .action(async (kinds: string[], opts: LsOptions) => {
      checkKinds(kinds);
      if (opts.stale && opts.watch) throw new UsageError('--stale and --watch cannot be combined');
      if (opts.minAge !== undefined && !opts.stale) throw new UsageError('--min-age applies with --stale');
      if (opts.interval !== undefined && !opts.watch) throw new UsageError('--interval applies with --watch');
      lsPaths.push(...opts.path);
      const match = nameFilter(opts.match);
      if (opts.stale) return listStale(kinds, { json: opts.json, match, minAge: opts.minAge });
      if (opts.watch) return watch(kinds, { json: opts.json, match, intervalMs: opts.interval ?? 1000 });
      const { sections, failed } = collect(kinds, match);
      if (opts.json) {
        const rows = sections.flatMap((s) => s.rows.map((r) => toJson(r, s.provider.countName)));
        // Notes go to stderr so stdout stays one parseable array.
        for (const s of sections) for (const n of s.notes) process.stderr.write(`ipckit: ${s.provider.kind}: ${n}\n`);
        await writeStdout(`${JSON.stringify(rows, null, 2)}\n`);
      } else {
        await writeStdout(sections.map((s) => renderSection(s)).join('\n'));
      }
      if (failed) process.exitCode = 1;
    });
}
