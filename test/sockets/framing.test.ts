// Length-prefixed framing over real byte streams (over TCP: tcp.test.ts).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { IpcError, framing, pipe } from 'ipckit';
import { assertUnknownOption, has, startPeer } from '../helpers.js';

const T = { timeout: 60_000 };

describe('framing', () => {
  test('frames survive being split byte by byte and merged across one pipe', T, async () => {
    const [r, w] = pipe();
    const ch = framing.channel([r, w]);
    const got: string[] = [];
    const three = new Promise<void>((resolve) =>
      ch.on('message', (f: Buffer) => {
        got.push(f.toString());
        if (got.length === 3) resolve();
      }),
    );
    const bytes = Buffer.concat([framing.encode('first'), framing.encode(''), framing.encode('third frame')]);
    for (const b of bytes) w.write(Buffer.from([b]));
    await three;
    assert.deepEqual(got, ['first', '', 'third frame']);
    r.destroy();
    w.destroy();
  });

  test('the format is the plain big-endian u32 length that Python struct speaks', { ...T, skip: !has('python3') && 'python3 missing' }, async () => {
    const [r, w] = pipe();
    const py = startPeer('python3', ['-c', "import struct,sys\nd=b'from python'\nsys.stdout.buffer.write(struct.pack('>I', len(d)) + d)\n"], {
      stdio: ['ignore', w.fd, 'inherit'],
    });
    w.destroy();
    const dec = framing.decoder();
    r.pipe(dec);
    const [frame] = (await once(dec, 'data')) as [Buffer];
    assert.equal(frame.toString(), 'from python');
    await py.exited;
  });

  test('encode refuses a payload above maxFrameSize; bad options are misuse', () => {
    assert.throws(() => framing.encode(Buffer.alloc(11), { maxFrameSize: 10 }), (e: unknown) => e instanceof IpcError && e.code === 'EMSGSIZE');
    assert.throws(() => framing.decoder({ maxFrameSize: -1 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => framing.encode(42 as never), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });

  test('a misspelt option of framing is a TypeError naming the nearest one', async () => {
    const [r, w] = pipe();
    const calls: Array<[string, () => unknown, string | null]> = [
      ['encode', () => framing.encode('x', { maxFrameSze: 10 } as never), 'maxFrameSize'],
      ['decoder', () => framing.decoder({ maxframesize: 10 } as never), 'maxFrameSize'],
      ['encoder', () => framing.encoder({ maxFrame: 10 } as never), null],
      ['channel', () => framing.channel([r, w], { maxFrameSize: 10, maxFrameSizes: 10 } as never), 'maxFrameSize'],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    r.destroy();
    w.destroy();
  });
});
