/**
 * A simulated device whose flash is a file (FileFlash), as the `coapfw
 * device` command and the process-kill test use it: the layout follows from
 * the chip geometry alone, so every run of the process finds the same slots.
 */
import { stat } from 'node:fs/promises';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { FlashGeometry } from '../flash/backend.js';
import { FileFlash } from '../flash/file.js';
import { createLayout, type FlashLayout } from '../flash/layout.js';
import { TrustStore } from '../flash/trust-store.js';
import type { TrustState } from '../suit/trust-set.js';
import { readBootState } from './boot.js';
import { provisionDevice } from './device.js';
import { provisionTrust, readDeviceTrust } from './trust-device.js';

/** The image a fresh simulated device is provisioned with (sequence number 0). */
export const FACTORY_IMAGE: Uint8Array = new TextEncoder().encode('coapfw simulated device: factory image v0\n'.padEnd(64, '.'));

/**
 * The layout of a simulated device: two equal slots taking all the space
 * left after the scratch block, 2 boot-log and 2 journal erase blocks and
 * the trust area (4 erase blocks of 4 KiB: flash/trust-store.ts).
 */
export function simulatedLayout(g: FlashGeometry): FlashLayout {
  const ebs = g.eraseBlockSize;
  const trustAreaSize = TrustStore.areaSize(g);
  const fixed = 5 + trustAreaSize / ebs;
  const slotBlocks = Math.floor((g.size / ebs - fixed) / 2);
  if (slotBlocks < 1) throw new CoapfwError('INVALID_ARGUMENT', `device: a ${g.size}-byte flash is too small (needs at least ${fixed + 2} erase blocks)`);
  return createLayout(g, { slotSize: slotBlocks * ebs, trustAreaSize });
}

/** Options of {@link openFileDevice}. */
export interface FileDeviceOptions {
  /** Flash size for a new file; an existing file keeps its own size. Default 1 MiB. */
  readonly size?: number;
  /** Default 4096. */
  readonly eraseBlockSize?: number;
  /** Create and provision the file when it does not exist (or was never provisioned). Default true. */
  readonly create?: boolean;
  /**
   * The trust state to provision when the device's trust store was never
   * written (a new file included): explicit provisioning. A provisioned
   * store is never replaced here (`provisionTrust` does that).
   */
  readonly trust?: TrustState;
}

/** An open simulated device. */
export interface FileDevice {
  readonly flash: FileFlash;
  readonly layout: FlashLayout;
  /** True when this call provisioned the factory image. */
  readonly provisioned: boolean;
  /** True when this call wrote the trust store (`trust` was given and the store was empty). */
  readonly trustProvisioned: boolean;
}

/**
 * Whether the trust store was never written. A damaged one is not empty: it
 * is re-provisioned only on purpose, and the update client reports it
 * (TRUST_STORE_CORRUPT) meanwhile.
 */
async function trustIsEmpty(flash: FileFlash, layout: FlashLayout): Promise<boolean> {
  try {
    return (await readDeviceTrust(flash, layout)) === undefined;
  } catch (e) {
    if (isCoapfwError(e, 'TRUST_STORE_CORRUPT')) return false;
    throw e;
  }
}

/** Open (and if needed create and provision) the simulated device in `path`. */
export async function openFileDevice(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
  let size = options.size ?? 1024 * 1024;
  let exists = false;
  try {
    const st = await stat(path);
    // An empty file: a chip whose creation was cut short (FileFlash fills a new one whole or not at all).
    if (st.size > 0) {
      size = st.size;
      exists = true;
    }
  } catch {
    if (options.create === false) throw new CoapfwError('IO_ERROR', `device: no flash file ${path}`);
  }
  if (exists && options.size !== undefined && options.size !== size) {
    throw new CoapfwError('INVALID_ARGUMENT', `device: ${path} holds a ${size}-byte flash, not ${options.size}`);
  }
  const flash = await FileFlash.open(path, { size, eraseBlockSize: options.eraseBlockSize ?? 4096 });
  try {
    const layout = simulatedLayout(flash);
    let provisioned = false;
    if ((await readBootState(flash, layout)) === undefined) {
      if (options.create === false) throw new CoapfwError('NO_BOOTABLE_IMAGE', `device: ${path} was never provisioned`);
      await provisionDevice(flash, layout, FACTORY_IMAGE, 0);
      provisioned = true;
    }
    let trustProvisioned = false;
    if (options.trust !== undefined && (await trustIsEmpty(flash, layout))) {
      await provisionTrust(flash, layout, options.trust);
      trustProvisioned = true;
    }
    return { flash, layout, provisioned, trustProvisioned };
  } catch (e) {
    await flash.close();
    throw e;
  }
}
