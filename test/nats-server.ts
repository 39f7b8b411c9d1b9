// A real nats-server for the tests of nats:// channels: one per test file,
// on a free loopback port, JetStream on with its store in a temporary
// directory, stopped (and the directory removed) at the end of the file.
// Ready means its log said so: no sleeps.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { has } from './helpers.js';

/** Why nats:// tests cannot run here, or null. */
export const natsServerSkip: string | null = has('nats-server') ? null : 'nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)';

/** How long the server may take to say it is ready. */
const READY_MS = 10_000;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export class NatsServer {
  readonly port: number;
  readonly #dir: string;
  readonly #auth: string[];
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  private constructor(port: number, dir: string, auth: string[]) {
    this.port = port;
    this.#dir = dir;
    this.#auth = auth;
  }

  /** Starts a server (with `auth`: clients must give that user and password); it is stopped when the test file ends. */
  static async start(auth?: { user: string; pass: string }): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'ipckit-nats-')), auth ? ['--user', auth.user, '--pass', auth.pass] : []);
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
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.#dir, ...this.#auth], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`nats-server did not get ready within ${READY_MS} ms:\n${log}`)), READY_MS);
      const fail = (e: Error) => {
        clearTimeout(timer);
        child.stderr!.removeAllListeners('data');
        reject(e);
      };
      const early = (code: number | null, signal: string | null) => fail(new Error(`nats-server exited (${signal ?? code}) before it was ready:\n${log}`));
      child.once('exit', early);
      child.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          child.off('exit', early);
          child.stderr!.removeAllListeners('data');
          // Keep draining its log so a chatty server never blocks on a full pipe.
          child.stderr!.resume();
          resolve();
        }
      });
    });
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
