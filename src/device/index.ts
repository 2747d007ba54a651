/**
 * The constrained device's side: {@link runUpdate}, the update state machine
 * (check, verify, download into the secondary slot with a resume journal,
 * verify the image, request a test boot, report), and the boot model
 * (A/B slots, test/confirm/revert as MCUboot does) on any `FlashBackend`;
 * single-bank devices update in place (`createSingleBankLayout`,
 * {@link bootInPlace}, {@link powerOnInPlace}), every block checked first;
 * the device's trust store in the flow (provisioning, the refresh before
 * each check, documents handed over directly) and its privacy rules.
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
export { DeviceAgent } from './agent.js';
export { agentLink, type AgentEvent, type AgentLink, type DeviceAgentOptions, type Offer } from './agent-options.js';
export { agentStep, initialModel, targetKey, type AgentContext, type AgentEffect, type AgentInput, type AgentModel, type AgentStateName, type Observed, type UpdateOutcome, type UpdateTarget } from './agent-machine.js';
export { Observation, type ObservationOptions, type ObserveLoss } from '../messaging/observation.js';
export { Reporter, type ReportOutcome, type ReporterOptions } from './agent-reports.js';
export { UNREACHABLE_CODES, runAgentUpdate, targetUri, type AgentUpdateContext, type AgentUpdateResult } from './agent-update.js';
export {
  AGENT_MODES,
  decodeCommand,
  decodeRegistrationAnswer,
  type AgentCommand,
  type CommandOf,
  type AgentMode,
  type AgentReport,
  type CommandUrgency,
  type OfferAnswer,
  type Registration,
  type RegistrationAnswer,
  type ReportState,
} from './agent-wire.js';
export { DigestSource, openDigests, rangeFetcher, uriFetcher, type BlockAuthOptions, type RangeFetcher } from './block-auth.js';
export { VerifiedWriter, type ImageSink, type VerifiedWriterOptions } from './verified-writer.js';
export { deviceIdentity, updateImages } from './update-plan.js';
export type { DeltaSource } from './delta-source.js';
export { bootInPlace, commitInPlaceImage, type InPlaceBoot } from './boot-inplace.js';
export { powerOnInPlace, runRecoveryLoader, type InPlacePowerOn } from './inplace-device.js';
export { DEFAULT_TRUST_PATHS, refreshTrust, type TrustPaths, type TrustRefresh, type TrustRefreshOptions } from './trust-refresh.js';
export { checkSource, deviceComponents, openDeviceTrust, provisionTrust, readDeviceTrust, trustStoreOptions, type DeviceTrust } from './trust-device.js';
export { applyTrustDocument, applyTrustDocuments, type AppliedDocument } from './trust-apply.js';
export { firstCheckDelay, isSecureUri, reportForChannel, reportPseudonym, statusPathFor } from './privacy.js';
