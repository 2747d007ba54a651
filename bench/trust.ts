/**
 * Benchmark: the cost of trust that can change, on this machine: verifying
 * a firmware envelope under a trust state (with the RFC 9679 kid hint and,
 * worst case, without one against 12 anchors), applying a trust update, a
 * revocation list and a 10-link chain, and one trust store write (flash
 * operations, bytes, time) on MemoryFlash with 4 KiB erase blocks; plus the
 * encoded size of a typical and of the largest state. Medians of `runs`.
 * Prints one JSON object. Run: `npm run -s build && node dist/bench/trust.js [runs] [--quick]`.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { MemoryFlash } from '../src/flash/memory.js';
import { TrustStore } from '../src/flash/trust-store.js';
import { createEnvelope } from '../src/suit/create.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../src/suit/keys.js';
import { applyRevocationList, createRevocationList } from '../src/suit/revocation.js';
import { walkTrustChain } from '../src/suit/trust-chain.js';
import { encodeTrustState } from '../src/suit/trust-codec.js';
import { initialTrustState, keyThumbprint, type TrustSet, type TrustState } from '../src/suit/trust-set.js';
import { applyTrustUpdate, createTrustUpdate } from '../src/suit/trust-update.js';
import { verifyFirmware } from '../src/suit/trust-verify.js';

// `[runs]` (default 15; 5 with --quick, as `npm run bench -- --quick` passes to every part).
const argv = process.argv.slice(2);
const runs = Number(argv.find((a) => /^\d+$/.test(a)) ?? (argv.includes('--quick') ? 5 : 15));
const key = (n: string, type: 'ed25519' | 'p256' = 'ed25519'): SuitPrivateKey => privateKeyFromSecret(type, sha256(new TextEncoder().encode(`bench ${n}`)));

async function median(f: () => unknown | Promise<unknown>): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await f();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return Math.round(t[Math.floor(t.length / 2)]! * 1000) / 1000;
}

const vendor = Array.from({ length: 10 }, (_, i) => key(`v${i}`, i % 2 ? 'p256' : 'ed25519'));
const trustKeys = [key('t1'), key('t2', 'p256')];
const names = [...vendor.map((_, i) => `v${i}`), 't1', 't2'];
const set: TrustSet = {
  version: 1,
  anchors: [...vendor, ...trustKeys].map((k, i) => ({ name: names[i]!, publicKey: k.publicKey })),
  roles: [
    { name: 'trust', scope: { kind: 'trust' }, signers: ['t1', 't2'], threshold: 2 },
    { name: 'fw', scope: { kind: 'any-component' }, signers: names.slice(0, 10), threshold: 1 },
  ],
  source: 'coaps://fw.example.com/',
};
const state = initialTrustState(set, key('owner').publicKey);
const fw = (k: SuitPrivateKey, kid?: Uint8Array): Uint8Array =>
  createEnvelope({ sequence: 2, vendorId: new Uint8Array(16).fill(1), classId: new Uint8Array(16).fill(2), uri: '/fw/x', digest: new Uint8Array(32), size: 1 }, [k], kid ? { signOptions: [{ kid }] } : undefined);
const last = vendor[9]!; // P-256, the last anchor tried without a hint

const chain: Uint8Array[] = [];
let s: TrustState = state;
for (let v = 2; v <= 11; v++) {
  const doc = createTrustUpdate({ ...set, version: v, source: `coaps://fw${v}.example.com/` }, trustKeys);
  chain.push(doc);
  s = applyTrustUpdate(s, doc);
}
const list = createRevocationList({ sequence: 1, revoked: [vendor[0]!.publicKey] }, trustKeys);

const flash = new MemoryFlash({ size: 64 * 1024, eraseBlockSize: 4096, writeAlignment: 4 });
const area = { offset: 0, size: TrustStore.areaSize(flash) };
const store = await TrustStore.provision(flash, area, state);
const before = { ...flash.stats };
await store.write(s);
const write = { writes: flash.stats.writes - before.writes, erases: flash.stats.erases - before.erases, bytesWritten: flash.stats.bytesWritten - before.bytesWritten };

const envelopes = {
  edHint: fw(vendor[0]!, keyThumbprint(vendor[0]!.publicKey)),
  p256NoKid: fw(last),
  p256Hint: fw(last, keyThumbprint(last.publicKey)),
};
const out = {
  runs,
  anchors: set.anchors.length,
  verifyFirmwareMs: {
    ed25519WithKidHint: await median(() => verifyFirmware(envelopes.edHint, { trust: state })),
    p256NoKidLastOf12: await median(() => verifyFirmware(envelopes.p256NoKid, { trust: state })),
    p256WithKidHint: await median(() => verifyFirmware(envelopes.p256Hint, { trust: state })),
  },
  applyTrustUpdateMs: await median(() => applyTrustUpdate(state, chain[0]!)),
  applyRevocationListMs: await median(() => applyRevocationList(state, list)),
  walkChainOf10Ms: await median(() => walkTrustChain(state, chain)),
  storeWrite: { ...write, ms: await median(() => store.write(s)) },
  stateBytes: { typical: encodeTrustState(state).length, areaBytes: area.size },
};
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
