// Renders result rows as the human-readable table.
import Table from 'cli-table3';
import { RATIO_REFERENCES, REFERENCE_TRANSPORT, WAKE_UP_TRANSPORT } from './registry.js';
import type { BenchRow } from './types.js';

export function formatSize(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

function formatUs(us: number): string {
  return us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0);
}

function formatRatio(r: number): string {
  return r >= 10 ? r.toFixed(0) : r.toPrecision(2);
}

/** 'baseline:c-shm' → 'c-shm', for column heads. */
function shortName(transport: string): string {
  return transport.replace(/^baseline:/, '');
}

/** Median round trip relative to `reference` at the same size, e.g. "0.04× (27× faster)". */
function ratioText(row: BenchRow, rows: readonly BenchRow[], reference = REFERENCE_TRANSPORT): string {
  if (row.transport === reference) return '1× (reference)';
  const ref = rows.find((r) => r.transport === reference && r.size === row.size);
  if (!ref || !(ref.rttMedianUs > 0) || !(row.rttMedianUs > 0)) return '-';
  const r = row.rttMedianUs / ref.rttMedianUs;
  if (Math.abs(r - 1) < 0.05) return `${formatRatio(r)}× (about the same)`;
  return r < 1 ? `${formatRatio(r)}× (${formatRatio(1 / r)}× faster)` : `${formatRatio(r)}× (${formatRatio(r)}× slower)`;
}

/**
 * The machine's cross-core wake-up cost, from this run's baseline:c-futex-wake
 * row at its smallest size (half its median round trip), as one line for
 * the header; undefined when that case did not run.
 */
export function wakeUpLine(rows: readonly BenchRow[]): string | undefined {
  const futex = rows.filter((r) => r.transport === WAKE_UP_TRANSPORT).sort((a, b) => a.size - b.size)[0];
  if (!futex) return undefined;
  return (
    `Cross-core wake-up on this machine: ${formatUs(futex.rttMedianUs / 2)} µs (half the median round trip of ${WAKE_UP_TRANSPORT} at ${formatSize(futex.size)}); ` +
    'whatever sleeps between messages pays it on every hop, so compare ratios, not absolute figures, across machines'
  );
}

/** The ratio columns this run can fill: one per reference that has rows. */
function ratioReferences(rows: readonly BenchRow[]): string[] {
  return RATIO_REFERENCES.filter((ref) => rows.some((r) => r.transport === ref));
}

function head(refs: readonly string[]): string[] {
  return ['transport', 'size', 'RTT median µs', 'RTT p99 µs', 'msg/s', 'MB/s', ...refs.map((ref) => `RTT vs ${shortName(ref)}`)];
}

/** The cells of one row, as the table and the HTML report show them. */
export function cells(row: BenchRow, rows: readonly BenchRow[], refs: readonly string[] = ratioReferences(rows)): string[] {
  return [
    row.transport,
    formatSize(row.size),
    formatUs(row.rttMedianUs),
    formatUs(row.rttP99Us),
    row.msgsPerSec.toLocaleString('en-US'),
    row.mbPerSec.toLocaleString('en-US', { maximumFractionDigits: 1 }),
    ...refs.map((ref) => ratioText(row, rows, ref)),
  ];
}

/** Column heads matching cells(). */
export function headCells(rows: readonly BenchRow[]): string[] {
  return head(ratioReferences(rows));
}

export function formatTable(rows: readonly BenchRow[]): string {
  const refs = ratioReferences(rows);
  const table = new Table({
    head: head(refs),
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', ...refs.map(() => 'left' as const)],
    style: { head: [], border: [], compact: true },
  });
  for (const row of rows) table.push(cells(row, rows, refs));
  return table.toString();
}

/** The same table in Markdown, for docs and the README. */
export function formatMarkdown(rows: readonly BenchRow[]): string {
  const refs = ratioReferences(rows);
  const lines = [`| ${head(refs).join(' | ')} |`, `|---|--:|--:|--:|--:|--:|${refs.map(() => '---|').join('')}`];
  for (const row of rows) lines.push(`| ${cells(row, rows, refs).join(' | ')} |`);
  return lines.join('\n');
}
