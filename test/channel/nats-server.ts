// A real nats-server for the tests of nats:// channels: one per test file,
// on a free loopback port, JetStream on with its store in a temporary
// directory, stopped (and the directory removed) at the end of the file.
// Ready means its log said so: no sleeps.
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { freeLoopbackPort, spawnNatsServer } from '../../dist/bench/nats-server.js';
import { has } from '../helpers.js';

/** Why nats:// tests cannot run here, or null. */
export const natsServerSkip: string | null = has('nats-server') ? null : 'nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)';

export class NatsServer {
  readonly port: number;
  readonly #dir: string;
  /** More nats-server arguments (auth, TLS). */
  readonly #args: string[];
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  private constructor(port: number, dir: string, args: string[]) {
    this.port = port;
    this.#dir = dir;
    this.#args = args;
  }

  /** Starts a server (`args`: more nats-server arguments, such as --user/--pass or --tls...); it is stopped when the test file ends. */
  static async start(args: string[] = []): Promise<NatsServer> {
    const server = new NatsServer(await freeLoopbackPort(), mkdtempSync(join(tmpdir(), 'ipckit-nats-')), args);
    after(() => server.stop());
    await server.restart();
    return server;
  }

  /** A channel URL on this server (a unique NAME unless given). */
  url(name: string): string {
    return `nats://127.0.0.1:${this.port}/${name}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** (Re)starts the server on the same port and store; resolves once it accepts clients. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error('nats-server is already running');
    const { child, exited } = await spawnNatsServer(this.port, ['-js', '-sd', this.#dir, ...this.#args]);
    this.#child = child;
    this.#exited = exited;
  }

  /** SIGKILL: the server dies with everything in flight. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    child.kill('SIGKILL');
    await this.#exited;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child) {
      child.kill('SIGTERM');
      await this.#exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
