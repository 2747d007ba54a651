/**
 * Issue 14, "How it is checked": a fleet test. A vendor key (A) is rotated
 * out (to B) and revoked mid-rollout, over the real protocol: the update
 * service (SQLite, loopback) serves the trust documents from its store
 * beside the releases, and device agents on MemoryFlash with trust-store
 * layouts follow it in server mode.
 *
 * - release 1 (signed by A) goes out; the early group installs it, the late
 *   group is powered off with its release-1 command still open;
 * - the vendor publishes a rotation A→B (trust version 2) and a revocation
 *   list revoking A, then release 2 signed by B; the late group powers on,
 *   takes the rotation before it downloads anything, and installs release 2;
 *   the early group moves to release 2 too;
 * - release 3, signed by the revoked key A (the server still accepts A, as a
 *   stolen key at the publisher would be), is refused by every device,
 *   including a straggler that was off the whole time and still held trust
 *   version 1, in which A was valid: its refresh takes the rotation and the
 *   list first, then refuses release 3.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { DeviceAgent } from '../../src/device/agent.js';
import { agentLink, type AgentEvent } from '../../src/device/agent-options.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { simulatedLayout } from '../../src/device/file-device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { readDeviceTrust } from '../../src/device/trust-device.js';
import type { FlashLayout } from '../../src/flash/layout.js';
import { storeTrustSource } from '../../src/server/trust-source.js';
import { startUpdateServer, type UpdateServer } from '../../src/service/update-server.js';
import type { Store } from '../../src/service/store.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../../src/suit/keys.js';
import { createRevocationList } from '../../src/suit/revocation.js';
import { createTrustUpdate } from '../../src/suit/trust-update.js';
import { initialTrustState, keyThumbprint, type TrustSet, type TrustState } from '../../src/suit/trust-set.js';
import { MemoryFlash } from '../../src/testing/index.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { bytes, CLASS, VENDOR } from '../service/fixtures.js';
import { SqliteHarness } from '../service/harness.js';
import { eventually, publishOver, signedRelease } from '../service/service-harness.js';

const keyOf = (n: number): SuitPrivateKey => privateKeyFromSecret('ed25519', new Uint8Array(32).fill(n));
/** The vendor's old key (rotated out and revoked), its new key, the integrator's key (trust role), the owner's. */
const A = keyOf(0x41);
const B = keyOf(0x42);
const T = keyOf(0x54);
const OWNER = keyOf(0x4f);
const PUBLISHER = { identity: 'ci-release', key: new Uint8Array(16).fill(9) };

const EARLY = ['early-1', 'early-2', 'early-3', 'early-4', 'early-5'];
const LATE = ['late-1', 'late-2', 'late-3', 'late-4'];
const STRAGGLER = 'straggler-1';
const ALL = [...EARLY, ...LATE, STRAGGLER];

/** Trust version 1: the vendor's key A signs the firmware of its vendor id, the integrator's T the trust set. */
function trustSet(version: number, vendor: { name: string; key: SuitPrivateKey }, source: string): TrustSet {
  return {
    version,
    anchors: [{ name: vendor.name, publicKey: vendor.key.publicKey }, { name: 'integrator', publicKey: T.publicKey }],
    roles: [
      { name: 'trust', scope: { kind: 'trust' }, signers: ['integrator'], threshold: 1 },
      { name: 'firmware', scope: { kind: 'component', vendorId: Buffer.from(VENDOR, 'hex') }, signers: [vendor.name], threshold: 1 },
    ],
    source,
  };
}

const IMAGES = [1, 2, 3].map((seq) => bytes(5000, 100 + seq));
const releaseOf = (seq: number, key: SuitPrivateKey) => signedRelease(seq, key, IMAGES[seq - 1]);
const digestOf = (seq: number): string => bytesToHex(sha256(IMAGES[seq - 1]!));
const factoryImage = (id: string): Uint8Array => new TextEncoder().encode(`factory ${id}`.padEnd(64, '.'));

/** A simulated device: its flash (kept across agent restarts) and everything its agents did. */
interface Device {
  readonly id: string;
  readonly flash: MemoryFlash;
  readonly layout: FlashLayout;
  readonly events: AgentEvent[];
  agent?: DeviceAgent;
  client?: CoapClient;
}

let h: SqliteHarness;
let dir: string | undefined;
let store: Store;
let server: UpdateServer;
let coapUrl: string;
let publisher: CoapClient;
const devices = new Map<string, Device>();

async function powerUp(d: Device): Promise<void> {
  d.client = await openClient(`${coapUrl}/`, { params: { ackTimeoutMs: 500 } });
  // No `trust` option: the layout has a trust area, so the device's trust store decides.
  d.agent = new DeviceAgent({
    flash: d.flash,
    layout: d.layout,
    server: coapUrl,
    link: agentLink(d.client),
    vendorId: Buffer.from(VENDOR, 'hex'),
    classId: Buffer.from(CLASS, 'hex'),
    mode: 'server',
    deviceId: d.id,
    backoff: { baseMs: 100, maxMs: 1000 },
    onEvent: (e) => d.events.push(e),
  });
  await d.agent.start();
}

async function powerDown(d: Device): Promise<void> {
  await d.agent?.stop();
  await d.client?.close();
  d.agent = undefined;
  d.client = undefined;
}

const group = (ids: readonly string[]): Device[] => ids.map((id) => devices.get(id)!);

/** Wait until every device of `ids` is in `state` at installed sequence `seq` in the store. */
async function fleetAt(ids: readonly string[], state: string, seq: number, what: string): Promise<void> {
  await eventually(async () => {
    const all = await Promise.all(ids.map((id) => store.getDevice(id)));
    return all.every((d) => d?.state === state && d.installedSeq === seq) ? true : undefined;
  }, 30_000, what);
}

async function publish(seq: number, key: SuitPrivateKey): Promise<void> {
  const { blob, release } = await publishOver(publisher, releaseOf(seq, key), { urgency: 'critical' });
  expect(blob.code >> 5, `release ${seq}: blob upload`).toBe(2);
  expect(release.code, `release ${seq}: ${release.text}`).toBe(0x41);
}

/** The update runs of a device, each as the list of its updater events. */
function runs(d: Device): { seq: number; events: UpdateEvent[] }[] {
  const out: { seq: number; events: UpdateEvent[] }[] = [];
  for (const e of d.events) {
    if (e.type === 'update-start') out.push({ seq: e.target.seq, events: [] });
    else if (e.type === 'update') out.at(-1)?.events.push(e.event);
  }
  return out;
}

const trustOf = (events: readonly UpdateEvent[]) => events.find((e): e is Extract<UpdateEvent, { type: 'trust' }> => e.type === 'trust');
const firstIndex = (events: readonly UpdateEvent[], type: UpdateEvent['type']): number => events.findIndex((e) => e.type === type);

/** What the device's flash says: the stored trust state, the installed sequence and the running image. */
async function onFlash(d: Device): Promise<{ trust: TrustState; installed: number; running: string }> {
  const trust = (await readDeviceTrust(d.flash, d.layout))!;
  const p = await powerOn(d.flash, d.layout);
  return { trust, installed: p.installedSequence, running: bytesToHex(p.boot.image.digest) };
}

const A_THUMB = bytesToHex(keyThumbprint(A.publicKey));

beforeAll(async () => {
  h = new SqliteHarness();
  store = await h.open(await h.fresh());
  server = await startUpdateServer({
    dir: (dir = await mkdtemp(join(tmpdir(), 'coapfw-trustfleet-'))),
    store,
    host: '127.0.0.1',
    port: 0,
    refreshMs: 0,
    secure: { psk: PskStore.fromEntries([[PUBLISHER.identity, PUBLISHER.key, ['publisher']]]), host: '127.0.0.1', port: 0 },
    openRegistration: true,
    // The server takes releases of both keys: it cannot tell a stolen key's release; the devices must.
    releaseTrust: { anchors: [{ name: 'vendor-a', publicKey: A.publicKey }, { name: 'vendor-b', publicKey: B.publicKey }] },
    trust: storeTrustSource(store),
    modes: { tickMs: 50, normalWindowS: 0 },
  });
  coapUrl = `coap://127.0.0.1:${server.address().port}`;
  publisher = await openClient(`coaps://127.0.0.1:${server.dtls!.address().port}/`, { psk: PUBLISHER, params: { ackTimeoutMs: 500 } });
  const v1 = initialTrustState(trustSet(1, { name: 'vendor-a', key: A }, coapUrl), OWNER.publicKey);
  for (const id of ALL) {
    const flash = new MemoryFlash({ size: 128 * 1024, eraseBlockSize: 4096 });
    const layout = simulatedLayout(flash);
    await provisionDevice(flash, layout, factoryImage(id), 0, v1);
    devices.set(id, { id, flash, layout, events: [] });
  }
}, 30_000);

afterAll(async () => {
  await Promise.all([...devices.values()].map((d) => powerDown(d)));
  await publisher?.close();
  await server?.close();
  await h?.cleanup();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A device on release 2 under trust version 2: its store record and its flash. */
async function expectOnRelease2(d: Device): Promise<void> {
  const f = await onFlash(d);
  expect(f.installed, d.id).toBe(2);
  expect(f.running, d.id).toBe(digestOf(2));
  expect(f.trust.version, d.id).toBe(2);
  expect(f.trust.anchors.map((a) => a.name).sort(), d.id).toEqual(['integrator', 'vendor-b']);
  expect(f.trust.revocation.sequence, d.id).toBe(1);
  expect(f.trust.revocation.revoked.map((t) => bytesToHex(t)), d.id).toEqual([A_THUMB]);
}

/** A device that refused release 3 before downloading it, reported so, and kept its image (`installed`). */
async function expectRefused(d: Device, installed: number, running: string): Promise<void> {
  const device = (await store.getDevice(d.id))!;
  expect(device.installedSeq, d.id).toBe(installed);
  expect(device.detail, d.id).toMatch(/^UNTRUSTED_KEY: /);
  const history = (await store.listHistory(d.id)).filter((e) => e.sequence === 3).map((e) => e.transition);
  expect(history, d.id).toEqual(['failed']);
  const last = runs(d).at(-1)!;
  expect(last.seq, d.id).toBe(3);
  expect(firstIndex(last.events, 'block'), d.id).toBe(-1);
  expect(last.events.find((e) => e.type === 'status'), d.id).toMatchObject({ status: { result: 'rejected', error: 'UNTRUSTED_KEY' } });
  const f = await onFlash(d);
  expect(f.installed, d.id).toBe(installed);
  expect(f.running, d.id).toBe(running);
  expect(f.trust.version, d.id).toBe(2);
  expect(f.trust.revocation.revoked.map((t) => bytesToHex(t)), d.id).toEqual([A_THUMB]);
}

describe('a vendor key rotated and revoked mid-rollout', () => {
  it('the fleet takes the rotation before the new release, and nothing signed by the revoked key installs afterwards', async () => {
    // Every device registers once (the straggler too), then the late group and the straggler go dark.
    await Promise.all(group(ALL).map(powerUp));
    await fleetAt(ALL, 'registered', 0, 'every device registered');
    await Promise.all(group([...LATE, STRAGGLER]).map(powerDown));

    // Release 1, signed by A: the early group installs it under trust version 1; the others keep an open command for it.
    await publish(1, A);
    await fleetAt(EARLY, 'confirmed', 1, 'the early group on release 1');
    for (const d of group(EARLY)) expect((await onFlash(d)).trust.version, d.id).toBe(1);
    for (const id of [...LATE, STRAGGLER]) {
      const [open] = await store.listCommands(id);
      expect(open, id).toMatchObject({ sequence: 1 });
      expect(['pending', 'scheduled', 'triggered'], id).toContain(open!.state);
    }

    // Mid-rollout: the vendor rotates A→B (both sign: TUF's rule) and the integrator revokes A.
    const rotation = createTrustUpdate(trustSet(2, { name: 'vendor-b', key: B }, coapUrl), [A, B]);
    const revocation = createRevocationList({ sequence: 1, revoked: [A.publicKey] }, [T]);
    await store.publishTrustDocument({ kind: 'rotation', scope: '', version: 2, bytes: rotation, publisher: 'vendor' });
    await store.publishTrustDocument({ kind: 'revocation', scope: '', version: 1, bytes: revocation, publisher: 'integrator' });
    await eventually(() => {
      const s = server.trust!.served();
      return s.versions.includes(2) && s.revocationSequence === 1 ? true : undefined;
    }, 10_000, 'the server serving the rotation and the list');

    // Release 2, signed by B; the late group powers on.
    await publish(2, B);
    await Promise.all(group(LATE).map(powerUp));
    await fleetAt([...EARLY, ...LATE], 'confirmed', 2, 'early and late groups on release 2');
    for (const d of group(LATE)) {
      // The open release-1 command was superseded: a late device never tried release 1.
      expect((await store.listCommands(d.id)).find((c) => c.sequence === 1)?.state, d.id).toBe('superseded');
      const [run, ...more] = runs(d);
      expect(more, d.id).toEqual([]);
      expect(run!.seq, d.id).toBe(2);
      // One refresh took the rotation and the list, before a single block of the image came.
      expect(trustOf(run!.events), d.id).toMatchObject({ version: 2, revocationSequence: 1, applied: [2], written: true });
      expect(firstIndex(run!.events, 'trust'), d.id).toBeGreaterThanOrEqual(0);
      expect(firstIndex(run!.events, 'trust'), d.id).toBeLessThan(firstIndex(run!.events, 'block'));
    }
    for (const d of group(EARLY)) {
      const [r1, r2, ...more] = runs(d);
      expect(more, d.id).toEqual([]);
      expect(r1!.seq, d.id).toBe(1);
      expect(trustOf(r1!.events), d.id).toMatchObject({ version: 1, revocationSequence: 0, applied: [], written: false });
      expect(r2!.seq, d.id).toBe(2);
      expect(trustOf(r2!.events), d.id).toMatchObject({ version: 2, revocationSequence: 1, applied: [2], written: true });
    }
    for (const d of group([...EARLY, ...LATE])) await expectOnRelease2(d);

    // Release 3, signed by the revoked key A: published (the server still takes A) and refused everywhere,
    // also by the straggler, whose flash still says trust version 1, where A signs the firmware.
    const straggler = devices.get(STRAGGLER)!;
    expect((await onFlash(straggler)).trust.version).toBe(1);
    await publish(3, A);
    await powerUp(straggler);
    await eventually(async () => {
      const all = await Promise.all(ALL.map((id) => store.getDevice(id)));
      return all.every((d) => d?.state === 'failed' && d.targetSeq === 3) ? true : undefined;
    }, 30_000, 'every device refusing release 3');
    for (const d of group([...EARLY, ...LATE])) await expectRefused(d, 2, digestOf(2));
    await expectRefused(straggler, 0, bytesToHex(sha256(factoryImage(STRAGGLER))));
    // The straggler's one run took the rotation and the list first, then refused the release.
    const [only, ...more] = runs(straggler);
    expect(more).toEqual([]);
    expect(trustOf(only!.events)).toMatchObject({ version: 2, revocationSequence: 1, applied: [2], written: true });
  }, 90_000);
});
