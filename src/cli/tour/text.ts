// Terminal text for the tour: display widths (a CJK character takes two
// columns), wrapping that breaks English at spaces and Chinese between
// characters, and colour only for a person at a terminal.

/** East Asian wide and fullwidth ranges: the characters a terminal draws two columns wide. */
const WIDE: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f],
  [0x2e80, 0xa4cf],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe30, 0xfe4f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
];

function isWide(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return WIDE.some(([lo, hi]) => c >= lo && c <= hi);
}

/** Columns `text` occupies in a terminal. */
export function displayWidth(text: string): number {
  let w = 0;
  for (const ch of text) w += isWide(ch) ? 2 : 1;
  return w;
}

/** Pads with spaces to `width` columns (left-aligned, or right-aligned with `right`). */
export function pad(text: string, width: number, right = false): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return right ? fill + text : text + fill;
}

/** Punctuation that must not start a line (it stays with what precedes it)... */
const CLOSING = new Set([...'，。、；：！？）》」』】,.;:!?)]»']);
/** ...and punctuation that must not end one (it stays with what follows). */
const OPENING = new Set([...'（《「『【([«']);

/** Words, single wide characters and runs of spaces: the units a line may break between. */
function tokens(text: string): string[] {
  const out: string[] = [];
  let word = '';
  let glue = false; // the last token ends with opening punctuation: the next one joins it
  const push = (token: string) => {
    if (glue) out[out.length - 1] += token;
    else out.push(token);
    glue = OPENING.has(token[token.length - 1]!);
  };
  const flush = () => {
    if (word) push(word);
    word = '';
  };
  for (const ch of text) {
    if (ch === ' ') {
      flush();
      glue = false;
      if (out.length && out[out.length - 1]!.startsWith(' ')) out[out.length - 1] += ch;
      else out.push(ch);
    } else if (CLOSING.has(ch) && !word && out.length && !out[out.length - 1]!.startsWith(' ')) {
      out[out.length - 1] += ch;
    } else if (isWide(ch)) {
      flush();
      push(ch);
    } else {
      word += ch;
    }
  }
  flush();
  return out;
}

/** Breaks `text` into lines of at most `width` columns (a longer word gets a line of its own). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const t of tokens(text)) {
    if (t.startsWith(' ')) {
      if (line) line += t;
      continue;
    }
    if (line && displayWidth(line.trimEnd()) + displayWidth(t) > width && line.trim()) {
      lines.push(line.trimEnd());
      line = '';
    }
    line += t;
  }
  if (line.trim()) lines.push(line.trimEnd());
  return lines.length ? lines : [''];
}

export interface Style {
  heading(text: string): string;
  calls(text: string): string;
  result(text: string): string;
  failure(text: string): string;
}

const plain: Style = { heading: (s) => s, calls: (s) => s, result: (s) => s, failure: (s) => s };
const sgr = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const coloured: Style = { heading: sgr('1'), calls: sgr('36'), result: sgr('2'), failure: sgr('31') };

/** Colour for a person at a terminal who has not asked for none (a non-empty NO_COLOR). */
export function styleFor(stream: NodeJS.WriteStream): Style {
  return stream.isTTY && !process.env.NO_COLOR ? coloured : plain;
}
