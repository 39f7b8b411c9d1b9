// Code examples in the Markdown docs: which fenced blocks are programs, how
// they are split into processes, and which are marked as not meant to run.

/** Fence languages the docs test runs; every other block (sh, json, plain) is text. */
export const RUN_LANGUAGES = ['js', 'mjs', 'ts'] as const;
export type RunLanguage = (typeof RUN_LANGUAGES)[number];

/** A line of its own between two parts of an example that run as two processes. */
export const PROCESS_SPLIT = '// --- in another process ---';

export interface DocBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  language: RunLanguage;
  code: string;
  /** The reason given by `<!-- not run: REASON -->` on the line before the fence, if any. */
  notRun: string | null;
}

const NOT_RUN = /^<!--\s*not run:\s*(.*?)\s*-->\s*$/;
const FENCE = /^(`{3,}|~{3,})\s*([\w+-]*)/;

/** Every fenced js/mjs/ts block of one Markdown file, in order. */
export function extractBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const [, fence, info] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end].startsWith(fence) && lines[end].slice(fence.length).trim() === '')) end++;
    const language = info.toLowerCase();
    if ((RUN_LANGUAGES as readonly string[]).includes(language)) {
      const marker = i > 0 ? NOT_RUN.exec(lines[i - 1]) : null;
      blocks.push({
        file,
        line: i + 1,
        language: language as RunLanguage,
        code: lines.slice(i + 1, end).join('\n'),
        notRun: marker ? marker[1] || 'no reason given' : null,
      });
    }
    i = end;
  }
  return blocks;
}

/**
 * The processes of an example: the code between split lines, each preceded by
 * blank lines so that a line number in an error is the line in the Markdown file.
 */
export function splitProcesses(block: Pick<DocBlock, 'code' | 'line'>): string[] {
  const lines = block.code.split('\n');
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i <= lines.length; i++) {
    if (i < lines.length && lines[i].trim() !== PROCESS_SPLIT) continue;
    parts.push('\n'.repeat(block.line + start) + lines.slice(start, i).join('\n') + '\n');
    start = i + 1;
  }
  return parts;
}

/** `using` / `await using` declarations, which Node 20 cannot parse in plain JavaScript. */
export function usingDeclarations(code: string): string[] {
  return code.split('\n').filter((text) => /(^|[^\w$.])(await\s+)?using\s+[A-Za-z_$][\w$]*\s*=/.test(text.replace(/\/\/.*$/, '')));
}

/** Paths under /tmp, /run and /var/tmp that an example names in string literals (files it may create). */
export function namedPaths(code: string): string[] {
  const found = new Set<string>();
  for (const m of code.matchAll(/['"`](\/(?:tmp|run|var\/tmp)\/[^'"`\s$]+)['"`]/g)) found.add(m[1]);
  return [...found];
}
