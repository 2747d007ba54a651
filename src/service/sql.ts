/**
 * The little a store needs from a SQL database, so that one set of queries
 * ({@link SqlStore}) runs on SQLite and on PostgreSQL. Queries use `?`
 * placeholders (the PostgreSQL driver numbers them) and only SQL that both
 * dialects accept: INSERT ... ON CONFLICT, RETURNING, partial indexes.
 */
import { CoapfwError } from '../errors.js';
import type { StoreChange } from './store.js';

/** Which SQL dialect a driver speaks. */
export type Dialect = 'sqlite' | 'postgres';

/** A bound parameter. Integers must be safe JavaScript integers. */
export type SqlValue = string | number | null | Uint8Array;

/** Run statements on a connection (or inside a transaction). */
export interface Sql {
  /** Every row of a query. */
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** The first row, or undefined. */
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Run a statement; resolves with the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/** Inside a transaction: statements, and changes to announce once it commits. */
export interface Tx extends Sql {
  /** Announce `change` after the commit (never if the transaction rolls back). */
  changed(change: StoreChange): void;
}

/** A connection (pool) to one database. */
export interface SqlDriver extends Sql {
  readonly dialect: Dialect;
  /**
   * Run `fn` in one transaction: committed when it resolves, rolled back when
   * it throws (the error is rethrown). Changes it announced are delivered to
   * {@link SqlDriver.onChange} listeners after the commit.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Create or migrate the schema under the dialect's schema lock. */
  migrate(now: number): Promise<number>;
  /** Deliver committed changes (this driver's and, on PostgreSQL, other servers'). */
  onChange(listener: (change: StoreChange) => void): () => void;
  close(): Promise<void>;
}

/** Wrap a driver failure that is not ours as IO_ERROR, keeping CoapfwErrors as they are. */
export function dbError(e: unknown, what: string): CoapfwError {
  if (e instanceof CoapfwError) return e;
  return new CoapfwError('IO_ERROR', `store: ${what} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** Listeners of change events, each called in isolation (one throwing listener does not stop the others). */
export class ChangeListeners {
  private readonly listeners = new Set<(change: StoreChange) => void>();

  add(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: StoreChange): void {
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (e) {
        // A listener's bug must neither make a committed write look failed nor starve
        // the other listeners; it must not vanish either: a process warning names it.
        process.emitWarning(e instanceof Error ? e : new Error(String(e)), 'CoapfwStoreListenerError');
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
