// UDP on loopback: Node's dgram with Promises and IpcError.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { udp } from 'ipckit';
import { assertUnknownOption } from '../helpers.js';

const T = { timeout: 60_000 };

describe('udp (loopback)', () => {
  test('udp: one datagram each way', T, async () => {
    const a = await udp.bind(0);
    const b = await udp.bind(0);
    const got = once(b, 'message');
    await udp.send(a, 'dgram', b.address().port);
    assert.equal(((await got)[0] as Buffer).toString(), 'dgram');
    a.close();
    b.close();
  });

  test('a misspelt option of udp is a TypeError naming the nearest one', async () => {
    await assertUnknownOption(() => udp.bind(0, { tpye: 'udp4' } as never), 'type', 'udp.bind');
  });
});
