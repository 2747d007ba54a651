/**
 * Benchmark: what the device's trust store costs in the update flow (issue
 * 14), on the in-memory network (no socket noise): one up-to-date check with
 * a fixed TrustPolicy against one with a trust store (the refresh first:
 * chain, revocation list, over coaps the sequence), as time and as bytes on
 * the wire; the flash operations of a refresh that takes a rotation and a
 * revocation list; the served chain's size per rotation. Prints one JSON
 * object. Run: `npm run -s build && node dist/bench/trust-device.js [runs]`.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bufferSource } from '../src/blockwise/source.js';
import { serveBlock2 } from '../src/blockwise/serve.js';
import { Code } from '../src/codec/numbers.js';
import { provisionDevice } from '../src/device/device.js';
import { runUpdate } from '../src/device/updater.js';
import { createLayout } from '../src/flash/layout.js';
import { MemoryFlash } from '../src/flash/memory.js';
import { TrustStore } from '../src/flash/trust-store.js';
import { CoapEndpoint } from '../src/messaging/endpoint.js';
import { routeRequests } from '../src/server/router.js';
import { encodeCbor } from '../src/suit/cbor.js';
import { createEnvelope } from '../src/suit/create.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../src/suit/keys.js';
import { createRevocationList } from '../src/suit/revocation.js';
import { encodeTrustChain } from '../src/suit/trust-chain.js';
import { initialTrustState, type TrustSet } from '../src/suit/trust-set.js';
import { createTrustUpdate } from '../src/suit/trust-update.js';
import { FakeRuntime } from '../src/testing/fake-runtime.js';
import { MemNetwork } from '../src/testing/mem-transport.js';
import { systemRuntime } from '../src/transport/runtime.js';

const RUNS = Number(process.argv[2] ?? 30);
const SERVER = { address: '10.0.0.1', port: 5683 };
const key = (n: string): SuitPrivateKey => privateKeyFromSecret('ed25519', sha256(new TextEncoder().encode(`bench ${n}`)));
const VENDOR = new Uint8Array(16).fill(1);
const CLASS = new Uint8Array(16).fill(2);
const APP = [Uint8Array.of(0)];
const IMG = new Uint8Array(4096).fill(7);

/** Five anchors, a 2-of-3 trust role and one firmware role: a realistic board set. */
function setAt(version: number, firmwareKey: string, source = 'coap://10.0.0.1'): TrustSet {
  const names = ['t1', 't2', 't3', 'spare', firmwareKey];
  return {
    version,
    source,
    anchors: names.map((n) => ({ name: n, publicKey: key(n).publicKey })),
    roles: [
      { name: 'trust', scope: { kind: 'trust' }, signers: ['t1', 't2', 't3'], threshold: 2 },
      { name: 'app', scope: { kind: 'component', componentId: APP }, signers: [firmwareKey], threshold: 1 },
    ],
  };
}

/** The chain of `n` rotations from version 1 (each re-keys the firmware role: old and new key sign). */
function rotations(n: number, source?: string): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => createTrustUpdate(setAt(i + 2, `fw${i + 1}`, source), [key(`fw${i}`), key(`fw${i + 1}`)]));
}

function startServer(net: MemNetwork, sources: Map<string, Uint8Array>): CoapEndpoint {
  const ep = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: systemRuntime });
  ep.handle(routeRequests((path) => {
    const bytes = sources.get(path.join('/'));
    return bytes && { methods: new Set([Code.GET]), handle: (req) => serveBlock2(req.message, bufferSource(bytes)) };
  }));
  return ep;
}

async function device(withStore: boolean, source?: string) {
  const geometry = { size: 64 * 1024, eraseBlockSize: 4096, writeAlignment: 4 };
  const flash = new MemoryFlash(geometry);
  const layout = createLayout(geometry, { components: [{ id: APP, slotSize: 8192 }], ...(withStore ? { trustAreaSize: TrustStore.areaSize(geometry) } : {}) });
  await provisionDevice(flash, layout, IMG, 5, withStore ? initialTrustState(setAt(1, 'fw0', source)) : undefined);
  return { flash, layout };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function checks(kind: 'policy' | 'store' | 'store-coaps', chainLength: number) {
  const net = new MemNetwork();
  const sources = new Map<string, Uint8Array>([['manifest.suit', createEnvelope({ sequence: 5, vendorId: VENDOR, classId: CLASS, uri: '/fw/x', digest: sha256(IMG), size: IMG.length, componentId: APP }, [key(`fw${chainLength}`)])]]);
  const source = kind === 'store-coaps' ? 'coaps://10.0.0.1' : 'coap://10.0.0.1';
  const chain = rotations(chainLength, source);
  sources.set('trust/chain', encodeTrustChain(chain));
  sources.set('trust/revocation', createRevocationList({ sequence: 1, revoked: [key('fw0').publicKey] }, [key('t1'), key('t2')]));
  sources.set('trust/revocation-seq', encodeCbor(1));
  const server = startServer(net, sources);
  const dev = await device(kind !== 'policy', source);
  const runtime = new FakeRuntime();
  const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime });
  const times: number[] = [];
  let bytes = 0;
  let datagrams = 0;
  const before = dev.flash.ops;
  for (let i = 0; i < RUNS + 1; i++) {
    const from = net.log.length;
    const t = performance.now();
    const status = await runUpdate({
      flash: dev.flash,
      layout: dev.layout,
      request: (spec, o) => client.request(SERVER, spec, o),
      manifestUri: `${source}/manifest.suit`,
      runtime,
      ...(kind === 'policy' ? { trust: { anchors: [{ publicKey: key(`fw${chainLength}`).publicKey }] } } : {}),
    });
    if (status.result !== 'up-to-date') throw new Error(`bench: ${kind}: ${JSON.stringify(status)}`);
    // The first check takes the documents (a store write); the others are the steady state.
    if (i > 0) times.push(performance.now() - t);
    if (i === 1) {
      bytes = net.log.slice(from).reduce((n, d) => n + d.data.length, 0);
      datagrams = net.log.length - from;
    }
  }
  const firstRunOps = dev.flash.ops - before;
  await client.close();
  await server.close();
  return { checkMs: Number(median(times).toFixed(2)), bytesPerCheck: bytes, datagramsPerCheck: datagrams, flashOpsTotal: firstRunOps };
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { runs: RUNS };
  for (const n of [1, 8]) {
    out[`chain${n}`] = {
      chainBytes: encodeTrustChain(rotations(n)).length,
      policy: await checks('policy', n),
      store: await checks('store', n),
      storeCoaps: await checks('store-coaps', n),
    };
  }
  // One refresh write: the flash operations and bytes of taking a rotation and a list.
  const dev = await device(true);
  const store = await TrustStore.open(dev.flash, dev.layout.trust!, { maxStateBytes: 4096 });
  const ops = dev.flash.ops;
  await store.write(initialTrustState(setAt(2, 'fw1')));
  out.storeWrite = { flashOps: dev.flash.ops - ops, bytesWritten: store.stats.bytesWritten, blocksErased: store.stats.blocksErased };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
