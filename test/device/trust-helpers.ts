/**
 * A board with a trust store for the device-level trust tests: the phase-1
 * board of test/suit/trust-helpers.ts (an application [00] signed by vendor
 * B, a radio [01] signed by vendor A, an integrator's 2-of-3 trust role, an
 * owner key), provisioned on a MemoryFlash with real images, updating from
 * the in-memory server of update-helpers.ts, which serves the trust
 * resources at the paths `coapfw serve` uses.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { expect } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateStatus } from '../../src/device/report.js';
import type { UpdateEvent, UpdateOptions } from '../../src/device/states.js';
import { readDeviceTrust } from '../../src/device/trust-device.js';
import { runUpdate } from '../../src/device/updater.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { TrustStore } from '../../src/flash/trust-store.js';
import { encodeCbor } from '../../src/suit/cbor.js';
import { compileManifest } from '../../src/suit/compile.js';
import { createEnvelope } from '../../src/suit/create.js';
import { createSignedEnvelope } from '../../src/suit/encode.js';
import type { SuitPrivateKey } from '../../src/suit/keys.js';
import { encodeTrustChain } from '../../src/suit/trust-chain.js';
import { encodeTrustState } from '../../src/suit/trust-codec.js';
import type { DeviceComponent } from '../../src/suit/trust-scope.js';
import { initialTrustState, type TrustState } from '../../src/suit/trust-set.js';
import { formatUuid } from '../../src/suit/uuid.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { APP, CLASS_APP, CLASS_RADIO, K, RADIO, VENDOR_A, VENDOR_B, boardSet } from '../suit/trust-helpers.js';
import { hex, image, MemUpdateServer } from './update-helpers.js';

export { APP, CLASS_APP, CLASS_RADIO, K, RADIO, VENDOR_A, VENDOR_B };

export const EBS = 4096;
const GEOMETRY = { size: 128 * 1024, eraseBlockSize: EBS, writeAlignment: 4 };
/** Factory images of the application and the radio, and new ones. */
export const APP0 = image(9_000, 31);
export const RADIO0 = image(3_000, 32);
export const APP1 = image(10_000, 33);
export const RADIO1 = image(4_000, 34);

export const PLAIN_URI = 'coap://10.0.0.1/manifest.suit';
/** The in-memory server is plain CoAP; this URI makes the device behave as over coaps (the sequence check). */
export const SECURE_URI = 'coaps://10.0.0.1/manifest.suit';

/** The device's own component table: which vendor and class each component is. */
export const COMPONENTS: readonly DeviceComponent[] = [
  { componentId: APP, vendorId: VENDOR_B, classId: CLASS_APP },
  { componentId: RADIO, vendorId: VENDOR_A, classId: CLASS_RADIO },
];

/** The board's provisioned trust state, polling `source` (the in-memory server by default). */
export function deviceState(source = 'coap://10.0.0.1'): TrustState {
  return initialTrustState({ ...boardSet(), source }, K.owner.publicKey);
}

/** The board's layout: application [00] and radio [01], each with two slots, and a trust area. */
export function boardLayout(): FlashLayout {
  return createLayout(GEOMETRY, {
    components: [{ id: APP, slotSize: 28 * 1024 }, { id: RADIO, slotSize: 16 * 1024 }],
    trustAreaSize: TrustStore.areaSize(GEOMETRY),
  });
}

/** A provisioned board (APP0, RADIO0 at sequence `seq`) holding `state` (null: trust never provisioned). */
export async function board(state: TrustState | null = deviceState(), seq = 1, seed = 1): Promise<{ flash: MemoryFlash; layout: FlashLayout }> {
  const flash = new MemoryFlash({ ...GEOMETRY, random: mulberry32(seed) });
  const layout = boardLayout();
  await provisionDevice(flash, layout, [APP0, RADIO0], seq, state ?? undefined);
  return { flash, layout };
}

const part = (which: 'app' | 'radio') =>
  which === 'app' ? { componentId: APP, vendorId: VENDOR_B, classId: CLASS_APP } : { componentId: RADIO, vendorId: VENDOR_A, classId: CLASS_RADIO };

/** A release of one component: `img` at its content address, signed by `keys`. */
export function release(which: 'app' | 'radio', img: Uint8Array, sequence: number, keys: SuitPrivateKey[], vendorId?: Uint8Array): Uint8Array {
  const p = part(which);
  return createEnvelope({ sequence, vendorId: vendorId ?? p.vendorId, classId: p.classId, uri: `/fw/sha256/${hex(sha256(img))}`, digest: sha256(img), size: img.length, componentId: p.componentId }, keys);
}

/** A release of both components in one manifest (one set, installed as one), signed by `keys`. */
export function boardRelease(sequence: number, app: Uint8Array, radio: Uint8Array, keys: SuitPrivateKey[]): Uint8Array {
  const comp = (id: string, img: Uint8Array, vendor: Uint8Array, cls: Uint8Array) => ({
    'install-id': [id],
    'install-digest': { 'algorithm-id': 'sha256' as const, 'digest-bytes': hex(sha256(img)) },
    'install-size': img.length,
    uri: `/fw/sha256/${hex(sha256(img))}`,
    'vendor-id': formatUuid(vendor),
    'class-id': formatUuid(cls),
  });
  const { manifest } = compileManifest({ 'manifest-version': 1, 'manifest-sequence-number': sequence, components: [comp('00', app, VENDOR_B, CLASS_APP), comp('01', radio, VENDOR_A, CLASS_RADIO)] });
  return createSignedEnvelope(manifest, keys);
}

/** What the server offers: images, the manifest, and the trust resources (left out: 4.04). */
export interface Offer {
  readonly images?: readonly Uint8Array[];
  readonly manifest: Uint8Array;
  readonly chain?: readonly Uint8Array[];
  readonly revocation?: Uint8Array;
  /** The coaps-only newest revocation sequence. */
  readonly latestRevocation?: number;
}

/** Serve `offer` on `server` (replacing what it served). */
export function serve(server: MemUpdateServer, offer: Offer): void {
  for (const p of ['trust/chain', 'trust/revocation', 'trust/revocation-seq']) server.sources.delete(p);
  for (const img of offer.images ?? []) server.put(`fw/sha256/${hex(sha256(img))}`, img);
  server.put('manifest.suit', offer.manifest);
  if (offer.chain) server.put('trust/chain', encodeTrustChain(offer.chain));
  if (offer.revocation) server.put('trust/revocation', offer.revocation);
  if (offer.latestRevocation !== undefined) server.put('trust/revocation-seq', encodeCbor(offer.latestRevocation));
}

/** One update run of `dev` against `server` (fake clock), with its events. */
export async function update(
  server: MemUpdateServer,
  dev: { flash: MemoryFlash; layout: FlashLayout },
  extra: Partial<UpdateOptions> = {},
): Promise<{ status: UpdateStatus; events: UpdateEvent[] }> {
  const runtime = new FakeRuntime();
  const c = server.client(runtime);
  const events: UpdateEvent[] = [];
  try {
    const status = await runUpdate({ flash: dev.flash, layout: dev.layout, request: c.request, manifestUri: PLAIN_URI, runtime, components: COMPONENTS, onEvent: (e) => events.push(e), ...extra });
    return { status, events };
  } finally {
    await c.close();
  }
}

/** The trust event of a run. */
export function trustEvent(events: readonly UpdateEvent[]): Extract<UpdateEvent, { type: 'trust' }> | undefined {
  return events.find((e): e is Extract<UpdateEvent, { type: 'trust' }> => e.type === 'trust');
}

/** The encoded stored state (hex), for comparing states. */
export async function storedHex(dev: { flash: MemoryFlash; layout: FlashLayout }): Promise<string> {
  const s = await readDeviceTrust(dev.flash, dev.layout);
  expect(s, 'the trust store reads as not provisioned').toBeDefined();
  return hex(encodeTrustState(s!));
}

export const stateHex = (s: TrustState): string => hex(encodeTrustState(s));

/** Power on and say which images run: component 0 and 1 digests. */
export async function running(dev: { flash: MemoryFlash; layout: FlashLayout }): Promise<[string, string]> {
  const p = await powerOn(dev.flash, dev.layout);
  return [hex(p.boot.images[0]!.digest), hex(p.boot.images[1]!.digest)];
}

export const FACTORY: [string, string] = [hex(sha256(APP0)), hex(sha256(RADIO0))];
