// `--report bench.html`: one self-contained HTML file (no scripts, no fonts,
// no external anything) with the machine line, the table and inline SVG bar
// charts drawn here: round-trip latency (median, with p99 behind it) and
// one-way throughput, per transport, one pair of charts per message size.
// Both axes are logarithmic: figures span five orders of magnitude
// (0.2 µs C shared memory to 15 ms fork JSON at 1 MiB), a linear axis would
// show one bar and a row of slivers.
import { cells, formatSize, headCells, wakeUpLine } from './format.js';
import type { BenchRow } from './types.js';

export interface ReportInput {
  rows: readonly BenchRow[];
  /** The machine line (machine.ts). */
  machine: string;
  /** What the figures are: trials, counts (the line under the machine line in the text output). */
  method: string;
  /** When the run started. */
  date: Date;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Bar {
  label: string;
  /** Solid bar. */
  value: number;
  /** Lighter bar behind it (p99), when given. */
  back?: number;
  /** Text right of the bar. */
  text: string;
  baseline: boolean;
}

const LABEL_W = 190;
const PLOT_W = 520;
const TEXT_W = 230;
const ROW_H = 20;
const AXIS_H = 22;

function decades(bars: readonly Bar[]): [number, number] {
  const values = bars.flatMap((b) => [b.value, b.back ?? b.value]).filter((v) => Number.isFinite(v) && v > 0);
  if (values.length === 0) return [0, 1];
  const lo = Math.floor(Math.log10(Math.min(...values)));
  const hi = Math.ceil(Math.log10(Math.max(...values)));
  return [lo, hi > lo ? hi : lo + 1];
}

function tickLabel(exp: number): string {
  const v = 10 ** exp;
  if (exp >= 9) return `${v / 1e9}G`;
  if (exp >= 6) return `${v / 1e6}M`;
  if (exp >= 3) return `${v / 1e3}k`;
  return exp >= 0 ? String(v) : v.toFixed(-exp);
}

/** A horizontal bar chart on a log axis, as an inline <svg>. */
function barChart(title: string, unit: string, bars: readonly Bar[]): string {
  const [lo, hi] = decades(bars);
  const x = (v: number) => LABEL_W + (PLOT_W * (Math.log10(v) - lo)) / (hi - lo);
  const width = LABEL_W + PLOT_W + TEXT_W;
  const height = AXIS_H + bars.length * ROW_H + 6;
  const parts: string[] = [
    `<svg class="chart" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${escapeHtml(`${title} (${unit}, log scale)`)}</title>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const gx = x(10 ** e).toFixed(1);
    parts.push(`<line class="grid" x1="${gx}" y1="${AXIS_H - 4}" x2="${gx}" y2="${height - 4}"/>`);
    parts.push(`<text class="tick" x="${gx}" y="${AXIS_H - 8}" text-anchor="middle">${tickLabel(e)}</text>`);
  }
  bars.forEach((bar, i) => {
    const y = AXIS_H + i * ROW_H;
    const cls = bar.baseline ? 'bar base' : 'bar';
    parts.push(`<text class="label" x="${LABEL_W - 6}" y="${y + 14}" text-anchor="end">${escapeHtml(bar.label)}</text>`);
    const x0 = x(10 ** lo);
    if (bar.back !== undefined && bar.back > 0 && Number.isFinite(bar.back)) {
      parts.push(`<rect class="${cls} back" x="${x0}" y="${y + 3}" width="${(x(bar.back) - x0).toFixed(1)}" height="${ROW_H - 6}"/>`);
    }
    if (bar.value > 0 && Number.isFinite(bar.value)) {
      parts.push(
        `<rect class="${cls}" x="${x0}" y="${y + 3}" width="${(x(bar.value) - x0).toFixed(1)}" height="${ROW_H - 6}"><title>${escapeHtml(`${bar.label}: ${bar.text}`)}</title></rect>`,
      );
    }
    parts.push(`<text class="value" x="${LABEL_W + PLOT_W + 6}" y="${y + 14}">${escapeHtml(bar.text)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

const fmt = (n: number, digits = 3) => n.toLocaleString('en-US', { maximumSignificantDigits: digits });

function charts(rows: readonly BenchRow[], size: number): string {
  const at = rows.filter((r) => r.size === size);
  const isBase = (r: BenchRow) => r.transport.startsWith('baseline:');
  const latency = barChart(
    `Round trip, ${formatSize(size)}: median (dark) and p99 (light)`,
    'µs',
    at.map((r) => ({
      label: r.transport,
      value: r.rttMedianUs,
      back: r.rttP99Us,
      text: `${fmt(r.rttMedianUs)} / ${fmt(r.rttP99Us)} µs`,
      baseline: isBase(r),
    })),
  );
  const throughput = barChart(
    `One-way throughput, ${formatSize(size)}`,
    'msg/s',
    at.map((r) => ({
      label: r.transport,
      value: r.msgsPerSec,
      text: `${r.msgsPerSec.toLocaleString('en-US', { notation: 'compact', maximumSignificantDigits: 3 })} msg/s, ${fmt(r.mbPerSec)} MB/s`,
      baseline: isBase(r),
    })),
  );
  return [
    `<section>`,
    `<h2>${formatSize(size)} messages</h2>`,
    `<h3>Round trip (µs, median and p99, log scale, shorter is better)</h3>`,
    latency,
    `<h3>One-way throughput (messages per second, log scale, longer is better)</h3>`,
    throughput,
    `</section>`,
  ].join('\n');
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; background: #fff; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 2px 8px; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.base td { background: #f4f4f4; }
.chart { display: block; margin: 0.5em 0 1.5em; }
.chart text { font: 12px system-ui, sans-serif; fill: #222; }
.chart .tick { fill: #777; font-size: 11px; }
.chart .grid { stroke: #ddd; stroke-width: 1; }
.chart .bar { fill: #2b6cb0; }
.chart .bar.back { fill: #a3c4e8; }
.chart .bar.base { fill: #8a8a8a; }
.chart .bar.base.back { fill: #d0d0d0; }
.legend { color: #555; }
`;

/** The whole report as one HTML document. */
export function htmlReport(input: ReportInput): string {
  const { rows } = input;
  const numeric = new Set([1, 2, 3, 4, 5]);
  const head = headCells(rows)
    .map((h) => `<th>${escapeHtml(h)}</th>`)
    .join('');
  const body = rows
    .map((row) => {
      const tds = cells(row, rows)
        .map((c, i) => `<td${numeric.has(i) ? ' class="num"' : ''}>${escapeHtml(c)}</td>`)
        .join('');
      return `<tr${row.transport.startsWith('baseline:') ? ' class="base"' : ''}>${tds}</tr>`;
    })
    .join('\n');
  const sizes = [...new Set(rows.map((r) => r.size))];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<title>ipckit bench</title>',
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<h1>ipckit bench</h1>',
    `<p class="machine">${escapeHtml(input.machine)}</p>`,
    `<p>${escapeHtml(input.method)}</p>`,
    ...[wakeUpLine(rows)].filter((l) => l !== undefined).map((l) => `<p class="wake-up">${escapeHtml(l)}</p>`),
    `<p>Run started ${escapeHtml(input.date.toISOString())}.</p>`,
    '<table>',
    `<thead><tr>${head}</tr></thead>`,
    `<tbody>\n${body}\n</tbody>`,
    '</table>',
    '<p class="legend">Charts: ipckit and other Node transports in blue, baselines in grey.</p>',
    ...sizes.map((size) => charts(rows, size)),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
