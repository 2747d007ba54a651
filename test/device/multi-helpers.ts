/**
 * Fixtures for multi-image updates: a board with two updatable components
 * (ids [h'00'] and [h'01'], as in the WG's example 5), envelopes compiled
 * from the WG's JSON input format with real images, and a check that every
 * boot runs a whole set: all old images or all new ones.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { expect } from 'vitest';
import { powerOn, provisionDevice, type PowerOnResult } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import type { UpdateStatus } from '../../src/device/report.js';
import { hashArea } from '../../src/flash/image.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { compileManifest, type JsonComponent } from '../../src/suit/compile.js';
import { createSignedEnvelope } from '../../src/suit/encode.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, KEY, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

export const EBS = 4096;
/** Factory set (component 0, component 1) and the update set. */
export const A0 = image(10_000, 11);
export const A1 = image(5_000, 12);
export const B0 = image(24 * 1024 - 100, 13);
export const B1 = image(11 * 1024 + 7, 14);
export const ID0 = [Uint8Array.of(0)];
export const ID1 = [Uint8Array.of(1)];

const uuid = (b: Uint8Array): string => {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

/** A component entry of the WG's JSON input format (example5.json) for `img` at `uri`. */
export function jsonComponent(id: string, img: Uint8Array, uri: string, extra: Partial<JsonComponent> = {}): JsonComponent {
  return {
    'install-id': [id],
    'install-digest': { 'algorithm-id': 'sha256', 'digest-bytes': hex(sha256(img)) },
    'install-size': img.length,
    uri,
    'vendor-id': uuid(VENDOR),
    'class-id': uuid(CLASS),
    ...extra,
  };
}

/** A signed envelope from WG-style JSON components, optionally with integrated payloads. */
export function envelopeOf(sequence: number, components: JsonComponent[], integrated?: Map<string, Uint8Array>): Uint8Array {
  const { manifest } = compileManifest({ 'manifest-version': 1, 'manifest-sequence-number': sequence, components });
  return createSignedEnvelope(manifest, [KEY], integrated ? { integratedPayloads: integrated } : {});
}

export const imagePath = (img: Uint8Array): string => `fw/sha256/${hex(sha256(img))}`;

/** The two-image update of the WG's example 5 shape: component 0 then 1, each fetched from its own URI. */
export function example5(sequence = 2, b0 = B0, b1 = B1): Uint8Array {
  return envelopeOf(sequence, [jsonComponent('00', b0, `/${imagePath(b0)}`, { bootable: true }), jsonComponent('01', b1, `/${imagePath(b1)}`)]);
}

let provisioned: Uint8Array | undefined;

/** A two-component board running A0/A1 (sequence 1); provisioned once, then copied (sweeps make hundreds). */
export async function board(seed = 1, tornWrite: 'prefix' | 'scatter' = 'prefix'): Promise<{ flash: MemoryFlash; layout: FlashLayout }> {
  const geometry = { size: 120 * 1024, eraseBlockSize: EBS, writeAlignment: 4 };
  const layout = createLayout(geometry, { components: [{ id: ID0, slotSize: 28 * 1024 }, { id: ID1, slotSize: 16 * 1024 }] });
  if (provisioned === undefined) {
    const fresh = new MemoryFlash(geometry);
    await provisionDevice(fresh, layout, [A0, A1], 1);
    provisioned = await fresh.read(0, geometry.size);
  }
  return { flash: new MemoryFlash({ ...geometry, contents: provisioned, random: mulberry32(seed), tornWrite }), layout };
}

const SETS = new Map([
  [`${hex(sha256(A0))}/${hex(sha256(A1))}`, 'A'],
  [`${hex(sha256(B0))}/${hex(sha256(B1))}`, 'B'],
]);

/** Which whole set a boot runs ('A' or 'B'); fails on a mix or on slots that do not hold what the boot says. */
export async function runningSet(flash: MemoryFlash, layout: FlashLayout, p: PowerOnResult): Promise<string> {
  const imgs = p.boot.images;
  expect(imgs).toHaveLength(2);
  for (const [i, img] of imgs.entries()) expect(hex(await hashArea(flash, layout.components[i]!.primary, img!.size))).toBe(hex(img!.digest));
  const name = SETS.get(imgs.map((i) => hex(i!.digest)).join('/'));
  expect(name, `a mixed set is running: ${imgs.map((i) => hex(i!.digest).slice(0, 8)).join(' ')}`).toBeDefined();
  return name!;
}

/** Serve the update set and `env` at /manifest.suit. */
export function serveSet(server: MemUpdateServer, env: Uint8Array, images: Uint8Array[] = [B0, B1]): void {
  for (const img of images) server.put(imagePath(img), img);
  server.put('manifest.suit', env);
}

/** One update run on `dev` against `server`. */
export async function updateOnce(dev: { flash: MemoryFlash; layout: FlashLayout }, server: MemUpdateServer, runtime = new FakeRuntime(), extra: { maxInstallAttempts?: number; maxEnvelopeSize?: number } = {}): Promise<UpdateStatus> {
  const c = server.client(runtime);
  try {
    return await runUpdate({ ...dev, request: c.request, manifestUri: MANIFEST_URI, runtime, trust: TRUST, vendorId: VENDOR, classId: CLASS, ...extra });
  } finally {
    await c.close();
  }
}

export { powerOn };
