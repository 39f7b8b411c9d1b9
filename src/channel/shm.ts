// shm: transport. Data goes through two SPSC rings in a sealed memfd
// (ring.ts); the kernel is only involved to wake a sleeping peer and to tell
// us when the peer is gone, both through the connection's control socket.
//
// Rendezvous (rendezvous.ts): the listener owns the abstract Unix socket
// "\0ipckit-shm/NAME". A connector creates the memfd (sealed: its size can
// never change, so no peer can kill us with SIGBUS by truncating it) and
// sends it with its hello by SCM_RIGHTS: { ring: R, shared: true }. The
// listener checks what it got before mapping it: a memfd on tmpfs, sealed,
// read-write, exactly 4096 + 2R bytes with R a power of two. Nothing is ever
// created in /dev/shm and no path is ever opened on a peer's say-so, so a
// kill -9 at any moment leaks nothing and a listener running as root maps
// only memory the peer itself could map.
// A listener with a shared ring (sharedRing) answers with its own sealed
// memfd and { shared: { ring, slot } }: the connector then writes into that
// ring (shm-shared.ts) instead of its own ring 0, and the listener's hub
// (shm-hub.ts) feeds this connection's frames to it.
//
// This file sets connections up; what they do is in shm-link.ts, by job:
// a ring pair (RingSenderLink reading with a RingReceiver), a connector
// writing into a shared ring (SharedWriterLink), and the listener's side of
// it (RingSenderLink fed by the hub, HubFedInput).
//
// Everything read from the shared memory is checked before use: positions,
// lengths, wrap markers (RingReader, ring.ts). A ring that does not make
// sense fails its channel with ERR_IPCKIT_BAD_FRAME after bounded work;
// other channels are untouched.
//
// Waiting (shm-spin.ts): after any activity a side keeps looking at its
// input ring for `spin` microseconds, one look per microtask hop so its own
// code keeps running in between; then it raises its "sleeping" flag,
// re-checks, and sleeps on its control socket. A producer rings (one byte on
// the control socket) only when the flag is up (compare-exchange, so once).
// nextSync() waits the same way, blocking.
import { constants as fsc } from 'node:fs';
import { stateError, sys } from '../core/errors.js';
import { native } from '../core/native.js';
import { anonymous, fromFd, type FdRegion } from '../shm/shm.js';
import type { Access, PeerCredentials } from './access.js';
import { closeAll, type ControlSocket } from './control.js';
import { Refusal, makeHello, type Hello } from './hello.js';
import type { Link } from './link.js';
import { LocalListener, connectLocal, type LocalListenerEvents } from './rendezvous.js';
import { CONTROL_BYTES, MAGIC, SHARED_HEADER, VERSION, W_MAGIC, W_MAX_FRAME, W_RING_SIZE, W_VERSION, maxFrameFor, ringSizeFor, ringWords, sharedTotalBytes, totalBytes, validRingSize } from './ring.js';
import { HubFedInput } from './shm-fed.js';
import { SharedRingHub } from './shm-hub.js';
import type { ShmLinkSetup } from './shm-link.js';
import { RingReceiver } from './shm-receiver.js';
import { RingSenderLink } from './shm-sender.js';
import { SharedRingWriter, SharedWriterLink } from './shm-shared.js';

interface ShmListenOptions extends ShmLinkOptions {
  /** One ring all connectors write into, read by one hub (MPSC). Default false: a ring pair per connection. */
  sharedRing?: boolean;
}

export interface ShmLinkOptions {
  /** Microseconds to spin after activity before sleeping; 'auto' = 50; false = never spin. */
  spin?: 'auto' | number | false;
  /** Bytes per direction (rounded up to a power of two). Default 4 MiB, or enough for maxMessageSize. */
  ringSize?: number;
  /** Receive messages as views into the ring that you release() (raw codec only). Default false. */
  zeroCopy?: boolean;
}

/** What connectShm/listenShm need besides the name. */
export interface ShmSettings extends ShmListenOptions {
  codec: string;
  maxMessageSize: number;
  access: Access;
  /** Connector: ms for the whole connect and handshake. */
  timeout?: number;
}

const AUTO_SPIN_US = 50;
const DEFAULT_RING = 4 * 1024 * 1024;

function socketName(name: string): string {
  return `ipckit-shm/${name}`;
}

function spinMicros(spin: ShmLinkOptions['spin']): number {
  if (spin === undefined || spin === 'auto') return AUTO_SPIN_US;
  if (spin === false) return 0;
  return spin;
}

/**
 * Checks a memfd a peer sent before it is mapped: a tmpfs file (not hugetlbfs,
 * whose faults can raise SIGBUS), sealed against shrinking and growing for
 * good, open read-write, and exactly `size` bytes. Throws a Refusal.
 */
function checkRingMemory(fd: number, size: number, what: string): void {
  const c = native.shmConstants;
  const info = sys(() => native.fdInspect(fd), { path: what });
  const sealsNeeded = c.F_SEAL_SHRINK | c.F_SEAL_GROW | c.F_SEAL_SEAL;
  const problem =
    (info.mode & 0o170000) !== 0o100000 || info.fsType !== c.TMPFS_MAGIC
      ? 'is not a memfd'
      : info.seals < 0 || (info.seals & sealsNeeded) !== sealsNeeded
        ? 'is not sealed against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)'
        : (info.seals & (c.F_SEAL_WRITE | c.F_SEAL_FUTURE_WRITE)) !== 0
          ? 'is sealed against writing'
          : info.access !== fsc.O_RDWR
            ? 'is not open read-write'
            : info.size !== size
              ? `is ${info.size} bytes, not ${size}`
              : null;
  if (problem) throw new Refusal('EPROTO', `the ${what} memory sent ${problem}`);
}

/** A ring size announced by a peer: a power of two in [4096, MAX_RING]. */
function announcedRing(value: unknown, what: string): number {
  if (!validRingSize(value)) throw new Refusal('EPROTO', `the peer announced an impossible ${what} size (${JSON.stringify(value)})`);
  return value as number;
}

/** A sealed memfd for ring memory, with the control block written. */
function ringMemory(bytes: number, label: string): FdRegion {
  return anonymous(bytes, { name: label, sealed: true });
}

export async function connectShm(name: string, s: ShmSettings): Promise<Link> {
  const maxIn = s.maxMessageSize + 5;
  const R = ringSizeFor(maxIn, s.ringSize ?? DEFAULT_RING);
  const url = `shm:${name}`;
  const mem = ringMemory(totalBytes(R), `ipckit-shm:${name}`);
  let writer: SharedRingWriter | null = null;
  let fds: number[] = [];
  let ctrl: ControlSocket | null = null;
  try {
    const i32 = new Int32Array(mem.buffer, 0, CONTROL_BYTES / 4);
    i32[W_VERSION] = VERSION;
    i32[W_RING_SIZE] = R;
    i32[W_MAX_FRAME] = maxIn;
    Atomics.store(i32, W_MAGIC, MAGIC);
    // shared: this end can write into a listener's shared ring.
    const hello = makeHello('shm', s.codec, s.maxMessageSize, { ring: R, shared: true });
    const conn = await connectLocal(socketName(name), url, () => ({ hello, fds: [mem.fd] }), s.access, 1, s.timeout);
    ctrl = conn.ctrl;
    fds = conn.fds;
    const reply = conn.reply;
    const setup: ShmLinkSetup = {
      region: mem,
      side: 'connector',
      ringSize: R,
      maxIn,
      maxOut: Math.min(reply.max + 5, maxFrameFor(R)),
      ctrl: conn.ctrl,
      peer: conn.peer,
      spinUs: spinMicros(s.spin),
      zeroCopy: s.zeroCopy === true,
      url,
    };
    if (reply.shared !== undefined) {
      const offer = reply.shared as Record<string, unknown>;
      const RS = announcedRing(offer?.ring, 'shared ring');
      const slot = offer.slot;
      if (!Number.isSafeInteger(slot) || (slot as number) <= 0 || (slot as number) > 0x7fffffff) throw new Refusal('EPROTO', 'the listener announced an impossible slot');
      if (fds.length !== 1) throw new Refusal('EPROTO', 'the listener offered a shared ring without its memory');
      checkRingMemory(fds[0]!, sharedTotalBytes(RS), 'shared ring');
      const region = fromFd(fds[0]!, { closeFd: true });
      fds = [];
      const flagWord = ringWords(0, R).producerSleeping;
      writer = new SharedRingWriter(region, RS, Math.min(reply.max + 5, maxFrameFor(RS, SHARED_HEADER)), slot as number, () => conn.ctrl.ring(), i32, flagWord);
      return new SharedWriterLink(setup, writer);
    }
    if (fds.length > 0) throw new Refusal('EPROTO', 'the listener sent descriptors it had no use for');
    return new RingSenderLink(setup, (link) => new RingReceiver(link, setup));
  } catch (e) {
    ctrl?.close();
    closeAll(fds);
    writer?.close();
    mem.close();
    throw e instanceof Refusal ? stateError('ERR_IPCKIT_HANDSHAKE', `${url}: ${e.message}`) : e;
  }
}

export interface ShmListener {
  close(): void;
  ref(): void;
  unref(): void;
}

/** Listens on shm:NAME; `onLink` gets one Link per connecting peer. */
export function listenShm(name: string, s: ShmSettings, onLink: (link: Link) => void, events: LocalListenerEvents): ShmListener {
  const url = `shm:${name}`;
  const maxIn = s.maxMessageSize + 5;
  const newHub = () => new SharedRingHub(url, maxIn, ringSizeFor(maxIn, s.ringSize ?? DEFAULT_RING, SHARED_HEADER), spinMicros(s.spin), ringMemory);
  let hub = s.sharedRing === true ? newHub() : null;
  const handshake = (ctrl: ControlSocket, hello: Hello, fds: number[], peer: PeerCredentials) => {
    let region: FdRegion | null = null;
    try {
      if (fds.length !== 1) throw new Refusal('EPROTO', `expected one descriptor (the connection's memory), got ${fds.length}`);
      const R = announcedRing(hello.ring, 'ring');
      checkRingMemory(fds[0]!, totalBytes(R), 'connection');
      region = fromFd(fds[0]!, { closeFd: true });
      fds.length = 0;
      if (hub && hello.shared !== true) throw new Refusal('EPROTO', 'this listener has a shared ring, which the connecting side cannot write');
      // A shared ring that went corrupt failed every channel through it; newcomers get a fresh one.
      if (hub?.failed) {
        hub.stopListening();
        hub = newHub();
      }
      const setup: ShmLinkSetup = {
        region,
        side: 'listener',
        ringSize: R,
        maxIn,
        maxOut: Math.min(hello.max + 5, maxFrameFor(R)),
        ctrl,
        peer,
        spinUs: spinMicros(s.spin),
        zeroCopy: s.zeroCopy === true,
        url,
      };
      // With a shared ring the connector writes there, and the hub feeds this connection.
      const shared = hub && { hub, slot: hub.newSlot() };
      const link = new RingSenderLink(setup, (l) => (shared ? new HubFedInput(l, shared.hub, shared.slot) : new RingReceiver(l, setup)));
      return {
        reply: makeHello('shm', s.codec, s.maxMessageSize, shared ? { shared: { ring: shared.hub.ringSize, slot: shared.slot } } : {}),
        fds: shared ? [shared.hub.region.fd] : [],
        done: () => onLink(link),
        failed: () => link.destroy(),
      };
    } catch (e) {
      closeAll(fds);
      region?.close();
      throw e;
    }
  };
  const listener = new LocalListener(socketName(name), url, 'shm', s.codec, s.access, 1, handshake, events);
  return {
    close() {
      listener.close();
      // The hub lasts until the frames of its last connection are read.
      hub?.stopListening();
    },
    ref: () => listener.ref(),
    unref: () => listener.unref(),
  };
}
