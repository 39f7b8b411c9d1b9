// `ipckit limits [--json]`: the kernel limits IPC runs into, with current
// use, like util-linux's lsipc (kernel-limits.ts reads them).
import type { Command } from 'commander';
import { writeStdout } from './io.js';
import { GROUPS, readLimits, type LimitRow } from './kernel-limits.js';
import { formatTable } from './table.js';

type Value = LimitRow['limit'];

const text = (v: Value | undefined): string => (v === null || v === undefined ? '-' : String(v));

function percent(row: LimitRow): string {
  const limit = typeof row.limit === 'bigint' ? Number(row.limit) : row.limit;
  if (typeof limit !== 'number' || typeof row.used !== 'number' || limit === 0) return '-';
  return `${((row.used / limit) * 100).toFixed(2)}%`;
}

/** Remarks under a section: values that mean more than their digits say. */
function notes(rows: LimitRow[]): string[] {
  // The kernel's default for both is ULONG_MAX - 2^24: no limit in practice.
  const huge = rows.filter((r) => typeof r.limit === 'bigint').map((r) => r.name);
  return huge.length ? [`  note: ${huge.join(' and ')} at the kernel's default (about 2^64): no limit in practice`] : [];
}

function render(rows: LimitRow[]): string {
  const sections = GROUPS.map(({ group, title }) => {
    const mine = rows.filter((r) => r.group === group);
    const table = formatTable(
      [{ header: 'NAME' }, { header: 'LIMIT', align: 'right' }, { header: 'USED', align: 'right' }, { header: 'USE%', align: 'right' }, { header: 'UNIT' }, { header: 'DESCRIPTION' }],
      mine.map((r) => [r.name, text(r.limit), text(r.used), percent(r), r.unit, r.hard === undefined ? r.description : `${r.description}; hard limit ${text(r.hard)}`]),
      '  ',
    );
    return [`${title} [${group}]\n${table}`, ...notes(mine).map((n) => `${n}\n`)].join('');
  });
  return sections.join('\n');
}

/** JSON with bigints as plain (exact) numbers: JSON has no size limit on numbers, JSON.stringify does. */
function toJson(rows: LimitRow[]): string {
  const marker = '\u0000bigint:';
  const json = JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? `${marker}${v}` : v), 2);
  return json.replace(new RegExp(`"${marker.replace('\u0000', '\\\\u0000')}(\\d+)"`, 'g'), '$1');
}

export function register(program: Command): void {
  program
    .command('limits')
    .description('kernel limits for IPC with current use (POSIX and System V queues, shared memory, semaphores, descriptors), like lsipc')
    .option('--json', 'one JSON array: {group, name, description, limit, hard?, used?, unit, source} per limit')
    .action(async (o: { json?: boolean }) => {
      const rows = readLimits();
      await writeStdout(o.json ? `${toJson(rows)}\n` : render(rows));
    });
}
