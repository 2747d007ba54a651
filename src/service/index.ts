/**
 * The update service (`coapfw/service`): a device registry with status
 * history, releases, the three update modes (client-initiated,
 * server-initiated, negotiated) and publishing over Block1, on a
 * {@link Store} in SQLite (one box) or PostgreSQL (a fleet of servers).
 *
 * @example
 * import { startUpdateServer } from 'coapfw/service';
 * import { parsePublicKey } from 'coapfw/suit';
 * const server = await startUpdateServer({
 *   dir: './images',                      // also served, as by startFileServer
 *   db: 'sqlite:./fleet.db',              // or postgres://...; created and migrated
 *   trust: { anchors: [{ name: 'oem', publicKey: parsePublicKey(pem) }] },
 *   secure: { psk, port: 5684 },          // publishers and devices over coaps
 * });
 * // devices: POST /d, POST /d/<id>/r, GET+Observe /d/<id>/c, GET+Observe /m/<class>
 * // publishers: PUT /pub/blob/<sha256>, POST /pub/release
 */
export type * from './fleet.js';
export { canMoveRollout, canMoveWave, OPEN_COMMAND_STATES, ROLLOUT_STATES, stepCommand, TARGET_STATES, WAVE_STATES } from './fleet.js';
export type * from './model.js';
export { REPORT_STATES, TRUST_KINDS, UPDATE_MODES, URGENCIES } from './model.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export { openStore, parseStoreUrl, type OpenStoreOptions, type StoreLocation } from './open.js';
export { CHANGE_CHANNEL, type PgDriverOptions } from './postgres.js';
export type { SqliteDriverOptions } from './sqlite.js';
export type * from './store.js';
export { startUpdateServer, type ServiceLimits, type UpdateServer, type UpdateServerOptions } from './update-server.js';
export { ClassTargeting, CommandScheduler, IDLE_STATES, notBeforeFor, type SchedulerOptions, type Targeting, type UrgencyOptions } from './modes.js';
export { publishEnvelope, releaseImages, type ImageSource, type Published, type PublishOptions, type ReleaseImageRef } from './publish.js';
export { BlobStaging, type StagedBlob, type StagingOptions } from './staging.js';
export { commandView, parseAnswer, parsePublish, parseRegister, parseReport, registerView, type AnswerBody, type PublishBody, type RegisterBody } from './protocol.js';
export type { AccessPolicy } from './access.js';
export type { ServiceEvent } from './device-resources.js';
export { RolloutEngine, type EngineTimers, type RolloutEngineOptions, type RolloutProgress, type RolloutRequest } from './rollout-engine.js';
export { commandDispatcher, type RolloutDispatcher } from './rollout-dispatch.js';
export { confirmationCurve, defaultWaves, nextStep, timeliness, waveSize, type RolloutStep, type StepInput, type Timeliness } from './rollout-plan.js';
export type { DeviceRollout, RolloutTarget, TargetFilter, TargetSelector } from './rollout-targets-sql.js';
export { rolloutTargeting, type RolloutTargetingOptions } from './rollout-targeting.js';
