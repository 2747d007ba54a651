/**
 * The device's trust at power-on: the trust state lives in the layout's
 * trust area (flash/trust-store.ts), written at provisioning and afterwards
 * only by verified trust documents (device/trust-refresh.ts).
 *
 * Fail closed (issue 14): a device whose trust area was never written trusts
 * nobody and refuses every update (TRUST_NOT_PROVISIONED); a store that
 * cannot be read refuses every update (TRUST_STORE_CORRUPT) until it is
 * provisioned again. Neither ever falls back to keys from the command line
 * or the caller: those count only when provisioning, explicitly.
 *
 * The trust state's `source` is the update server the device polls: the
 * device asks no other server (SOURCE_MISMATCH), so after an owner transfer
 * to a new source it stops talking to the old vendor.
 */
import { parseCoapUri } from '../codec/uri.js';
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import type { FlashLayout } from '../flash/layout.js';
import { TrustStore, type TrustStoreOptions } from '../flash/trust-store.js';
import type { DeviceComponent } from '../suit/trust-scope.js';
import type { TrustState } from '../suit/trust-set.js';

/** Erase blocks of the trust store's pointer log (flash/trust-store.ts). */
const POINTER_BLOCKS = 2;

/** The device's open trust store and the state it holds. */
export interface DeviceTrust {
  readonly store: TrustStore;
  /** The state in use: the stored one, then whatever a refresh wrote. */
  state: TrustState;
}

function trustArea(layout: FlashLayout, what: string): NonNullable<FlashLayout['trust']> {
  if (layout.trust === undefined) throw new CoapfwError('INVALID_ARGUMENT', `${what}: the layout has no trust area (createLayout(..., { trustAreaSize: TrustStore.areaSize(flash) }))`);
  return layout.trust;
}

/**
 * The store options that open the layout's trust area: its copy size follows
 * from the area's size (pointer log of 2 erase blocks, then two equal copies),
 * so a layout made with a custom `maxStateBytes` opens with the same one.
 */
export function trustStoreOptions(layout: FlashLayout): TrustStoreOptions {
  const area = trustArea(layout, 'trust store');
  const copyBlocks = (area.size / layout.eraseBlockSize - POINTER_BLOCKS) / 2;
  if (!Number.isInteger(copyBlocks) || copyBlocks < 1) {
    throw new CoapfwError('INVALID_ARGUMENT', `trust store: a ${area.size}-byte trust area is not a TrustStore.areaSize (2 pointer blocks and two equal copies)`);
  }
  return { maxStateBytes: copyBlocks * layout.eraseBlockSize };
}

/**
 * Provisioning: erase the layout's trust area and write `state` (for
 * example `initialTrustState(set, ownerKey)` or `trustStateFromPolicy(policy)`).
 * Not power-safe (like provisioning the images): a cut leaves a device that
 * reads as not provisioned, to be provisioned again.
 */
export async function provisionTrust(flash: FlashBackend, layout: FlashLayout, state: TrustState): Promise<TrustStore> {
  return TrustStore.provision(flash, trustArea(layout, 'provision trust'), state, trustStoreOptions(layout));
}

/**
 * The stored trust state; undefined when never provisioned. Throws
 * TRUST_STORE_CORRUPT when it cannot be read.
 */
export async function readDeviceTrust(flash: FlashBackend, layout: FlashLayout): Promise<TrustState | undefined> {
  return (await TrustStore.open(flash, trustArea(layout, 'trust'), trustStoreOptions(layout))).state();
}

/**
 * Power-on: open the trust store and check the device may update from
 * `manifestUri` (when given). Throws TRUST_NOT_PROVISIONED,
 * TRUST_STORE_CORRUPT or SOURCE_MISMATCH (see the file comment).
 */
export async function openDeviceTrust(flash: FlashBackend, layout: FlashLayout, manifestUri?: string): Promise<DeviceTrust> {
  const store = await TrustStore.open(flash, trustArea(layout, 'trust'), trustStoreOptions(layout));
  const state = store.state();
  if (state === undefined) {
    throw new CoapfwError('TRUST_NOT_PROVISIONED', 'trust: this device was never given a trust state, so it trusts nobody and refuses every update; provision it first');
  }
  if (manifestUri !== undefined) checkSource(state, manifestUri);
  return { store, state };
}

/** scheme://host:port of a coap(s) URI, as the device compares servers. */
function origin(uri: string): string {
  const u = parseCoapUri(uri);
  return `${u.scheme}://${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}`;
}

/**
 * SOURCE_MISMATCH unless `manifestUri` is on the server the trust state
 * names (scheme, host and port; a state without a source accepts any).
 */
export function checkSource(state: TrustState, manifestUri: string): void {
  if (state.source === undefined) return;
  if (origin(state.source) !== origin(manifestUri)) {
    throw new CoapfwError('SOURCE_MISMATCH', `trust: this device updates from ${state.source} (trust version ${state.version}), not from ${origin(manifestUri)}`, { path: manifestUri });
  }
}

/**
 * The device's component table for `verifyFirmware`: `components` when
 * given, else the layout's component ids (no vendor or class ids, which
 * only the device's own configuration knows); undefined for a one-component
 * layout without an id, which takes any component id (flash/layout.ts).
 */
export function deviceComponents(layout: FlashLayout, components?: readonly DeviceComponent[]): readonly DeviceComponent[] | undefined {
  if (components !== undefined) return components;
  if (layout.components.some((c) => c.id === undefined)) return undefined;
  return layout.components.map((c) => ({ componentId: c.id! }));
}
