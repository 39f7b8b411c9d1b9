// What every `ipckit` command has in common: exit status 2 and a hint for a
// wrong command line, 1 for a failed operation; durations in milliseconds;
// help and error texts in the command line's words (flags, commands), never
// the library's; and a section in docs/cli.md for every command and option.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { runCli, startCli } from './cli-run.js';
import { mq } from 'ipckit';
import { uniqueName } from '../helpers.js';

const T = { timeout: 120_000 };

/** Names of the subcommands a help text lists under "Commands:" (without `help`). */
function subcommands(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1];
  if (!section) return [];
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
}

let helpTree: Promise<Map<string, string>> | undefined;
/** Every command path (`shm create`, `limits`, ...) with its help text (read once). */
function allHelp(): Promise<Map<string, string>> {
  helpTree ??= readHelpTree();
  return helpTree;
}

async function readHelpTree(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (path: string[]): Promise<void> => {
    const r = await runCli([...path, '--help']);
    assert.equal(r.code, 0, `ipckit ${path.join(' ')} --help: ${r.stderr}`);
    const help = r.stdout.toString();
    const subs = subcommands(help);
    if (path.length > 0 && subs.length === 0) out.set(path.join(' '), help);
    for (const sub of subs) await visit([...path, sub]);
  };
  await visit([]);
  return out;
}

/** The entries of a help text's "Options:" list (a flag line and its wrapped description, as one string each). */
function optionEntries(help: string): string[] {
  const section = help.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return section.split(/\n(?= {2}-)/).map((e) => e.replace(/\s+/g, ' ').trim()).filter(Boolean);
}

/** The long flags a help text lists (without --help and --version). */
function flags(help: string): string[] {
  return optionEntries(help)
    .map((e) => /^(?:-\w, )?(--[\w-]+)/.exec(e)?.[1])
    .filter((f): f is string => f !== undefined && f !== '--help' && f !== '--version');
}

/**
 * The part of docs/cli.md about `ipckit <cmd>`: from the heading that names it
 * to the next heading of the same or a higher level (its subsections included).
 */
function docSection(docs: string, cmd: string): string | undefined {
  const lines = docs.split('\n');
  // `ipckit ls [kinds...]`, `ipckit send` — not `ipckit ls unix-socket`, which is about a use of ls.
  const names = new RegExp(`\`ipckit ${cmd}(?:\`| [<[-])`);
  const start = lines.findIndex((l) => /^#+ /.test(l) && names.test(l));
  if (start < 0) return undefined;
  const level = /^#+/.exec(lines[start]!)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

const LIBRARY_WORDS = /\boptions\.|\b[a-z]+\.[a-zA-Z]+\(\)/;

describe('ipckit help texts', () => {
  let helps: Map<string, string>;

  test('every command: durations in ms, no library names; docs/cli.md has a section for it and mentions each flag', T, async () => {
    helps = await allHelp();
    assert.ok(helps.size >= 20, `found ${[...helps.keys()].join(', ')}`);
    for (const cmd of ['limits', 'send', 'recv', 'signal wait', 'sem wait', 'mq recv', 'fifo cat', 'bench']) assert.ok(helps.has(cmd), cmd);
    const docs = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    for (const [cmd, help] of helps) {
      for (const entry of optionEntries(help).filter((e) => /^--(timeout|retry)\b/.test(e))) {
        assert.match(entry, /^--\w+ [<[]ms[>\]] .*\bms\b/, `ipckit ${cmd}: a duration option says ms: ${entry}`);
      }
      assert.doesNotMatch(help, /\bseconds?\b/, `ipckit ${cmd} --help mentions seconds`);
      assert.doesNotMatch(help, LIBRARY_WORDS, `ipckit ${cmd} --help names a library function or option`);
      const section = docSection(docs, cmd);
      assert.ok(section !== undefined, `docs/cli.md has no heading for ipckit ${cmd}`);
      for (const flag of flags(help)) assert.match(section, new RegExp(`${flag}\\b`), `docs/cli.md's section on ipckit ${cmd} does not mention ${flag}`);
    }
  });

  test('ipckit --help states the exit statuses and the unit of durations', T, async () => {
    const r = await runCli(['--help']);
    assert.match(r.stdout.toString(), /Exit status: 0 success, 1 the operation failed, 2 a usage error, 128\+N after signal N/);
    assert.match(r.stdout.toString(), /milliseconds \(ms\)/);
  });
});

describe('ipckit exit statuses', () => {
  test('usage errors exit 2 with one line and a hint, for every kind of command', T, async () => {
    const fifo = `/tmp/${uniqueName('never').slice(1)}`;
    const cases: Array<[string[], RegExp, string]> = [
      [['frobnicate'], /^ipckit: unknown command 'frobnicate'$/, 'ipckit'],
      [['sem', 'create'], /missing required argument 'target'/, 'ipckit sem create'],
      [['shm', 'read', '/x', '--offest', '1'], /unknown option '--offest' \(did you mean --offset\?\)/, 'ipckit shm read'],
      [['sem', 'wait', '/x', '--timeout', '1.5'], /timeout must be milliseconds from 0 to 2147483647, got "1\.5"/, 'ipckit sem wait'],
      [['sem', 'create', '/x', '--value', '-1'], /value must be an integer from 0 to 2147483647/, 'ipckit sem create'],
      [['mq', 'send', '/x', '--priority', '99999'], /priority must be an integer from 0 to 32767/, 'ipckit mq send'],
      [['mq', 'create', '/x', '--mode', '888'], /mode must be permission bits/, 'ipckit mq create'],
      [['fifo', 'cat', fifo, '--timeout', 'soon'], /timeout must be milliseconds/, 'ipckit fifo cat'],
      [['signal', 'wait', 'SIGUSR1', '--timeout', '0.5'], /timeout must be milliseconds/, 'ipckit signal wait'],
      [['signal', 'send', '1', 'SIGBOGUS'], /signal "SIGBOGUS" is not a signal on this system/, 'ipckit signal send'],
      [['send', 'nowhere', 'x'], /invalid channel URL 'nowhere': no scheme/, 'ipckit send'],
      [['send', 'shm:x', 'x', '--max-size', '2g'], /^ipckit: --max-size must be between 1 and \d+, got 2147483648$/, 'ipckit send'],
      [['send', 'shm:x', 'x', '--timeout', '5'], /--timeout is for --request/, 'ipckit send'],
      [['recv', 'pipe:3'], /a pipe: channel joins a Node program and the child it started/, 'ipckit recv'],
      [['recv', 'shm:x', '--count', 'many'], /count must be an integer >= 0/, 'ipckit recv'],
      [['ls', 'nonsense'], /unknown kind nonsense/, 'ipckit ls'],
      [['ls', '--path', fifo], /no such directory/, 'ipckit ls'],
      [['rm', '--stale', '--path', '/etc/hostname'], /\/etc\/hostname: not a directory/, 'ipckit rm'],
      [['limits', 'extra'], /too many arguments/, 'ipckit limits'],
      [['bench', '--transports', 'no-such-transport'], /unknown transport 'no-such-transport' \(see --list\)/, 'ipckit bench'],
      [['bench', '--size', '0'], /'0' is not a size in bytes/, 'ipckit bench'],
    ];
    for (const [args, message, helpOf] of cases) {
      const r = await runCli(args);
      const what = `ipckit ${args.join(' ')}`;
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.deepEqual(lines.length, 2, `${what}: one message, one hint: ${r.stderr}`);
      assert.match(lines[0]!, /^ipckit: /, what);
      assert.match(lines[0]!, message, what);
      assert.doesNotMatch(lines[0]!, LIBRARY_WORDS, what);
      assert.equal(lines[1], `Try '${helpOf} --help'.`, what);
    }
  });

  test('every command of the help tree: an unknown option exits 2 with the hint for that command', T, async () => {
    const helps = await allHelp();
    for (const cmd of helps.keys()) {
      const r = await runCli([...cmd.split(' '), '--no-such-flag']);
      const what = `ipckit ${cmd} --no-such-flag`;
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      // A missing argument or required option may be reported first: either way a usage error.
      const [message, hint, ...more] = r.stderr.trimEnd().split('\n');
      assert.match(message!, /^ipckit: (unknown option '--no-such-flag'|missing required argument|required option)/, what);
      assert.equal(hint, `Try 'ipckit ${cmd} --help'.`, what);
      assert.deepEqual(more, [], what);
    }
  });

  test('no command at all prints the help on stderr and exits 2; --help and --version exit 0', T, async () => {
    const bare = await runCli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^Usage: ipckit/);
    for (const args of [['--help'], ['shm', 'create', '--help'], ['--version']]) assert.equal((await runCli(args)).code, 0, args.join(' '));
  });

  test('every command that addresses an object: a missing one exits 1 with one line and no hint', T, async () => {
    const name = uniqueName('missing');
    const path = `/tmp/${name.slice(1)}`;
    const missing: Record<string, string[]> = {
      'shm write': [name, '--data', 'x'],
      'shm read': [name],
      'shm stat': [name],
      'shm rm': [name],
      'sem post': [name],
      'sem wait': [name, '--timeout', '10'],
      'sem get': [name],
      'sem rm': [name],
      'mq send': [name, '--data', 'x'],
      'mq recv': [name, '--nowait'],
      'mq stat': [name],
      'mq rm': [name],
      'fifo cat': [path],
      'fifo write': [path, '--data', 'x'],
      'fifo rm': [path],
      'fifo create': [`${path}/in-a-missing-directory`],
      'signal send': ['2147483647', '0'],
      send: [`unix:${path}.sock`, 'x'],
      recv: ['--connect', `unix:${path}.sock`],
      bridge: [`unix:${path}.sock`, `unix:${path}-far.sock`],
    };
    // Commands that make objects from nothing or only read the system: nothing can be missing.
    const addressNothing = ['shm create', 'sem create', 'mq create', 'signal list', 'signal wait', 'ls', 'rm', 'limits', 'bench', 'tour'];
    const helps = await allHelp();
    assert.deepEqual([...helps.keys()].filter((cmd) => !(cmd in missing) && !addressNothing.includes(cmd)), [], 'every command is classified');
    for (const [cmd, args] of Object.entries(missing)) {
      const r = await runCli([...cmd.split(' '), ...args]);
      const what = `ipckit ${cmd} ${args.join(' ')}`;
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /^ipckit: (ENOENT: no such file or directory, \w+ '|no such process 2147483647$)/m, what);
    }
  });

  test('a failed operation exits 1 with one line and no hint, in the command line\'s words', T, async () => {
    const cases: Array<[string[], RegExp]> = [
      [['mq', 'recv', uniqueName('cli-usage')], /^ipckit: ENOENT: no such file or directory, mq_open '\/ipckit-test-cli-usage-/],
      [['fifo', 'cat', '/etc/hostname'], /^ipckit: EINVAL: .*not a FIFO \(create it with 'ipckit fifo create'\)$/],
      [['send', `unix:/tmp/${uniqueName('nobody').slice(1)}.sock`, 'x'], /^ipckit: ENOENT: .*connect 'unix:/],
    ];
    // The library's advice names its options (maxSize, noError: true): here they are flags.
    using q = mq.sysv.get('private', { create: true });
    await q.send(1, Buffer.from('0123456789'));
    cases.push([['mq', 'recv', `id:${q.id}`, '--max-size', '4'], /^ipckit: E2BIG: .*\(limit --max-size = 4\): .*pass a larger --max-size, or --truncate to truncate\)$/]);
    try {
      for (const [args, message] of cases) {
        const r = await runCli(args);
        assert.equal(r.code, 1, `ipckit ${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        assert.match(r.stderr.trimEnd(), message);
        assert.doesNotMatch(r.stderr, LIBRARY_WORDS);
        assert.doesNotMatch(r.stderr.replace(/'[^']*'/g, ''), /\b[a-z]+[A-Z]\w*\b/, 'no camelCase library names');
      }
    } finally {
      q.remove();
    }
  });
});

describe('ipckit durations are milliseconds', () => {
  test('signal wait --timeout 100 gives up after about 100 ms (status 124)', T, async () => {
    const cli = startCli(['signal', 'wait', 'SIGUSR1', '--timeout', '100']);
    await cli.stderrLine(/waiting for SIGUSR1/);
    const started = performance.now();
    const r = await cli.done;
    const ms = performance.now() - started;
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /timed out after 100 ms \(0 signal\(s\) received\)/);
    // The timer starts just before the "waiting" line; the exit itself takes a few ms more.
    assert.ok(ms >= 50 && ms < 2000, `timed out ${ms.toFixed(0)} ms after the waiting line`);
  });
});
