/**
 * npm's install step for coapfw: build the optional native UDP socket
 * (native/udp.c, `build/Release/coapfw_udp.node`) with the node-gyp that npm
 * ships, against the running Node's headers. Where it cannot be built (not
 * Linux, no C compiler, no Node headers), say so in one line and succeed:
 * the transport then runs on node:dgram, which does everything the native
 * socket does, at a higher CPU cost per datagram.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const note = (why) => console.warn(`coapfw: the native UDP socket was not built (${why}); UDP runs on node:dgram`);

if (process.platform !== 'linux') {
  note(`it is for Linux, this is ${process.platform}`);
} else if (process.env.COAPFW_NATIVE_UDP === '0') {
  note('COAPFW_NATIVE_UDP=0');
} else {
  const gyp = nodeGyp();
  if (gyp === undefined) note('no node-gyp: npm normally brings one');
  else {
    // The headers of the Node that runs us, where its installation has them (Debian's, nodesource's): no download.
    const prefix = join(dirname(process.execPath), '..');
    const local = !process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
    const r = spawnSync(process.execPath, [gyp, 'rebuild', ...local], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 180_000 });
    if (r.status === 0 && existsSync(join(root, 'build/Release/coapfw_udp.node'))) {
      if (process.env.npm_config_loglevel === 'verbose') process.stderr.write(r.stdout);
    } else {
      const lines = `${r.stderr ?? ''}\n${r.error?.message ?? ''}`.split('\n').filter((l) => /error|not found|ERR!/i.test(l) && !/gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l));
      note(lines.slice(0, 2).join('; ').trim() || `node-gyp exited with ${r.status ?? r.signal}`);
    }
  }
}

/** npm tells its scripts where its own node-gyp is; else the one of the npm beside this Node, or one installed here. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '../node_modules/node-gyp/bin/node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed beside us
  }
  return candidates.find((c) => c !== undefined && existsSync(c));
}
