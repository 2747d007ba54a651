/**
 * The SQLite driver: better-sqlite3 (version 12; 13 needs Node 22), one
 * connection, prepared statements cached by SQL text, WAL journal with
 * `synchronous = NORMAL` (a committed transaction survives a killed process;
 * only an OS crash may lose the last ones), foreign keys on.
 *
 * better-sqlite3 is synchronous, the store interface is not: a transaction
 * body awaits between statements, so transactions are queued and a plain
 * statement issued while one is open waits for it (it must not see, or mix
 * into, another caller's uncommitted writes). With nothing queued a plain
 * statement runs at once. Connections of one process to one file share that
 * queue: a second connection's BEGIN IMMEDIATE would otherwise wait (blocking
 * the thread, better-sqlite3 being synchronous) for a lock that only this
 * thread can release. Other processes wait on SQLite's own lock (busy timeout).
 */
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { CoapfwError } from '../errors.js';
import { migrate } from './migrations.js';
import { ChangeListeners, dbError, type SqlDriver, type SqlValue, type Tx } from './sql.js';
import type { StoreChange } from './store.js';

/** Options of the SQLite driver. */
export interface SqliteDriverOptions {
  /** How long to wait for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

type Statement = BetterSqlite3.Statement<unknown[], unknown>;

/** Map SQLite's constraint errors onto our codes (ON CONFLICT handles the expected ones; these are races and bugs). */
function sqliteError(e: unknown, what: string): CoapfwError {
  const code = (e as { code?: unknown })?.code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new CoapfwError('CONFLICT', `store: ${what}: ${(e as Error).message}`, { cause: e });
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return new CoapfwError('NOT_FOUND', `store: ${what}: a referenced row does not exist`, { cause: e });
  if (code === 'SQLITE_CONSTRAINT_CHECK') return new CoapfwError('INVALID_ARGUMENT', `store: ${what}: ${(e as Error).message}`, { cause: e });
  return dbError(e, what);
}

function bind(params: readonly SqlValue[]): unknown[] {
  return params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
}

/**
 * better-sqlite3, or DRIVER_MISSING naming the package: it is an optional
 * dependency (a native addon whose build may fail on an install without a
 * compiler), so its absence is a clear error, not a stack trace.
 */
function loadDriver(): typeof BetterSqlite3 {
  let Database: typeof BetterSqlite3;
  try {
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND';
    const why = missing ? 'is not installed' : `cannot be loaded (${(e as Error).message.split('\n')[0]})`;
    throw new CoapfwError('DRIVER_MISSING', `store: SQLite needs the better-sqlite3 package, which ${why}: npm install better-sqlite3@12`, { cause: e });
  }
  return Database;
}

/** A SQLite database file (or `:memory:`) as a {@link SqlDriver}. */
export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Statement>();
  private readonly listeners = new ChangeListeners();
  private closed = false;

  private constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly queue: WriteQueue,
    private readonly release: () => void,
  ) {}

  /** Open (creating) the database at `path`. */
  static async open(path: string, options: SqliteDriverOptions = {}): Promise<SqliteDriver> {
    // Loaded on first use, so that a PostgreSQL-only deployment never loads the native addon.
    const Database = loadDriver();
    let db: BetterSqlite3.Database;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (e) {
      throw new CoapfwError('IO_ERROR', `store: cannot open SQLite database ${path}: ${(e as Error).message}`, { cause: e, path });
    }
    const { queue, release } = WriteQueue.forFile(path);
    return new SqliteDriver(db, queue, release);
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.exclusive(() => this.stmt(sql).all(...bind(params)) as T[], sql);
  }

  get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.exclusive(() => this.stmt(sql).get(...bind(params)) as T | undefined, sql);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.exclusive(() => this.stmt(sql).run(...bind(params)).changes, sql);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      const changes: StoreChange[] = [];
      const direct = <R>(f: () => R, sql: string): Promise<R> => {
        try {
          return Promise.resolve(f());
        } catch (e) {
          return Promise.reject(sqliteError(e, sql.slice(0, 60)));
        }
      };
      const tx: Tx = {
        all: <R>(sql: string, params: readonly SqlValue[] = []) => direct(() => this.stmt(sql).all(...bind(params)) as R[], sql),
        get: <R>(sql: string, params: readonly SqlValue[] = []) => direct(() => this.stmt(sql).get(...bind(params)) as R | undefined, sql),
        run: (sql: string, params: readonly SqlValue[] = []) => direct(() => this.stmt(sql).run(...bind(params)).changes, sql),
        changed: (c) => changes.push(c),
      };
      // IMMEDIATE: take the write lock now, so a second process waits here rather than
      // failing with SQLITE_BUSY at its first write inside the transaction.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(tx);
        this.db.exec('COMMIT');
        for (const c of changes) this.listeners.emit(c);
        return result;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw sqliteError(e, 'transaction');
      }
    });
  }

  migrate(now: number): Promise<number> {
    return this.transaction((tx) => migrate(tx, 'sqlite', now));
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.listeners.clear();
    this.db.close();
    this.release();
  }

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Run a plain statement now, or after the transactions queued before it. */
  private exclusive<T>(f: () => T, sql: string): Promise<T> {
    const wrapped = (): T => {
      try {
        return f();
      } catch (e) {
        throw sqliteError(e, sql.slice(0, 60));
      }
    };
    if (this.queue.size === 0) {
      if (this.closed) return Promise.reject(new CoapfwError('IO_ERROR', 'store: closed'));
      try {
        return Promise.resolve(wrapped());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.enqueue(wrapped);
  }

  private enqueue<T>(f: () => T | Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new CoapfwError('IO_ERROR', 'store: closed'));
    return this.queue.run(f);
  }
}

/** Transactions on one database file in this process, one at a time, in order. */
class WriteQueue {
  private static readonly byFile = new Map<string, { queue: WriteQueue; users: number }>();
  private tail: Promise<unknown> = Promise.resolve();
  /** Queued or running tasks. */
  size = 0;

  /** The queue of `path` (private for an in-memory database), and a function to call on close. */
  static forFile(path: string): { queue: WriteQueue; release: () => void } {
    if (path === '' || path === ':memory:' || path.startsWith('file:')) return { queue: new WriteQueue(), release: () => undefined };
    const key = realpathSync(path);
    let entry = WriteQueue.byFile.get(key);
    if (entry === undefined) WriteQueue.byFile.set(key, (entry = { queue: new WriteQueue(), users: 0 }));
    entry.users++;
    const e = entry;
    return {
      queue: e.queue,
      release: () => {
        if (--e.users === 0) WriteQueue.byFile.delete(key);
      },
    };
  }

  run<T>(f: () => T | Promise<T>): Promise<T> {
    this.size++;
    const result = this.tail.then(f);
    this.tail = result.then(
      () => this.size--,
      () => this.size--,
    );
    return result;
  }

  /** Resolves when everything queued so far has finished (errors went to their callers). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
