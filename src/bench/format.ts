// Renders result rows as the human-readable table.
import Table from 'cli-table3';
import { REFERENCE_TRANSPORT } from './registry.js';
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

const REFERENCE_NAME = REFERENCE_TRANSPORT.replace(/^baseline:/, '');

/** Median round trip relative to the reference transport at the same size, e.g. "0.04× (27× faster)". */
export function ratioText(row: BenchRow, rows: readonly BenchRow[]): string {
  if (row.transport === REFERENCE_TRANSPORT) return '1× (reference)';
  const ref = rows.find((r) => r.transport === REFERENCE_TRANSPORT && r.size === row.size);
  if (!ref || !(ref.rttMedianUs > 0) || !(row.rttMedianUs > 0)) return '-';
  const r = row.rttMedianUs / ref.rttMedianUs;
  if (Math.abs(r - 1) < 0.05) return `${formatRatio(r)}× (about the same)`;
  return r < 1 ? `${formatRatio(r)}× (${formatRatio(1 / r)}× faster)` : `${formatRatio(r)}× (${formatRatio(r)}× slower)`;
}

const HEAD = ['transport', 'size', 'RTT median µs', 'RTT p99 µs', 'msg/s', 'MB/s', `RTT vs ${REFERENCE_NAME}`];

function cells(row: BenchRow, rows: readonly BenchRow[]): string[] {
  return [
    row.transport,
    formatSize(row.size),
    formatUs(row.rttMedianUs),
    formatUs(row.rttP99Us),
    row.msgsPerSec.toLocaleString('en-US'),
    row.mbPerSec.toLocaleString('en-US', { maximumFractionDigits: 1 }),
    ratioText(row, rows),
  ];
}

export function formatTable(rows: readonly BenchRow[]): string {
  const table = new Table({
    head: HEAD,
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
    style: { head: [], border: [], compact: true },
  });
  for (const row of rows) table.push(cells(row, rows));
  return table.toString();
}

/** The same table in Markdown, for docs and the README. */
export function formatMarkdown(rows: readonly BenchRow[]): string {
  const lines = [`| ${HEAD.join(' | ')} |`, '|---|--:|--:|--:|--:|--:|---|'];
  for (const row of rows) lines.push(`| ${cells(row, rows).join(' | ')} |`);
  return lines.join('\n');
}
