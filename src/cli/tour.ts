// `ipckit tour [mechanism] [--lang zh|en]`: every IPC mechanism between real
// processes, narrated step by step with the system calls that do it. The
// steps live in src/cli/tour/ (one module each, listed in steps.ts).
import type { Command } from 'commander';
import { LANGS, type Lang } from './tour/kit.js';
import { messages, runTour } from './tour/run.js';
import { findStep, STEPS } from './tour/steps.js';

/** Exit status of a command-line mistake. */
const USAGE = 2;

function usageError(text: string): void {
  process.stderr.write(`ipckit: ${text}\n`);
  process.exitCode = USAGE;
}

async function tour(mechanism: string | undefined, o: { lang: string; list?: boolean }): Promise<void> {
  if (!LANGS.includes(o.lang as Lang)) return usageError(`unknown language '${o.lang}' for --lang; choose ${LANGS.join(' or ')}`);
  const lang = o.lang as Lang;
  if (o.list) {
    const width = Math.max(...STEPS.map((s) => s.name.length));
    for (const s of STEPS) process.stdout.write(`${s.name.padEnd(width)}  ${s.title(lang)}\n`);
    return;
  }
  const step = mechanism === undefined ? undefined : findStep(mechanism);
  if (mechanism !== undefined && !step) return usageError(messages[lang].unknownStep(mechanism, STEPS.map((s) => s.name).join(', ')));
  process.exitCode = await runTour(step ? [step] : STEPS, lang);
}

export function register(program: Command): void {
  program
    .command('tour')
    .description('a narrated tour of every IPC mechanism between real processes (also a smoke test: exit status 1 if a step fails)')
    .argument('[mechanism]', `run only this step: ${STEPS.map((s) => s.name).join(', ')}`)
    .option('--lang <lang>', `language of the narration: ${LANGS.join(' or ')}`, 'en')
    .option('--list', 'list the steps and exit')
    // commander has printed its message (an unknown option, a missing value, a second mechanism): a usage error too.
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : USAGE))
    .action(tour);
}
