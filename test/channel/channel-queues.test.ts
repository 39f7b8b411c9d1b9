// Channels over the message-queue, seqpacket and fifo transports: the same
// suite as channel.test.ts (channel-suite.ts), between real processes.
import { defineTransportSuite } from './channel-suite.js';

defineTransportSuite(['mq', 'sysvmq', 'unix-seqpacket', 'fifo']);
