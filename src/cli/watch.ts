// `ipckit ls --watch`: the listing again every interval, with how fast each
// object's count moves (messages queued, semaphore values, attaches) per
// second. In a terminal the view is redrawn in place (the cursor goes back up
// over the previous one); piped, successive listings follow one another; with
// --json, one JSON line per refresh. Ctrl-C ends it with exit status 0.
import { collect, renderSection, toJson, type ExtraColumn, type LsRow } from './ls.js';
import { writeStdout } from './io.js';

interface WatchOptions {
  json?: boolean;
  match: (name: string) => boolean;
  intervalMs: number;
}

const identity = (r: LsRow): string => `${r.kind}\0${r.name}\0${r.id ?? ''}`;
/** What the rate follows: the provider's gauge if it has one, else its count. */
const level = (r: LsRow): number | null => (r.gauge !== undefined ? r.gauge : (r.count ?? null));
const round = (n: number): number => Math.round(n * 100) / 100;

function showRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return '-';
  if (rate === 0) return '0';
  return `${rate > 0 ? '+' : ''}${rate}/s`;
}

/** Terminal rows the text takes, long lines wrapping at `columns`. */
function rowsOf(text: string, columns: number): number {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.reduce((n, line) => n + Math.max(1, Math.ceil(line.length / columns)), 0);
}

export async function watch(kinds: string[], options: WatchOptions): Promise<void> {
  let stopped = false;
  let wake = (): void => {};
  const stop = (): void => {
    stopped = true;
    wake();
  };
  process.on('SIGINT', stop);
  const tty = !options.json && process.stdout.isTTY === true;
  let previous = new Map<string, { level: number | null; at: number }>();
  let drawnRows = 0;
  let first = true;
  try {
    while (!stopped) {
      const at = performance.now();
      const { sections } = collect(kinds, options.match);
      const rates = new Map<LsRow, number | null>();
      const next = new Map<string, { level: number | null; at: number }>();
      for (const row of sections.flatMap((s) => s.rows)) {
        const now = level(row);
        const before = previous.get(identity(row));
        const seconds = before ? (at - before.at) / 1000 : 0;
        rates.set(row, before && now !== null && before.level !== null && seconds > 0 ? round((now - before.level) / seconds) : null);
        next.set(identity(row), { level: now, at });
      }
      previous = next;
      const time = new Date().toISOString();
      if (options.json) {
        if (first) for (const s of sections) for (const n of s.notes) process.stderr.write(`ipckit: ${s.provider.kind}: ${n}\n`);
        const objects = sections.flatMap((s) => s.rows.map((r) => ({ ...toJson(r, s.provider.countName), rate: rates.get(r) ?? null })));
        await writeStdout(`${JSON.stringify({ time, intervalMs: options.intervalMs, objects })}\n`);
      } else {
        const rateColumn: ExtraColumn = { col: { header: 'RATE', align: 'right' }, cell: (r) => showRate(rates.get(r)) };
        const text = `ipckit ls --watch: ${time}, every ${options.intervalMs} ms (Ctrl-C to quit)\n\n${sections.map((s) => renderSection(s, [rateColumn])).join('\n')}`;
        if (tty) {
          // Back up over the previous view and clear from there down.
          const up = drawnRows > 0 ? `\x1b[${drawnRows}A\r\x1b[J` : '';
          await writeStdout(up + text);
          drawnRows = rowsOf(text, process.stdout.columns || 80);
        } else {
          await writeStdout(`${first ? '' : '\n'}${text}`);
        }
      }
      first = false;
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.removeListener('SIGINT', stop);
  }
}
