/**
 * Flash for the device side: the {@link FlashBackend} interface with NOR
 * semantics (a write only clears bits; erase by block), a file playing the
 * chip ({@link FileFlash}), the slot layout, image writes and hashes, and
 * the power-safe record logs (resume journal). `MemoryFlash`, with power-cut
 * injection, is in `coapfw/testing`.
 *
 * @example
 * import { FileFlash, createLayout } from 'coapfw/flash';
 * const flash = await FileFlash.open('dev.flash', { size: 1 << 20, eraseBlockSize: 4096 });
 * const layout = createLayout(flash, { slotSize: 256 * 1024 });
 */
export { ERASED, alignDown, alignUp, isErased, type FlashBackend, type FlashGeometry } from './backend.js';
export { FileFlash, type FileFlashOptions } from './file.js';
export { FileLock, type LockOwner } from './file-lock.js';
export {
  MAX_COMPONENTS,
  checkLayout,
  createLayout,
  createSingleBankLayout,
  layoutSize,
  singleBankLayoutSize,
  updateSlot,
  type ComponentIdBytes,
  type ComponentOptions,
  type ComponentSlots,
  type FlashArea,
  type FlashLayout,
  type LayoutOptions,
  type RecoveryArea,
  type SingleBankLayoutOptions,
} from './layout.js';
export { hashArea, sha256Bytes, writeImage, writeImageChunk, resumeOffset } from './image.js';
export { RECORD_OVERHEAD, RecordLog, recordSize, type LogRecord, type RecordLogOptions, type RecordLogStats } from './record-log.js';
export { Journal, type ResumePhase, type ResumeRecord } from './journal.js';
export { TrustStore, MAX_TRUST_STATE_BYTES, TRUST_POINTER_KIND, type TrustStoreOptions, type TrustStoreStats } from './trust-store.js';
