// Channels: the same behaviour over every transport, between real processes
// (the suite is in channel-suite.ts; the queue, seqpacket and fifo transports
// run it in channel-queues.test.ts).
import { defineTransportSuite } from './channel-suite.js';

defineTransportSuite(['shm', 'shm-nospin', 'shm-shared', 'unix', 'unix-abstract', 'tcp', 'pipe']);
