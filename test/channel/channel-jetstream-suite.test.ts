// The parametrised channel suite (test/channel/channel-suite.ts) over jetstream://,
// against the nats-server of test/channel/channel-pair.ts (JetStream on); what only
// jetstream:// has is in channel-jetstream.test.ts.
import { defineTransportSuite } from './channel-suite.js';

defineTransportSuite(['jetstream']);
