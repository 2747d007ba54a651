/**
 * A simulated device whose flash is a file (FileFlash), as the `coapfw
 * device` command and the process-kill test use it: the layout follows from
 * the chip geometry alone, so every run of the process finds the same slots.
 */
import { stat } from 'node:fs/promises';
import { CoapfwError } from '../errors.js';
import type { FlashGeometry } from '../flash/backend.js';
import { FileFlash } from '../flash/file.js';
import { createLayout, type FlashLayout } from '../flash/layout.js';
import { readBootState } from './boot.js';
import { provisionDevice } from './device.js';

/** The image a fresh simulated device is provisioned with (sequence number 0). */
export const FACTORY_IMAGE: Uint8Array = new TextEncoder().encode('coapfw simulated device: factory image v0\n'.padEnd(64, '.'));

/**
 * The layout of a simulated device: two equal slots taking all the space
 * left after the scratch block, 2 boot-log and 2 journal erase blocks.
 */
export function simulatedLayout(g: FlashGeometry): FlashLayout {
  const ebs = g.eraseBlockSize;
  const slotBlocks = Math.floor((g.size / ebs - 5) / 2);
  if (slotBlocks < 1) throw new CoapfwError('INVALID_ARGUMENT', `device: a ${g.size}-byte flash is too small (needs at least 7 erase blocks)`);
  return createLayout(g, { slotSize: slotBlocks * ebs });
}

/** Options of {@link openFileDevice}. */
export interface FileDeviceOptions {
  /** Flash size for a new file; an existing file keeps its own size. Default 1 MiB. */
  readonly size?: number;
  /** Default 4096. */
  readonly eraseBlockSize?: number;
  /** Create and provision the file when it does not exist (or was never provisioned). Default true. */
  readonly create?: boolean;
}

/** An open simulated device. */
export interface FileDevice {
  readonly flash: FileFlash;
  readonly layout: FlashLayout;
  /** True when this call provisioned the factory image. */
  readonly provisioned: boolean;
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
    return { flash, layout, provisioned };
  } catch (e) {
    await flash.close();
    throw e;
  }
}
