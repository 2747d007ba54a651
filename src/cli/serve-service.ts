/**
 * The update-service half of `coapfw serve`: the database (`--db`, by
 * default SQLite in `DIR/.coapfw/fleet.db`), publish trust anchors
 * (`--trust`), who publishes, open registration, and what the service logs.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError } from '../bounded-read.js';
import { isCoapfwError } from '../errors.js';
import { openStore } from '../service/open.js';
import type { ServiceEvent } from '../service/device-resources.js';
import type { Store } from '../service/store.js';
import { redact } from '../service/postgres.js';
import type { TrustPolicy } from '../suit/trust.js';
import { intOption, str, strings, type Values } from './args.js';
import { UsageError } from './common.js';
import { readPublicKey } from './inputs.js';
import type { ServeLog } from './serve-log.js';

/** The service's options of `coapfw serve`. */
export const SERVICE_OPTIONS = {
  db: { type: 'string' },
  trust: { type: 'string', multiple: true },
  publisher: { type: 'string', multiple: true },
  'open-registration': { type: 'boolean' },
  'no-open-registration': { type: 'boolean' },
  poll: { type: 'string' },
  'normal-window': { type: 'string' },
} as const;

/** Help text of those options. */
export const SERVICE_HELP = `  --db URL              the update service's database: sqlite:PATH (or a path),
                        postgres://user@host/db; default sqlite:DIR/.coapfw/fleet.db
                        (created and migrated at start; 'none': files only)
  --trust KEY.pub       a key releases may be signed by (repeatable; without it
                        nothing can be published)
  --publisher ID        a coaps PSK identity that may publish (repeatable; or
                        'identity hexkey publisher' in the PSK file)
  --open-registration   take devices over plain CoAP, unauthenticated (labs);
                        the default without --psk-file
  --no-open-registration  devices only over coaps; the default with --psk-file
  --poll S              seconds between a device's polls when Observe is lost (default 900)
  --normal-window S     spread server-initiated normal updates over S seconds (default 3600)
`;

/** The service's settings, parsed. */
export interface ServiceSettings {
  /** The database URL, or undefined for files only (`--db none`). */
  readonly db: string | undefined;
  /** True when --db was given (a missing driver is then an error, not a warning). */
  readonly explicit: boolean;
  /** The directory of the default database, created at start. */
  readonly stateDir: string;
  readonly trust: readonly string[];
  readonly publishers: readonly string[];
  readonly openRegistration: boolean | undefined;
  readonly pollS: number | undefined;
  readonly normalWindowS: number | undefined;
}

/** Parse the service's options; `dir` is the served directory (where the default database lives). */
export function serviceSettings(values: Values, dir: string): ServiceSettings {
  if (values['open-registration'] === true && values['no-open-registration'] === true) throw new UsageError('--open-registration and --no-open-registration contradict each other');
  const db = str(values, 'db');
  if (db === '') throw new UsageError('--db: expected a database URL or path');
  const stateDir = join(dir, '.coapfw');
  return {
    db: db === 'none' ? undefined : (db ?? `sqlite:${join(stateDir, 'fleet.db')}`),
    explicit: db !== undefined,
    stateDir,
    trust: strings(values, 'trust'),
    publishers: strings(values, 'publisher'),
    openRegistration: values['open-registration'] === true ? true : values['no-open-registration'] === true ? false : undefined,
    pollS: intOption('poll', values.poll, 1, 86_400),
    normalWindowS: intOption('normal-window', values['normal-window'], 0, 30 * 86_400),
  };
}

/** The publish trust policy of the `--trust` files, or undefined when none were given. */
export async function trustOf(paths: readonly string[]): Promise<TrustPolicy | undefined> {
  if (paths.length === 0) return undefined;
  const anchors = await Promise.all(paths.map(async (p, i) => ({ name: `trust-${i + 1}`, publicKey: await readPublicKey(p) })));
  return { anchors };
}

/**
 * Open the database. The default one (no --db) is SQLite in DIR/.coapfw;
 * when better-sqlite3 is not installed there the server runs without the
 * service (a warning says so), so that serving files never needs a native
 * addon; an explicit --db that cannot be opened is an error.
 */
export async function openServiceStore(s: ServiceSettings, log: ServeLog): Promise<Store | undefined> {
  if (s.db === undefined) return undefined;
  try {
    if (!s.explicit) await mkdir(s.stateDir, { recursive: true }).catch((e: unknown) => {
      throw fileError(e as NodeJS.ErrnoException, s.stateDir);
    });
    return await openStore(s.db);
  } catch (e) {
    // The default database is a convenience: a read-only directory or a missing driver leaves the files served.
    if (!s.explicit && (isCoapfwError(e, 'DRIVER_MISSING') || isCoapfwError(e, 'IO_ERROR'))) {
      log.warn(`update service off, serving files only (choose a database with --db): ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

/** A printable name of the database. */
export function dbName(url: string): string {
  return redact(url);
}

/** The service's events in the serve log: registrations and releases always, reports with -v. */
export function logServiceEvent(log: ServeLog, verbose: number, e: ServiceEvent): void {
  switch (e.type) {
    case 'registered':
      if (verbose > 0) log.info(`device ${e.device.id} registered (${e.device.mode}, sequence ${e.device.installedSeq}${e.secure ? ', coaps' : ''})`);
      return;
    case 'report':
      if (verbose > 0) log.info(`device ${e.deviceId}: ${e.report.state}${e.report.sequence === undefined ? '' : ` (sequence ${e.report.sequence})`}${e.report.detail ? `: ${e.report.detail}` : ''}`);
      return;
    case 'answer':
      if (verbose > 0) log.info(`device ${e.deviceId}: ${e.deferS === 0 ? 'update now' : `update in ${e.deferS} s`} (command ${e.commandId})`);
      return;
    case 'published':
      log.info(`release ${e.release.sequence} of class ${e.release.classId} published by ${e.release.publisher} (${e.release.urgency})`);
      return;
    case 'error':
      log.warn(`${e.during}: ${(e.error as Error)?.message ?? String(e.error)}`);
      return;
    default: {
      const never: never = e;
      return never;
    }
  }
}
