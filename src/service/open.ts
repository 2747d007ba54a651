/**
 * Open a store from a URL, the way `--db` names one:
 * - `postgres://user@host:port/db` or `postgresql://...`: PostgreSQL;
 * - `sqlite:PATH`, `sqlite://PATH` or a bare path (`./fleet.db`, `:memory:`): SQLite.
 * The schema is created or migrated before the store is returned.
 */
import { CoapfwError } from '../errors.js';
import { PgDriver, redact, type PgDriverOptions } from './postgres.js';
import type { SqlDriver } from './sql.js';
import { SqliteDriver, type SqliteDriverOptions } from './sqlite.js';
import { SqlStore } from './sql-store.js';
import type { Store, StoreOptions } from './store.js';
import { checkInt } from './validate.js';

/** Options of {@link openStore}: the store's and the chosen driver's. */
export interface OpenStoreOptions extends StoreOptions {
  readonly sqlite?: SqliteDriverOptions;
  readonly postgres?: PgDriverOptions;
}

/** Where a store URL points. */
export type StoreLocation = { readonly backend: 'sqlite'; readonly path: string } | { readonly backend: 'postgres'; readonly url: string };

/** Parse a store URL (see the module comment); INVALID_ARGUMENT for an empty one or an unknown scheme. */
export function parseStoreUrl(url: string): StoreLocation {
  if (typeof url !== 'string' || url.trim() === '') throw new CoapfwError('INVALID_ARGUMENT', 'store: expected a database URL or path, got an empty string');
  if (/^postgres(ql)?:\/\//i.test(url)) return { backend: 'postgres', url };
  const sqlite = /^sqlite:(\/\/)?(.*)$/i.exec(url);
  if (sqlite !== null) {
    if (sqlite[2] === '') throw new CoapfwError('INVALID_ARGUMENT', `store: '${url}' names no file`);
    return { backend: 'sqlite', path: sqlite[2]! };
  }
  // Anything else with a scheme is a mistake ("mysql://..."), not a file name; a Windows drive letter is a path.
  if (/^[a-z][a-z0-9+.-]+:/i.test(url)) throw new CoapfwError('INVALID_ARGUMENT', `store: unsupported database URL '${redact(url)}' (postgres://... or sqlite:PATH)`);
  return { backend: 'sqlite', path: url };
}

/**
 * Open (creating and migrating) the store at `url`.
 *
 * @example
 * const store = await openStore('sqlite:./fleet.db');
 * const fleet = await openStore('postgres://coapfw@db.example/fleet');
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const where = parseStoreUrl(url);
  const now = checkInt((options.clock ?? Date.now)(), 'store clock');
  const driver: SqlDriver = where.backend === 'postgres' ? await PgDriver.open(where.url, options.postgres) : await SqliteDriver.open(where.path, options.sqlite);
  const store = new SqlStore(driver, options);
  try {
    await driver.migrate(now);
  } catch (e) {
    await driver.close().catch(() => undefined); // the migration error is the one to report
    throw e;
  }
  return store;
}
