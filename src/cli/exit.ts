// How a command ends, the same for every subcommand: exit status 0 on
// success, 1 when the operation failed, 2 when the command line is wrong
// (commander's own errors, bad option values, UsageError), 128 + n after
// signal n (interrupt.ts). Errors are one line `NAME: message` on stderr; a
// usage error adds a second line naming the help to read.
import type { Command } from 'commander';
import { IpcError } from '../core/errors.js';
import { UsageError } from './args.js';
import { interrupted } from './interrupt.js';
import { cliMessage, namesAFlag } from './messages.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const debug = process.env.IPCKIT_DEBUG === '1';
/** The program's name, the prefix of every message. */
let prefix = 'ipckit';
/** The command whose action is running: its flags name library options, its help is the hint. */
let running: Command | undefined;

/** 'ipckit shm create' for the create subcommand of shm. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

const hint = (cmd: Command): string => `Try '${commandPath(cmd)} --help'.`;

/** commander's "error: X\n(Did you mean Y?)" as one line: "NAME: X (did you mean Y?)". */
function oneLine(text: string): string {
  const body = text.trim().replace(/^error: /, '').replace(/\n\(Did you mean/g, ' (did you mean').replace(/\s*\n\s*/g, ' ');
  return `${prefix}: ${body}`;
}

function applyTo(cmd: Command): void {
  cmd
    // Help and --version end with 0; every error commander finds is a usage error.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .configureOutput({ outputError: (text, write) => write(`${oneLine(text)}\n`) })
    .showHelpAfterError(hint(cmd));
  for (const sub of cmd.commands) applyTo(sub);
}

/**
 * Applies the conventions to `program` and every subcommand it has now
 * (call it after adding them: commands made elsewhere and added with
 * addCommand() do not inherit settings).
 */
export function applyExitConventions(program: Command): void {
  prefix = program.name();
  applyTo(program);
  program.hook('preAction', (_program, action) => {
    running = action;
  });
}

/** The library's codes for a value it refused before any system call. */
const BAD_VALUE = ['ERR_IPCKIT_OUT_OF_RANGE', 'ERR_IPCKIT_INVALID_ARG_VALUE', 'ERR_IPCKIT_INVALID_ARG_TYPE'];

/** A UsageError, or the library refusing a value the running command took from one of its flags. */
function isUsage(err: Error): boolean {
  if (err instanceof UsageError) return true;
  return BAD_VALUE.includes((err as { code?: string }).code ?? '') && namesAFlag(err.message, running);
}

/** Prints an error of a command's action and sets the exit status: 2 for a usage error, else 1. */
export function report(e: unknown): void {
  // After Ctrl-C the signal's status stands; what failed because the work was cut short is no news.
  if (interrupted()) return;
  const err = e instanceof Error ? e : new Error(String(e));
  const usage = isUsage(err);
  process.stderr.write(`${prefix}: ${cliMessage(err.message, running)}\n`);
  if (usage && running) process.stderr.write(`${hint(running)}\n`);
  if (debug) {
    process.stderr.write(`${err.stack ?? ''}\n`);
    if (err instanceof IpcError) process.stderr.write(`${JSON.stringify({ ...err })}\n`);
  }
  process.exitCode = usage ? EXIT_USAGE : EXIT_FAILURE;
}
