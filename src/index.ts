// ipckit: Linux IPC as real kernel objects for Node.js.
import * as shmPosix from './shm/shm.js';
import { mmap } from './shm/mmap.js';
import * as futexApi from './sync/futex.js';
import * as semPosix from './sync/sem.js';
import * as semSysv from './sync/sem-sysv.js';

export { IpcError, type IpcLimit, type IpcMisuseError } from './core/errors.js';
export { SharedRegion } from './shm/region.js';
export type { FdRegion, ShmRegion, ShmOpenOptions, ShmStat, ShmListEntry, AnonymousOptions, FromFdOptions } from './shm/shm.js';
export type { SysvSegment, SysvShmStat, SysvShmGetOptions, SysvShmListEntry, AttachOptions } from './shm/shm-sysv.js';
export type { MappedFile, MmapFileOptions } from './shm/mmap.js';
export { ftok, type SysvKey, type SysvOwnership } from './core/sysv-key.js';

/** Shared memory: POSIX named objects, anonymous memfd regions, descriptors, and System V segments. */
export const shm = {
  open: shmPosix.open,
  unlink: shmPosix.unlink,
  list: shmPosix.list,
  anonymous: shmPosix.anonymous,
  fromFd: shmPosix.fromFd,
  sysv: shmPosix.sysv,
} as const;

export { mmap };

/** Cross-process futex wait/notify on an Int32Array over any ipckit SharedArrayBuffer. */
export const futex = {
  wait: futexApi.wait,
  waitAsync: futexApi.waitAsync,
  notify: futexApi.notify,
} as const;
export type { FutexResult, FutexWaitOptions } from './sync/futex.js';
export type { WaitOptions } from './core/waiter.js';
import * as signalsModule from './signals/signals.js';
export { PidFd } from './signals/signals.js';
export type {
  SignalAction,
  SignalInfo,
  SignalListener,
  SignalRow,
  SignalSpec,
  SignalWatch,
  SendOptions as SignalSendOptions,
  OnceOptions as SignalOnceOptions,
  WatchOptions as SignalWatchOptions,
} from './signals/signals.js';

/** Signals: send with a payload, receive with sender pid/uid/code in kernel order, the signal table. */
export const signals = {
  list: signalsModule.list,
  toNumber: signalsModule.toNumber,
  toName: signalsModule.toName,
  send: signalsModule.send,
  pidfd: signalsModule.pidfd,
  on: signalsModule.on,
  off: signalsModule.off,
  once: signalsModule.once,
  watch: signalsModule.watch,
  block: signalsModule.block,
  unblock: signalsModule.unblock,
  pending: signalsModule.pending,
  SIGRTMIN: signalsModule.SIGRTMIN,
  SIGRTMAX: signalsModule.SIGRTMAX,
} as const;

import * as channelModule from './channel/index.js';
export { Channel, ChannelServer } from './channel/index.js';
export type {
  ChannelOptions,
  ListenOptions as ChannelListenOptions,
  ChannelForkOptions,
  ForkedChannel,
  Codec,
  CodecName,
  CloseInfo,
  CloseReason,
  RequestOptions,
  RequestHandler,
  ChannelEvents,
  ChannelServerEvents,
  LoanedView,
  RawChannel,
  ZeroCopyChannel,
  HeartbeatOptions as ChannelHeartbeatOptions,
  TlsOptions as ChannelTlsOptions,
} from './channel/index.js';
export type { ChannelWaitOptions } from './channel/cancel.js';
export type { RetryOptions as ChannelRetryOptions } from './channel/connect-policy.js';
import * as fanout from './channel/fanout.js';
export { Publisher, Subscriber } from './channel/fanout.js';
export type { PublishOptions, SubscribeOptions, SubscriberEvents, MessagesLostError } from './channel/fanout.js';

/** Channels: typed messages over shm:, unix:, unix-abstract:, tcp://, pipe: — one API, the transport is the URL; publish/subscribe (one way, to many) over nats://. */
export const channel = {
  connect: channelModule.connect,
  listen: channelModule.listen,
  fork: channelModule.fork,
  parent: channelModule.parent,
  publish: fanout.publish,
  subscribe: fanout.subscribe,
} as const;
import * as mqPosix from './mq/mq-posix.js';
import * as mqSysv from './mq/mq-sysv.js';
export type { PosixQueue, MqMessage, MqOpenOptions, MqSendOptions, MqReceiveOptions, MqAttributes, MqListEntry, MessageData } from './mq/mq-posix.js';
export type { SysvQueue, SysvMessage, SysvMqGetOptions, SysvSendOptions, SysvReceiveOptions, SysvMqStat, SysvMqSetOptions, SysvMqListEntry } from './mq/mq-sysv.js';

/** Message queues: POSIX (priorities, timed, async, notify) and System V (typed receive). */
export const mq = {
  open: mqPosix.open,
  fromFd: mqPosix.fromFd,
  unlink: mqPosix.unlink,
  list: mqPosix.list,
  mountPoint: mqPosix.mountPoint,
  sysv: mqSysv.sysv,
} as const;

/** Semaphores: POSIX named and in-memory (process-shared sem_t), and System V sets. */
export const sem = {
  open: semPosix.open,
  unlink: semPosix.unlink,
  list: semPosix.list,
  inMemory: semPosix.inMemory,
  /** sizeof(sem_t): bytes an in-memory semaphore occupies. */
  SIZE: semPosix.SEM_SIZE,
  /** Alignment its byte offset needs. */
  ALIGN: semPosix.SEM_ALIGN,
  sysv: semSysv.sysv,
} as const;
export type { Semaphore, SemOpenOptions, SemListEntry, InMemoryOptions } from './sync/sem.js';
export type { SysvSemaphoreSet, SemOp, SysvSemStat, SysvSemGetOptions, SysvSemListEntry } from './sync/sem-sysv.js';
export { Mutex, Condition, type LockResult, type MutexState, type PlaceOptions, type ConditionWaitResult } from './sync/mutex.js';

import * as pipeApi from './pipes/pipe.js';
import * as fifoApi from './pipes/fifo.js';
import * as unixApi from './sockets/unix.js';
import { socketpair as socketpairApi } from './pipes/socketpair.js';
import * as unixListApi from './sockets/unix-list.js';
export { FdStream } from './core/fd-stream.js';
export { PipeEnd, type PipeOptions, type Popen, type PopenOptions, type ExitStatus, type SocketPairType } from './pipes/pipe.js';
export { UnixServer, UnixStream, type UnixConnection, type PeerCredentials, type ListenOptions as UnixListenOptions, type ConnectOptions as UnixConnectOptions, type DatagramOptions } from './sockets/unix.js';
export type { SocketPairOptions } from './pipes/socketpair.js';
export { MessageServer, MessageSocket, type MessageInfo, type SendOptions as MessageSendOptions, type MessageSocketOptions } from './sockets/message-socket.js';
export type { UnixAddress } from './sockets/unix-address.js';
export type { FifoCreateOptions, FifoOpenOptions, FifoMode, FifoListEntry } from './pipes/fifo.js';
export type { UnixSocketListEntry } from './sockets/unix-list.js';

/** An anonymous pipe (pipe2): `[readable, writable]` streams over real descriptors. */
export const pipe = pipeApi.pipe;
/** popen(3): a child whose stdout ('r') or stdin ('w') is a pipe to us, plus its exit status. */
export const popen = pipeApi.popen;
/** The buffer size of a pipe or FIFO (F_GETPIPE_SZ). */
export const pipeCapacity = pipeApi.capacity;
/** Two connected Unix sockets (socketpair): 'stream', 'seqpacket' or 'dgram'. */
export const socketpair = socketpairApi;

/** Named pipes (mkfifo): open waits for the other side, as open(2) of a FIFO does, without blocking the event loop. */
export const fifo = {
  create: fifoApi.create,
  open: fifoApi.open,
  remove: fifoApi.remove,
  isFifo: fifoApi.isFifo,
  list: fifoApi.list,
} as const;

/** Unix domain sockets: stream (net-compatible), seqpacket and datagram; paths and abstract names; fd passing; peer credentials. */
export const unix = {
  listen: unixApi.listen,
  connect: unixApi.connect,
  socketpair: socketpairApi,
  dgram: unixApi.dgram,
  fromFd: unixApi.fromFd,
  peerCredentials: unixApi.peerCredentials,
  list: unixListApi.list,
} as const;

import * as framingApi from './sockets/framing.js';
import * as tcpApi from './sockets/tcp.js';
import * as udpApi from './sockets/udp.js';
export { FrameDecoder, FrameEncoder, FramedChannel, type FramingOptions } from './sockets/framing.js';
export type { TcpListenOptions, TcpConnectOptions } from './sockets/tcp.js';
export type { UdpBindOptions } from './sockets/udp.js';

/** Length-prefixed messages (4-byte big-endian length) over any byte stream, with a maximum frame size. */
export const framing = {
  encode: framingApi.encode,
  channel: framingApi.channel,
  decoder: (options?: framingApi.FramingOptions) => new framingApi.FrameDecoder(options),
  encoder: (options?: framingApi.FramingOptions) => new framingApi.FrameEncoder(options),
  HEADER_BYTES: framingApi.HEADER_BYTES,
  DEFAULT_MAX_FRAME: framingApi.DEFAULT_MAX_FRAME,
} as const;

/** TCP (loopback by default): Node's net with Promises and IpcError. */
export const tcp = { listen: tcpApi.listen, connect: tcpApi.connect } as const;
/** UDP (loopback by default): Node's dgram with Promises and IpcError. */
export const udp = { bind: udpApi.bind, send: udpApi.send } as const;
