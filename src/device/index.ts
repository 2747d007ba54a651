/**
 * The constrained device's side: {@link runUpdate}, the update state machine
 * (check, verify, download into the secondary slot with a resume journal,
 * verify the image, request a test boot, report), and the boot model
 * (A/B slots, test/confirm/revert as MCUboot does) on any `FlashBackend`,
 * and the device's trust store in the flow (provisioning, the refresh
 * before each check, documents handed over directly) and its privacy rules.
 *
 * @example
 * import { runUpdate, powerOn } from 'coapfw/device';
 * const status = await runUpdate({ flash, layout, request: client.request, runtime: client.runtime, manifestUri, trust });
 * const after = await powerOn(flash, layout); // next boot: swap, test, confirm
 */
export { runUpdate, step as updateStep, UpdateSession } from './updater.js';
export type { Candidate, UpdateEvent, UpdateOptions, UpdateState, UpdateStateName } from './states.js';
export { encodeStatus, postStatus, type BootStatus, type UpdateResultKind, type UpdateStatus } from './report.js';
export { bootStatus, powerOn, provisionDevice, type PowerOnOptions, type PowerOnOutcome, type PowerOnResult } from './device.js';
export { boot, confirm, installFactoryImage, readBootState, requestTestBoot, type BootAction, type BootMode, type BootResult, type TestBootImage, type TestBootRequest } from './boot.js';
export { BOOT_PAYLOAD_SIZE, BootLog, bootPayloadSize, runningSetDigest, setDigest, type BootState, type ComponentImages, type PrimaryMode, type SlotImage, type SwapProgress } from './boot-state.js';
export { updateDevice, type DeviceUpdateOptions, type DeviceUpdateResult } from './device-update.js';
export { STREAM_ALIGN, candidateImages, setIdentity, type CandidateImage, type ImageSource } from './candidate.js';
export { fetchTargets, type FetchTarget } from './fetch-target.js';
export { FACTORY_IMAGE, openFileDevice, simulatedLayout, type FileDevice, type FileDeviceOptions } from './file-device.js';
export { imageRequestOptions, resolveImageUri } from './image-uri.js';
export { DEFAULT_TRUST_PATHS, refreshTrust, type TrustPaths, type TrustRefresh, type TrustRefreshOptions } from './trust-refresh.js';
export { checkSource, deviceComponents, openDeviceTrust, provisionTrust, readDeviceTrust, trustStoreOptions, type DeviceTrust } from './trust-device.js';
export { applyTrustDocument, applyTrustDocuments, type AppliedDocument } from './trust-apply.js';
export { firstCheckDelay, isSecureUri, reportForChannel, reportPseudonym, statusPathFor } from './privacy.js';
