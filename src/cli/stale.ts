// `ipckit ls --stale` and `ipckit rm --stale`: objects left behind by
// processes that are gone and used by nobody now (the rules are in
// src/cli/find-stale.ts). rm is a dry run unless --yes, and judges every object once
// more right before removing it.
import type { Command } from 'commander';
import { formatKey } from '../core/errors.js';
import { findStale, removeStale, type StaleKind, type StaleObject } from './find-stale.js';
import { octal, UsageError } from './args.js';
import { writeStdout } from './io.js';
import { checkKinds, lsPaths, matchOption, minAgeOption, nameFilter, pathOption } from './ls.js';
import { formatTable } from './table.js';
import { userName } from './users.js';

interface StaleQuery {
  json?: boolean;
  match: (name: string) => boolean;
  minAge?: number;
}

function find(kinds: string[], q: StaleQuery): StaleObject[] {
  const { stale, notes } = findStale({ kinds: kinds.length ? (kinds as StaleKind[]) : undefined, dirs: lsPaths, minAge: q.minAge });
  for (const n of notes) process.stderr.write(`ipckit: ${n}\n`);
  return stale.filter((o) => q.match(o.name));
}

/** The fields `ipckit ls --json` has, then why the object is stale. */
function toJson(o: StaleObject, more: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: o.kind, name: o.name };
  if (o.key !== undefined) out.key = formatKey(o.key);
  if (o.id !== undefined) out.id = o.id;
  Object.assign(out, { owner: userName(o.uid), uid: o.uid, mode: octal(o.mode), reason: o.reason }, more);
  return out;
}

function table(rows: StaleObject[], first: { header: string; cell: (o: StaleObject) => string } | null = null): string {
  const cols = [
    ...(first ? [{ header: first.header }] : []),
    { header: 'KIND' },
    { header: 'NAME' },
    { header: 'OWNER' },
    { header: 'MODE' },
    { header: 'WHY' },
  ];
  return formatTable(
    cols,
    rows.map((o) => [...(first ? [first.cell(o)] : []), o.kind, o.name, userName(o.uid), octal(o.mode), o.reason]),
  );
}

/** `ipckit ls --stale`. */
export async function listStale(kinds: string[], q: StaleQuery): Promise<void> {
  const stale = find(kinds, q);
  if (q.json) await writeStdout(`${JSON.stringify(stale.map((o) => toJson(o)), null, 2)}\n`);
  else await writeStdout(stale.length ? table(stale) : 'no stale objects\n');
}

interface RmOptions {
  stale?: boolean;
  yes?: boolean;
  json?: boolean;
  path: string[];
  match?: string;
  minAge?: number;
}

type Outcome = { action: 'would-remove' | 'removed' } | { action: 'kept'; why: string } | { action: 'failed'; error: string };

export function register(program: Command): void {
  program
    .command('rm')
    .description('remove objects left behind (with --stale): a dry run unless --yes')
    .argument('[kinds...]', 'only these kinds, as `ipckit ls` names them (e.g. posix-shm sysv-sem)')
    .option('--stale', 'the objects `ipckit ls --stale` lists')
    .option('--yes', 'remove them (without it, only print what would be removed)')
    .option('--json', 'one JSON array: each object with its action')
    .option(...pathOption)
    .option(...matchOption)
    .option(...minAgeOption)
    .action(async (kinds: string[], opts: RmOptions) => {
      if (!opts.stale) {
        throw new UsageError('ipckit rm removes stale objects: add --stale (to remove one object by name: ipckit shm rm, sem rm, mq rm, fifo rm)');
      }
      checkKinds(kinds);
      lsPaths.push(...opts.path);
      const stale = find(kinds, { match: nameFilter(opts.match), minAge: opts.minAge });
      const outcomes = stale.map((o): Outcome => {
        if (!opts.yes) return { action: 'would-remove' };
        try {
          const r = removeStale(o);
          return r.removed ? { action: 'removed' } : { action: 'kept', why: r.why };
        } catch (e) {
          return { action: 'failed', error: (e as Error).message };
        }
      });
      if (outcomes.some((r) => r.action === 'failed')) process.exitCode = 1;
      if (opts.json) {
        await writeStdout(`${JSON.stringify(stale.map((o, i) => toJson(o, outcomes[i])), null, 2)}\n`);
        return;
      }
      for (const [i, r] of outcomes.entries()) {
        if (r.action === 'failed') process.stderr.write(`ipckit: could not remove ${stale[i]!.kind} ${stale[i]!.name}: ${r.error}\n`);
      }
      const label = (r: Outcome): string => (r.action === 'kept' ? `kept (${r.why})` : r.action);
      let text = stale.length ? table(stale, { header: 'ACTION', cell: (o) => label(outcomes[stale.indexOf(o)]!) }) : 'no stale objects\n';
      if (!opts.yes && stale.length) text += `dry run: nothing removed; add --yes to remove ${stale.length === 1 ? 'it' : `these ${stale.length}`}\n`;
      await writeStdout(text);
    });
}
