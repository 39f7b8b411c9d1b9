// A one-line progress bar on stderr, redrawn in place. Only used when stderr
// is a terminal: piped or redirected output (CI logs, `--json > rows.json`)
// never sees it, and stdout never does.
export class ProgressBar {
  readonly #total: number;
  readonly #stream: NodeJS.WriteStream;
  readonly #started = Date.now();
  #drawn = false;
  #done = 0;
  #label = '';
  /** Redraws once a second so the clock moves during long trials (a negligible load on the idle harness). */
  #ticker: NodeJS.Timeout | undefined;

  constructor(total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#total = total;
    this.#stream = stream;
  }

  /** Redraws the line: `done` trials finished, `label` the one starting now. */
  update(done: number, label: string): void {
    this.#done = done;
    this.#label = label;
    this.#ticker ??= setInterval(() => this.#draw(), 1000).unref();
    this.#draw();
  }

  #draw(): void {
    const done = this.#done;
    const label = this.#label;
    this.#stream.write(`\r\x1b[K${progressLine(done, this.#total, label, Date.now() - this.#started, this.#stream.columns || 80)}`);
    this.#drawn = true;
  }

  /** Erases the line so the table starts on a clean one. */
  clear(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    if (this.#drawn) this.#stream.write('\r\x1b[K');
    this.#drawn = false;
  }
}

function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * `[#####-----] 5/10 shm-atomics 64 B (trial 1/3)  0:12, ~0:12 left`, cut
 * to `columns - 1` characters so it never wraps (a wrapped line cannot be
 * redrawn with \r). The estimate is the mean trial time so far.
 */
export function progressLine(done: number, total: number, label: string, elapsedMs: number, columns: number): string {
  const width = 20;
  const filled = total > 0 ? Math.round((done / total) * width) : width;
  const eta = done > 0 ? `, ~${clock((elapsedMs / done) * (total - done))} left` : '';
  const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${label}  ${clock(elapsedMs)}${eta}`;
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1));
}
