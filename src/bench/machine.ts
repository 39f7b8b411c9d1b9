// The machine line printed above every table: results mean little without it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release } from 'node:os';

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  kernel: string;
  /** 'not pinned', or which CPU each peer was pinned to. */
  pinning: string;
  /** 1-minute load average when the run started: other work on a shared machine skews results. */
  load: number;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^model name\s*:/.test(l));
    if (line) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    /* fall through */
  }
  return cpus()[0]?.model?.trim() || 'unknown CPU';
}

/** The CPUs this process may run on (its affinity, which cgroups and taskset narrow). */
export function allowedCpus(): number[] {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const list = /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1];
    if (list) {
      return list.split(',').flatMap((part) => {
        const [a, b] = part.split('-').map(Number);
        return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
      });
    }
  } catch {
    /* fall through */
  }
  return Array.from({ length: availableParallelism() }, (_, i) => i);
}

export function hasTaskset(): boolean {
  return spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
}

export function machineInfo(pin?: { driverCpu: number; echoCpu: number }): MachineInfo {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    node: process.version,
    kernel: `Linux ${release()}`,
    pinning: pin ? `pinned (taskset): driver on CPU ${pin.driverCpu}, echo on CPU ${pin.echoCpu}` : 'not pinned',
    load: loadavg()[0],
  };
}

export function machineLine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.kernel}, ${m.pinning}, load average ${m.load.toFixed(2)} at start`;
}
