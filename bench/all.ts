/**
 * `npm run bench`: every benchmark, one after the other (they would disturb
 * each other's timings if run at once), combined into one JSON document.
 * Each part can also be run alone: `node dist/bench/run.js` (block-wise
 * throughput against libcoap and TFTP), `node dist/bench/coaps.js` (coaps
 * against plain coap), `node dist/bench/update.js` (one device update),
 * `node dist/bench/delta.js` (differential updates of real binaries),
 * `node dist/bench/fastlinks.js [--quick]` (delay, loss and a shared bottleneck through bench/relay.ts),
 * `node dist/bench/sim.js [--devices N --size B --rtt MS --loss P --rate BPS]` (the Q-Block2 algorithms on a virtual clock),
 * `node dist/bench/trust.js [runs] [--quick]` (trust verification and the trust store),
 * `node dist/bench/trust-device.js [runs]` (the trust store in the device's check: time, bytes, flash),
 * `node dist/bench/well-known.js` (filtered /.well-known/core queries over 10,000 files),
 * `node dist/bench/many-devices.js [--devices 1000 --size 262144 --procs 10]` (a thousand devices fetching from one `coapfw serve`: server peak RSS and CPU per block),
 * `node dist/bench/store.js` (the update service's store: reports, registrations, blob reads; PostgreSQL too when COAPFW_TEST_PG names a server).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const parts: Record<string, string> = {
  blockwise: 'run.js',
  getCli: 'get-cli.js',
  coaps: 'coaps.js',
  update: 'update.js',
  delta: 'delta.js',
  fastlinks: 'fastlinks.js',
  sim: 'sim.js',
  trust: 'trust.js',
  trustDevice: 'trust-device.js',
  wellKnown: 'well-known.js',
  store: 'store.js',
  manyDevices: 'many-devices.js',
};
// `npm run bench -- --quick` shrinks the parts that have a quick form (fastlinks' scenarios, trust's runs);
// the others take their own arguments (a run count, pair names), which --quick is not.
const QUICK = new Set(['fastlinks', 'trust']);
const args = process.argv.slice(2);
const out: Record<string, unknown> = {};
let failed = false;
for (const [name, file] of Object.entries(parts)) {
  process.stderr.write(`bench: ${name} ...\n`);
  const r = spawnSync(process.execPath, [join(here, file), ...(QUICK.has(name) ? args : args.filter((a) => a !== '--quick'))], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000 });
  try {
    out[name] = JSON.parse(r.stdout);
  } catch {
    out[name] = { error: `exit ${r.status ?? r.signal}`, stdout: r.stdout.slice(0, 2000) };
    failed = true;
  }
}
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
process.exitCode = failed ? 1 : 0;
