/**
 * The update service's foundations: the {@link Store} (devices, releases,
 * status history, commands, rollouts, trust documents) on SQLite or
 * PostgreSQL, opened from a URL with {@link openStore}.
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
