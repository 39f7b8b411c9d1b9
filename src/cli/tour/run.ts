// Runs tour steps one after the other: a heading each, a scope each (cleaned
// up however the step ends), a watchdog each; later steps run after a failed
// one. On SIGINT/SIGTERM the running step's children are killed and reaped
// and everything the tour made is removed before the process exits.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepTrial } from '../../bench/trial-files.js';
import { mq, sem } from '../../index.js';
import { Scope, Tour, tourKey, type Lang, type Names, type Output, type Step } from './kit.js';
import { STEPS } from './steps.js';
import { styleFor, wrap } from './text.js';

const en = {
  intro: (n: number) =>
    `A tour of Linux IPC between real processes, in ${n} step${n === 1 ? '' : 's'}. Each numbered line says what happens; the system calls that do it are in [brackets].`,
  failed: (message: string) => `✗ this step failed: ${message}`,
  failedLine: (name: string, message: string) => `tour step '${name}' failed: ${message}`,
  timedOut: (seconds: number) => `it did not finish within ${seconds} s`,
  passed: (n: number, seconds: string) =>
    `${n === 1 ? 'The step' : `All ${n} steps`} passed in ${seconds} s, and nothing of the tour is left in /dev/shm, /dev/mqueue or System V IPC (see for yourself: ls /dev/shm /dev/mqueue; ipcs).`,
  someFailed: (failed: string[], n: number) => `${failed.length} of ${n} steps failed: ${failed.join(', ')}.`,
  leftovers: (list: string) => `The steps left these behind; the tour removed them: ${list}`,
  interrupted: (signal: string) => `Interrupted (${signal}): killing the children and removing everything the tour made.`,
  unknownStep: (name: string, names: string) => `unknown mechanism '${name}'; choose one of: ${names}`,
};

const zh: typeof en = {
  intro: (n: number) => `在真实进程之间游览 Linux 进程间通信，共 ${n} 步。每个编号行说明发生了什么；完成这件事的系统调用写在 [方括号] 里。`,
  failed: (message: string) => `✗ 这一步失败了：${message}`,
  failedLine: (name: string, message: string) => `导览步骤 '${name}' 失败：${message}`,
  timedOut: (seconds: number) => `没有在 ${seconds} 秒内完成`,
  passed: (n: number, seconds: string) =>
    `${n === 1 ? '这一步' : `全部 ${n} 步`}在 ${seconds} 秒内通过，/dev/shm、/dev/mqueue 和 System V IPC 中没有留下导览创建的任何东西（可以自己检查：ls /dev/shm /dev/mqueue; ipcs）。`,
  someFailed: (failed: string[], n: number) => `${n} 步中有 ${failed.length} 步失败：${failed.join('、')}。`,
  leftovers: (list: string) => `这些步骤留下了以下对象，导览已将其删除：${list}`,
  interrupted: (signal: string) => `被中断（${signal}）：正在结束子进程并删除导览创建的一切。`,
  unknownStep: (name: string, names: string) => `未知的机制 '${name}'；可选：${names}`,
};

export const messages: Record<Lang, typeof en> = { en, zh };

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Keys (first column) of the kernel's table of System V objects of one kind. */
function sysvKeys(kind: 'msg' | 'sem' | 'shm'): number[] {
  try {
    return readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n').slice(1).map((line) => Number(line.trim().split(/\s+/)[0]));
  } catch {
    return [];
  }
}

/** What of this tour is still there: POSIX names with its prefix, files in its directory, System V objects with its key. */
function leftovers(names: Names): string[] {
  const found: string[] = [];
  for (const dir of ['/dev/shm', '/dev/mqueue']) {
    for (const f of entries(dir)) if (f.startsWith(names.prefix) || f.startsWith(`sem.${names.prefix}`)) found.push(`${dir}/${f}`);
  }
  for (const f of entries(names.workDir)) found.push(join(names.workDir, f));
  const key = names.sysvKey | 0;
  for (const kind of ['msg', 'sem', 'shm'] as const) if (sysvKeys(kind).includes(key)) found.push(`System V ${kind} key ${names.sysvKey}`);
  return found;
}

/** Removes everything leftovers() finds, and the work directory. Synchronous: it also runs from an 'exit' hook. */
function sweep(names: Names): void {
  sweepTrial({ workDir: names.workDir, namePrefix: names.prefix });
  try {
    mq.sysv.get(names.sysvKey).remove();
  } catch {
    /* none */
  }
  try {
    sem.sysv.get(names.sysvKey).remove();
  } catch {
    /* none */
  }
}

/** A paragraph of the tour's own (not a step's), wrapped to the output's width. */
function paragraph(out: Output, text: string, style: (s: string) => string = (s) => s, indent = ''): void {
  for (const line of wrap(text, out.width - indent.length)) out.write(indent + style(line));
}

function stdoutOutput(): Output {
  const columns = process.stdout.isTTY ? process.stdout.columns : 100;
  return { style: styleFor(process.stdout), width: Math.min(columns || 100, 100), write: (line) => process.stdout.write(`${line}\n`) };
}

/** Runs `selected` steps in `lang`; returns the exit status (0: every step passed). */
export async function runTour(selected: readonly Step[], lang: Lang, out: Output = stdoutOutput()): Promise<number> {
  const m = messages[lang];
  const prefix = `ipckit-tour-${process.pid}-`;
  const names: Names = { prefix, workDir: mkdtempSync(join(tmpdir(), prefix)), sysvKey: tourKey(process.pid) };
  let current: Scope | null = null;
  let interrupted = false;

  const onExit = () => {
    void current?.close();
    sweep(names);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    out.write('');
    paragraph(out, m.interrupted(signal), out.style.failure);
    void (async () => {
      await current?.close(new Error(`interrupted by ${signal}`));
      sweep(names);
      process.exit(128 + (constants.signals[signal] ?? 0));
    })();
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started = performance.now();
  const failed: string[] = [];
  paragraph(out, m.intro(selected.length));
  try {
    for (const step of selected) {
      if (interrupted) await new Promise(() => {}); // the signal handler is exiting
      out.write('');
      out.write(out.style.heading(`[${STEPS.indexOf(step) + 1}/${STEPS.length}] ${step.name} — ${step.title(lang)}`));
      const scope: Scope = (current = new Scope());
      let watchdog: NodeJS.Timeout | undefined;
      try {
        const timedOut = new Promise<never>((_, reject) => {
          watchdog = setTimeout(() => reject(new Error(m.timedOut(step.timeoutMs / 1000))), step.timeoutMs);
        });
        await Promise.race([step.run(new Tour(lang, names, scope, out)), timedOut]);
      } catch (e) {
        if (interrupted) await new Promise(() => {}); // the signal handler is exiting
        const message = e instanceof Error ? e.message : String(e);
        failed.push(step.name);
        paragraph(out, m.failed(message), out.style.failure, '     ');
        process.stderr.write(`ipckit: ${m.failedLine(step.name, message)}\n`);
      } finally {
        clearTimeout(watchdog);
        await scope.close();
        current = null;
      }
    }
    const left = leftovers(names);
    out.write('');
    if (left.length) paragraph(out, m.leftovers(left.join(', ')), out.style.failure);
    if (failed.length) paragraph(out, m.someFailed(failed, selected.length), out.style.failure);
    else if (!left.length) paragraph(out, m.passed(selected.length, ((performance.now() - started) / 1000).toFixed(1)));
    return failed.length || left.length ? 1 : 0;
  } finally {
    sweep(names);
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
