// TCP on loopback: Node's net with Promises and IpcError.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { IpcError, framing, tcp } from 'ipckit';
import { assertUnknownOption } from '../helpers.js';

const T = { timeout: 60_000 };

describe('tcp (loopback)', () => {
  test('tcp: framed request/response', T, async () => {
    const server = await tcp.listen(0);
    const port = (server.address() as { port: number }).port;
    server.on('connection', (s) => {
      const ch = framing.channel(s);
      ch.on('message', (f: Buffer) => void ch.send(`echo:${f}`));
    });
    const client = await tcp.connect(port);
    const ch = framing.channel(client);
    const reply = once(ch, 'message');
    await ch.send('hi');
    assert.equal(((await reply)[0] as Buffer).toString(), 'echo:hi');
    client.destroy();
    server.close();
    await assert.rejects(tcp.connect(port), (e: unknown) => e instanceof IpcError && e.code === 'ECONNREFUSED');
  });

  test('a misspelt option of tcp is a TypeError naming the nearest one', async () => {
    await assertUnknownOption(() => tcp.listen(0, { hots: '127.0.0.1' } as never), 'host', 'tcp.listen');
    await assertUnknownOption(() => tcp.connect(1, { nodelay: false } as never), 'noDelay', 'tcp.connect');
  });
});
