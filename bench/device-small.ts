/**
 * Device-side measurements for issue 13, shared by bench/delta.ts and
 * bench/update.ts: one update of a simulated device (MemoryFlash) from
 * `coapfw serve` over loopback UDP, as a delta or as the full image, and the
 * flash it costs. Everything a device fetches is SHA-256-checked on the way
 * (block digests, the image), so the times include the verification.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { openClient } from '../src/client/open.js';
import { powerOn, provisionDevice } from '../src/device/device.js';
import { bootInPlace } from '../src/device/boot-inplace.js';
import type { UpdateEvent } from '../src/device/states.js';
import { runUpdate } from '../src/device/updater.js';
import { createLayout, createSingleBankLayout, type FlashLayout } from '../src/flash/layout.js';
import { MemoryFlash } from '../src/flash/memory.js';
import { startFileServer } from '../src/server/serve.js';
import { buildBlockDigests } from '../src/suit/block-digests.js';
import { createEnvelope } from '../src/suit/create.js';
import { privateKeyFromSecret } from '../src/suit/keys.js';

const VENDOR = new Uint8Array(16).fill(1);
const CLASS = new Uint8Array(16).fill(2);

/** What one device update cost. */
export interface DeviceRun {
  readonly updateMs: number;
  /** Bytes of image or delta received (block payloads), and of digest lists (fetched whole over an update). */
  readonly payloadBytes: number;
  readonly digestBytes: number;
  readonly blocksFetched: number;
  /** The delta applier's working memory, when a delta was applied. */
  readonly deltaWorkingMemory?: number;
  /** Flash: erase operations and bytes programmed in the whole update (A/B: with the swap at the next boot), most erases of one block. */
  readonly flash: {
    /** Erase operations (one may span several erase blocks). */
    readonly eraseOps: number;
    readonly bytesWritten: number;
    readonly maxErasesOfOneBlock: number;
    /** Per area: erases in all / the most of one erase block. */
    readonly byArea: Record<string, { readonly erases: number; readonly maxOfOneBlock: number }>;
  };
}

interface Served {
  readonly dir: string;
  readonly key: ReturnType<typeof privateKeyFromSecret>;
  readonly uri: (file: string) => string;
  readonly close: () => Promise<void>;
}

/**
 * A temporary directory served by `startFileServer` on 127.0.0.1: `files(key)`
 * names what to write (blobs under any name: the server serves each by
 * content too), signed with a fresh key.
 */
export async function serveFiles(files: (key: Served['key']) => Record<string, Uint8Array>): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-bench-small-'));
  const key = privateKeyFromSecret('ed25519', new Uint8Array(randomBytes(32)));
  for (const [name, bytes] of Object.entries(files(key))) await writeFile(join(dir, name), bytes);
  const server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
  const port = server.address().port;
  return {
    dir,
    key,
    uri: (file) => `coap://127.0.0.1:${port}/files/${file}`,
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const addr = (b: Uint8Array): string => `/fw/sha256/${bytesToHex(sha256(b))}`;

/** Digest list of `bytes` at 1024-byte blocks, with its content address. */
export function digestsFor(bytes: Uint8Array): { info: ReturnType<typeof buildBlockDigests>['info']; resource: Uint8Array } {
  const d = buildBlockDigests(bytes, { blockSize: 1024 });
  return { info: { ...d.info, uri: addr(d.resource) }, resource: d.resource };
}

/** The envelope of `b` (block digests; a delta from `a` when `delta` is given). */
export function envelopeOf(key: Served['key'], a: Uint8Array, b: Uint8Array, delta: { bytes: Uint8Array; frameSize: number } | undefined): Uint8Array {
  return createEnvelope(
    {
      sequence: 2, vendorId: VENDOR, classId: CLASS, uri: addr(b), digest: sha256(b), size: b.length, blockDigests: digestsFor(b).info,
      ...(delta ? { delta: { uri: addr(delta.bytes), digest: sha256(delta.bytes), size: delta.bytes.length, sourceDigest: sha256(a), sourceSize: a.length, frameSize: delta.frameSize, blockDigests: digestsFor(delta.bytes).info } } : {}),
    },
    [key],
  );
}

/** The blobs and both manifests (`full.suit`, `delta.suit` when there is a delta) of an update from `a` to `b`. */
export function releaseFiles(a: Uint8Array, b: Uint8Array, delta?: { bytes: Uint8Array; frameSize: number }): (key: Served['key']) => Record<string, Uint8Array> {
  return (key) => ({
    'image.bin': b,
    'image.digests': digestsFor(b).resource,
    'full.suit': envelopeOf(key, a, b, undefined),
    ...(delta ? { 'delta.bin': delta.bytes, 'delta.digests': digestsFor(delta.bytes).resource, 'delta.suit': envelopeOf(key, a, b, delta) } : {}),
  });
}

/**
 * One update of a device running `a` to the manifest at `manifestUri`;
 * `singleBank` for the in-place layout. `digestBytes`: the size of the digest
 * list(s) the device fetches whole beside the payload.
 */
export async function deviceRun(served: Served, manifestUri: string, a: Uint8Array, slotSize: number, eraseBlockSize: number, digestBytes: number, singleBank = false): Promise<DeviceRun> {
  const flash = new MemoryFlash({ size: 2 * slotSize + 12 * eraseBlockSize, eraseBlockSize });
  const layout: FlashLayout = singleBank ? createSingleBankLayout(flash, { slotSize }) : createLayout(flash, { slotSize });
  await provisionDevice(flash, layout, a, 1);
  if (!singleBank) await powerOn(flash, layout);
  const before = { erases: flash.stats.erases, bytes: flash.stats.bytesWritten, counts: Uint32Array.from(flash.eraseCounts) };
  const client = await openClient(manifestUri);
  let payloadBytes = 0;
  let deltaWorkingMemory: number | undefined;
  const onEvent = (e: UpdateEvent): void => {
    if (e.type === 'block') payloadBytes += e.bytes;
    if (e.type === 'delta') deltaWorkingMemory = e.workingMemory;
  };
  const t0 = performance.now();
  const st = await runUpdate({ flash, layout, request: client.request.bind(client), manifestUri, runtime: client.runtime, trust: { anchors: [{ publicKey: served.key.publicKey }] }, vendorId: VENDOR, classId: CLASS, onEvent }).finally(() => client.close());
  const updateMs = performance.now() - t0;
  if (st.result !== 'installed') throw new Error(`bench: update ${JSON.stringify(st)}`);
  const running = singleBank ? await bootInPlace(flash, layout) : (await powerOn(flash, layout)).boot;
  if (!('image' in running)) throw new Error('bench: the new image does not boot');
  const counts = flash.eraseCounts.map((n, i) => n - before.counts[i]!);
  const areas: Record<string, { offset: number; size: number }> = {
    primary: layout.primary,
    ...(singleBank ? { staging: layout.recovery!.staging } : { secondary: layout.secondary, scratch: layout.scratch }),
    bootLog: layout.bootLog,
    journal: layout.journal,
  };
  const byArea = Object.fromEntries(
    Object.entries(areas).map(([name, a]) => {
      const c = counts.subarray(a.offset / eraseBlockSize, (a.offset + a.size) / eraseBlockSize);
      return [name, { erases: c.reduce((x, y) => x + y, 0), maxOfOneBlock: Math.max(0, ...c) }];
    }),
  );
  return {
    updateMs: Math.round(updateMs * 10) / 10,
    payloadBytes,
    digestBytes,
    blocksFetched: st.blocksFetched,
    ...(deltaWorkingMemory !== undefined ? { deltaWorkingMemory } : {}),
    flash: { eraseOps: flash.stats.erases - before.erases, bytesWritten: flash.stats.bytesWritten - before.bytes, maxErasesOfOneBlock: Math.max(...counts), byArea },
  };
}
