/**
 * coapfw public API. Named exports only.
 */
export { CoapfwError, isCoapfwError, type CoapfwErrorCode } from './errors.js';
export { peerKey, type Peer, type Transport, type DatagramHandler } from './transport/types.js';
export * from './codec/numbers.js';
export * from './codec/message.js';
export { OPTION_DEFINITIONS, KNOWN_OPTIONS, type OptionDefinition, type OptionFormat } from './codec/options.js';
export * from './codec/block.js';
export * from './codec/uri.js';
export * from './codec/link-format.js';
export { createDtlsServer, DtlsServer, type DtlsServerOptions, type DtlsServerEvent, type DtlsServerStats } from './transport/dtls/server.js';
export { connectDtls, DtlsClientTransport, type DtlsClientOptions } from './transport/dtls/client.js';
export { ReconnectingDtlsClient } from './transport/dtls/reconnecting.js';
export { PskStore, parsePskKey, type PskLookup } from './transport/dtls/psk-store.js';
export { describeMessage } from './codec/describe.js';
export { ERASED, alignDown, alignUp, isErased, type FlashBackend, type FlashGeometry } from './flash/backend.js';
export { MemoryFlash, type MemoryFlashOptions, type CutOptions, type FlashStats } from './flash/memory.js';
export { FileFlash, type FileFlashOptions } from './flash/file.js';
export { crc32 } from './flash/crc32.js';
export { mulberry32 } from './flash/prng.js';
export { createLayout, layoutSize, checkLayout, type FlashArea, type FlashLayout, type LayoutOptions } from './flash/layout.js';
export { RecordLog, recordSize, RECORD_OVERHEAD, type RecordLogOptions, type RecordLogStats, type LogRecord } from './flash/record-log.js';
export { Journal, idleResumeRecord, encodeResumeRecord, decodeResumeRecord, RESUME_PAYLOAD_SIZE, type ResumeRecord, type ResumePhase } from './flash/journal.js';
export { hashArea, writeImage, writeImageChunk, resumeOffset } from './flash/image.js';
export { powerCutSweep, runUntilDone, type PowerCutSweepOptions, type PowerCutSweepReport } from './flash/power-cut.js';
export { boot, confirm, requestTestBoot, installFactoryImage, readBootState, type BootResult, type BootMode, type BootAction, type TestBootRequest } from './device/boot.js';
export { BootLog, BOOT_PAYLOAD_SIZE, type BootState, type SlotImage, type PrimaryMode, type SwapProgress } from './device/boot-state.js';
export * from './suit/index.js';
