/**
 * The bootloader's durable state: one snapshot record in a RecordLog
 * (flash/record-log.ts) in the layout's `bootLog` area. Every state change
 * of the boot model (request a test boot, each swap step, mark booted,
 * confirm, finish a swap) is exactly one appended record, so each change
 * is atomic: a power cut leaves either the old or the new state.
 *
 * Record payload (84 bytes, big-endian; 96 bytes on flash with the log's
 * framing and CRC, padded to the write alignment):
 * ```
 * offset size field
 *      0    1 primary mode (0 confirmed, 1 test-pending, 2 testing)
 *      1    1 pending: 1 when a test boot of the secondary was requested
 *      2    1 swap kind (0 none, 1 install, 2 revert)
 *      3    1 swap step within the block (0, 1, 2; see boot-swap.ts)
 *      4    4 swap: number of erase blocks to swap
 *      8    4 swap: index of the block in progress
 *     12    4 primary image size (0xFFFFFFFF: no image)
 *     16   32 primary image SHA-256
 *     48    4 secondary image size (0xFFFFFFFF: no image)
 *     52   32 secondary image SHA-256
 * ```
 * During a swap the two image descriptors still describe the slots as they
 * were before it started; the record that ends the swap exchanges them.
 */
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import { checkLayout, type FlashLayout } from '../flash/layout.js';
import { RecordLog } from '../flash/record-log.js';

/** An image a slot holds: its length and SHA-256. */
export interface SlotImage {
  readonly size: number;
  readonly digest: Uint8Array;
}

/**
 * State of the image in the primary slot (MCUboot's image-ok and copy-done):
 * `confirmed`: image-ok set, it stays; `test-pending`: swapped in, not yet
 * booted; `testing`: booted once as a test image and not confirmed: the next
 * boot reverts it.
 */
export type PrimaryMode = 'confirmed' | 'test-pending' | 'testing';

/** A swap in progress. */
export interface SwapProgress {
  /** `install`: secondary becomes the test image; `revert`: back to the previous one. */
  readonly kind: 'install' | 'revert';
  /** Erase blocks to exchange, from the start of the slots. */
  readonly blocks: number;
  /** Block being exchanged. */
  readonly index: number;
  /** Step within that block (0 primary→scratch, 1 secondary→primary, 2 scratch→secondary). */
  readonly step: 0 | 1 | 2;
}

/** The bootloader's durable state. */
export interface BootState {
  readonly primary: SlotImage | null;
  readonly secondary: SlotImage | null;
  readonly primaryMode: PrimaryMode;
  /** A test boot of the secondary image was requested and not yet started. */
  readonly pending: boolean;
  readonly swap: SwapProgress | null;
}

/** Boot log kind (see record-log.ts). */
export const BOOT_LOG_KIND = 2;
/** Payload bytes of a boot record. */
export const BOOT_PAYLOAD_SIZE = 84;

const MODES: readonly PrimaryMode[] = ['confirmed', 'test-pending', 'testing'];
const NO_IMAGE = 0xffffffff;

function putImage(out: Uint8Array, at: number, image: SlotImage | null): void {
  new DataView(out.buffer).setUint32(at, image ? image.size : NO_IMAGE);
  if (image) out.set(image.digest, at + 4);
}

function getImage(p: Uint8Array, at: number): SlotImage | null {
  const size = new DataView(p.buffer, p.byteOffset).getUint32(at);
  return size === NO_IMAGE ? null : { size, digest: p.slice(at + 4, at + 36) };
}

/** Encode a state (trusted input: built by boot.ts). */
export function encodeBootState(s: BootState): Uint8Array {
  const out = new Uint8Array(BOOT_PAYLOAD_SIZE);
  const view = new DataView(out.buffer);
  out[0] = MODES.indexOf(s.primaryMode);
  out[1] = s.pending ? 1 : 0;
  out[2] = s.swap === null ? 0 : s.swap.kind === 'install' ? 1 : 2;
  out[3] = s.swap?.step ?? 0;
  view.setUint32(4, s.swap?.blocks ?? 0);
  view.setUint32(8, s.swap?.index ?? 0);
  putImage(out, 12, s.primary);
  putImage(out, 48, s.secondary);
  return out;
}

/** Decode a payload; `JOURNAL_CORRUPT` if a CRC-valid record holds impossible values. */
export function decodeBootState(p: Uint8Array): BootState {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (p.length !== BOOT_PAYLOAD_SIZE || p[0]! > 2 || p[1]! > 1 || p[2]! > 2 || p[3]! > 2) {
    throw new CoapfwError('JOURNAL_CORRUPT', 'boot log: newest record holds invalid values');
  }
  const blocks = view.getUint32(4);
  const index = view.getUint32(8);
  if (p[2] !== 0 && index >= blocks) throw new CoapfwError('JOURNAL_CORRUPT', 'boot log: swap index out of range');
  return {
    primaryMode: MODES[p[0]!]!,
    pending: p[1] === 1,
    swap: p[2] === 0 ? null : { kind: p[2] === 1 ? 'install' : 'revert', blocks, index, step: p[3] as 0 | 1 | 2 },
    primary: getImage(p, 12),
    secondary: getImage(p, 48),
  };
}

/** The boot state log: open, read the current state, append a new one. */
export class BootLog {
  private constructor(private readonly log: RecordLog) {}

  /** Open the log in `layout.bootLog`. */
  static async open(flash: FlashBackend, layout: FlashLayout): Promise<BootLog> {
    checkLayout(flash, layout);
    return new BootLog(await RecordLog.open(flash, layout.bootLog, { kind: BOOT_LOG_KIND, payloadSize: BOOT_PAYLOAD_SIZE }));
  }

  /** The current state, or undefined when no image was ever installed. */
  state(): BootState | undefined {
    const rec = this.log.latest();
    return rec && decodeBootState(rec.payload);
  }

  /** Commit a new state (one program operation, plus a page erase now and then). */
  async commit(state: BootState): Promise<BootState> {
    await this.log.append(encodeBootState(state));
    return state;
  }

  /** Bytes of one boot record on flash. */
  get recordSize(): number {
    return this.log.recordSize;
  }
}
