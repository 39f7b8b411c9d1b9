// Every step of `ipckit tour`, in the order the tour runs them. A step is one
// module exporting defineStep(name, { en, zh }, run); adding one is an import
// and an entry below (and its name in docs/cli.md).
import { channelStep } from './channel.js';
import { chooseStep } from './choose.js';
import { fifoStep } from './fifo.js';
import type { Step } from './kit.js';
import { mqStep } from './mq.js';
import { pipeStep } from './pipe.js';
import { semStep } from './sem.js';
import { shmStep } from './shm.js';
import { signalsStep } from './signals.js';
import { socketpairStep } from './socketpair.js';
import { sysvmqStep } from './sysvmq.js';
import { unixStep } from './unix.js';

export const STEPS: readonly Step[] = [
  pipeStep,
  socketpairStep,
  fifoStep,
  signalsStep,
  sysvmqStep,
  mqStep,
  semStep,
  shmStep,
  unixStep,
  channelStep,
  chooseStep,
];

export function findStep(name: string): Step | undefined {
  return STEPS.find((s) => s.name === name);
}
