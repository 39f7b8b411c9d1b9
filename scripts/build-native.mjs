// Builds the N-API addon with node-gyp against this machine's installed Node
// headers. node-gyp is told where they are so that it never tries to download
// a header tarball (there may be no network, and it would be the wrong build).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function findNodeDir() {
  const candidates = [
    process.env.npm_config_nodedir,
    resolve(dirname(process.execPath), '..'),
    '/usr',
    '/usr/local',
  ].filter(Boolean);
  for (const dir of candidates) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  return null;
}

const nodedir = findNodeDir();
if (!nodedir) {
  console.error(
    'ipckit: cannot find Node.js headers (include/node/node_api.h).\n' +
      'Install them (e.g. the Debian package libnode-dev or your Node distribution\'s headers)\n' +
      'and/or set npm_config_nodedir to the prefix that contains include/node.',
  );
  process.exit(1);
}

// npm exports the path of its bundled node-gyp to scripts; fall back to PATH.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const result = spawnSync(cmd, [...args, 'rebuild', `--nodedir=${nodedir}`], {
  stdio: 'inherit',
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (result.error) {
  console.error(`ipckit: could not run node-gyp: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
