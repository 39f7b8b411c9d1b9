// The transport registry (src/channel/transports/index.ts) is the one list of
// channel transports: the channel suite's transport list, docs/channels.md's
// transport table and fork()'s transports must follow it, so adding a
// transport to the registry without its suite entry and its docs row fails
// here. And src/channel/index.ts stays a facade: it dispatches through the
// registry, never by comparing a scheme.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SCHEMES, TRANSPORTS, parseUrl } from '../../dist/channel/transports/index.js';
import { defaultMaxMessageSize } from '../../dist/channel/transport.js';
import { FORK_TRANSPORTS } from '../../dist/channel/fork.js';
import { T, TRANSPORTS as SUITE, pair, transportSkip, urlFor, type Transport as SuiteTransport } from './channel-pair.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Registry schemes the parametrised suite does not run, and where they are tested instead. */
const NOT_IN_SUITE: Record<string, string> = {
  'unix-seqpacket-abstract': 'the unix-seqpacket: code with an abstract address; channel-api.test.ts "unix-seqpacket: ... -abstract works" covers it',
  tls: 'the tcp:// link inside TLS; channel-tcp.test.ts runs the whole suite of channel-suite.ts over it (its connectors need the test CA)',
};

/** The scheme a suite transport runs over (its variants, such as shm-nospin, run over their base scheme). */
function schemeOf(t: SuiteTransport): string {
  return t === 'pipe' ? 'pipe' : parseUrl(urlFor(t)).scheme;
}

function transportOf(scheme: string) {
  const t = TRANSPORTS.find((t) => t.schemes.includes(scheme));
  assert.ok(t, `no transport in the registry serves ${scheme}:`);
  return t;
}

/** docs/channels.md's words for a default size: whole MiB as "N MiB", else the number of bytes. */
function describeSize(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : String(bytes);
}

/** The rows of the first table under `heading`: the schemes its URL cell names, and its cells. */
function docRows(heading = '## Transports', second = 'default `maxMessageSize`'): Array<{ schemes: string[]; cells: string[] }> {
  const md = readFileSync(join(root, 'docs', 'channels.md'), 'utf8');
  const at = md.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `docs/channels.md has a section "${heading}"`);
  const lines = md.slice(at).split('\n').slice(2);
  const table = lines.slice(lines.findIndex((l) => l.startsWith('|')));
  const rows = table.slice(0, table.findIndex((l) => !l.startsWith('|')));
  const header = rows[0]!.split(' | ');
  assert.equal(header[1], second, `the second column of the table under "${heading}"`);
  return rows.slice(2).map((row) => {
    const cells = row.slice(2, -2).split(' | ');
    const schemes = [...cells[0]!.matchAll(/`([a-z][a-z0-9-]*):/g)].map((m) => m[1]!);
    return { schemes: [...new Set(schemes)], cells };
  });
}

describe('the transport registry', () => {
  test('each scheme is served by exactly one transport, and parses', () => {
    assert.equal(new Set(SCHEMES).size, SCHEMES.length, `a scheme is listed twice: ${SCHEMES.join(', ')}`);
    for (const t of TRANSPORTS) {
      assert.ok(t.schemes.length > 0);
      const d = defaultMaxMessageSize(t);
      assert.ok(Number.isInteger(d) && d >= 1 && d <= t.maxMessageSize.max, `${t.schemes[0]}: default maxMessageSize ${d} within 1..${t.maxMessageSize.max}`);
      assert.ok(typeof t.maxMessageSize.default === 'number' || t.maxMessageSize.describe, `${t.schemes[0]}: a default that depends on the system says so in words for the docs`);
    }
  });

  test('the channel suite runs over every transport (or says why not)', () => {
    const covered = new Set(SUITE.map(schemeOf));
    for (const scheme of SCHEMES) {
      assert.ok(covered.has(scheme) !== (scheme in NOT_IN_SUITE), covered.has(scheme) ? `${scheme}: is in the suite: drop it from NOT_IN_SUITE` : `${scheme}: is in the registry but not in test/channel/channel-pair.ts TRANSPORTS (add it, or give the reason in NOT_IN_SUITE)`);
    }
    for (const scheme of [...covered, ...Object.keys(NOT_IN_SUITE)]) assert.ok(SCHEMES.includes(scheme), `${scheme}: is not in the registry`);
  });

  test("docs/channels.md's transport table has a row per scheme, with the registry's default maxMessageSize", () => {
    const rows = docRows();
    const documented = rows.flatMap((r) => r.schemes);
    assert.deepEqual([...documented].sort(), [...SCHEMES].sort(), 'one row per scheme of the registry, no others');
    for (const { schemes, cells } of rows) {
      for (const scheme of schemes) {
        const t = transportOf(scheme);
        const expected = typeof t.maxMessageSize.default === 'number' ? describeSize(t.maxMessageSize.default) : t.maxMessageSize.describe;
        assert.equal(cells[1], expected, `${scheme}: the default maxMessageSize in the docs`);
      }
    }
  });

  test("docs/channels.md's table of what differs by transport has every scheme, and null peers where the kernel cannot tell", () => {
    const rows = docRows('## The contract, the same on every transport', 'reach');
    assert.deepEqual(rows.flatMap((r) => r.schemes).sort(), [...SCHEMES].sort(), 'each scheme of the registry once, no others');
    for (const { schemes, cells } of rows) {
      for (const scheme of schemes) {
        if (!transportOf(scheme).peerCredentials) assert.match(cells[3]!, /^`null`/, `${scheme}: ch.peer is null`);
      }
    }
  });

  test("fork()'s transports are in the registry", () => {
    for (const t of FORK_TRANSPORTS) assert.ok(SCHEMES.includes(t), `fork transport ${t} is not in the registry`);
  });

  test('src/channel/index.ts dispatches through the registry: no scheme comparisons, no double casts', () => {
    const source = readFileSync(join(root, 'src', 'channel', 'index.ts'), 'utf8');
    assert.doesNotMatch(source, /as unknown as|as Settings</);
    for (const scheme of SCHEMES) {
      const quoted = `'${scheme}'`.replace(/[-]/g, '\\-');
      assert.doesNotMatch(source, new RegExp(`[!=]==?\\s*${quoted}|${quoted}\\s*[!=]==?|case\\s+${quoted}`), `src/channel/index.ts compares with ${quoted}`);
    }
  });
});

describe('each transport gives its channels the registry\'s defaults', () => {
  for (const t of SUITE) {
    test(`${t}: transport name and default maxMessageSize`, { ...T, skip: transportSkip(t) }, async () => {
      const scheme = schemeOf(t);
      const p = await pair(t);
      try {
        assert.equal(p.ch.transport, scheme);
        assert.equal(p.ch.maxMessageSize, defaultMaxMessageSize(transportOf(scheme)));
      } finally {
        await p.done();
      }
    });
  }
});
