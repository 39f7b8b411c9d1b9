// `ipckit ls`: every IPC object on the system, one section per kind. Each
// mechanism's CLI module adds its section with addLsProvider(); this file only
// collects and prints.
import type { Command } from 'commander';
import { octal, UsageError } from './args.js';
import { formatTable, type Column } from './table.js';
import { writeStdout } from './io.js';

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
  /** Anything else worth having in --json. */
  extra?: Record<string, unknown>;
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

interface Section {
  provider: LsProvider;
  rows: LsRow[];
  notes: string[];
}

function collect(kinds: string[]): { sections: Section[]; failed: boolean } {
  let failed = false;
  const wanted = providers.filter((p) => kinds.length === 0 || kinds.includes(p.kind));
  const sections = wanted.map((provider): Section => {
    try {
      const rows = provider.list();
      return { provider, rows, notes: provider.notes?.() ?? [] };
    } catch (e) {
      failed = true;
      return { provider, rows: [], notes: [`could not list: ${(e as Error).message}`] };
    }
  });
  return { sections, failed };
}

function toJson(row: LsRow, countName: string | undefined): Record<string, unknown> {
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

function renderSection({ provider, rows, notes }: Section): string {
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

export function register(program: Command): void {
  program
    .command('ls')
    .description('list IPC objects: shared memory, semaphores and message queues (POSIX and System V), FIFOs and Unix sockets')
    .argument('[kinds...]', 'only these kinds, as in the section headings (e.g. posix-shm sysv-shm)')
    .option('--json', 'one JSON array of objects instead of tables')
    .option('--path <dir>', 'also look for FIFOs and Unix sockets in DIR (repeatable)', (dir: string, prev: string[]) => [...prev, dir], [] as string[])
    .action(async (kinds: string[], opts: { json?: boolean }) => {
      const unknown = kinds.filter((k) => !providers.some((p) => p.kind === k));
      if (unknown.length) {
        throw new UsageError(`unknown kind ${unknown.join(', ')} (known: ${providers.map((p) => p.kind).join(', ')})`);
      }
      lsPaths.push(...((opts as { path?: string[] }).path ?? []));
      const { sections, failed } = collect(kinds);
      if (opts.json) {
        const rows = sections.flatMap((s) => s.rows.map((r) => toJson(r, s.provider.countName)));
        // Notes go to stderr so stdout stays one parseable array.
        for (const s of sections) for (const n of s.notes) process.stderr.write(`ipckit: ${s.provider.kind}: ${n}\n`);
        await writeStdout(`${JSON.stringify(rows, null, 2)}\n`);
      } else {
        await writeStdout(sections.map(renderSection).join('\n'));
      }
      if (failed) process.exitCode = 1;
    });
}
