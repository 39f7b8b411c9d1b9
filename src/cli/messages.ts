// Library errors speak the library's language (`options.maxMessageSize`,
// `fifo.create`, `channel.fork()`); a person at a shell knows flags and
// commands. Every message the CLI prints passes through here, so the
// translation lives in one place.
import type { Command } from 'commander';

/** Library option names whose flag is spelt differently (the rest are found by name among the command's options). */
const FLAG_FOR: Record<string, string> = {
  maxMessageSize: 'maxSize',
  noError: 'truncate',
};

/** References to library functions that have a command, or no meaning, at the command line. */
const PHRASES: Array<[RegExp, string]> = [
  [/\(create it with fifo\.create\)/g, "(create it with 'ipckit fifo create')"],
  [/\bsee signals\.list\(\)/g, "see 'ipckit signal list'"],
];

const FUNCTION_CALL = /\b[a-zA-Z]+\.[a-zA-Z]+\(\)/;

const words = (name: string): string => name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);

/** The flag of `cmd` that sets the library option `name` (`maxMessageSize` → `--max-size`), if it has one. */
function flagFor(name: string, cmd: Command | undefined): string | undefined {
  const attribute = FLAG_FOR[name] ?? name;
  return cmd?.options.find((o) => o.attributeName() === attribute)?.long;
}

/** Whether the message is about a library option that `cmd` sets from a flag: then the flag's value was wrong. */
export function namesAFlag(message: string, cmd: Command | undefined): boolean {
  return [...message.matchAll(/\boptions\.([a-zA-Z]+)/g)].some((m) => flagFor(m[1]!, cmd) !== undefined);
}

/** Option names in the library's words: `noError: true`, `options.maxMessageSize`, or bare (`maxMessages 100 is above it`). */
function renameOptions(text: string, cmd: Command | undefined): string {
  return text
    .replace(/\b([a-zA-Z]+): true\b/g, (m, name: string) => flagFor(name, cmd) ?? m)
    .replace(/\boptions\.([a-zA-Z]+)/g, (_m, name: string) => flagFor(name, cmd) ?? words(name))
    .replace(/\b[a-z]+[A-Z][a-zA-Z]*\b/g, (name) => flagFor(name, cmd) ?? words(name));
}

/** The message as a command-line user should read it, for the command `cmd` that was running. */
export function cliMessage(message: string, cmd?: Command): string {
  // Quoted parts are names and paths the user gave ('/myQueue'): left as they are.
  let out = message
    .split(/('[^']*'|"[^"]*")/)
    .map((part, i) => (i % 2 === 1 ? part : renameOptions(part, cmd)))
    .join('');
  for (const [pattern, text] of PHRASES) out = out.replace(pattern, text);
  // Any other `module.function()` reference is advice about the API: drop the clauses that give it.
  const clauses = out.split(/;\s+/);
  const kept = clauses.filter((c) => !FUNCTION_CALL.test(c));
  return kept.length > 0 ? kept.join('; ') : out.replace(new RegExp(FUNCTION_CALL, 'g'), 'ipckit');
}
