/**
 * The PostgreSQL driver: a `pg` pool for queries and transactions, and one
 * dedicated connection that LISTENs for the change events every server
 * sharing the database sends (NOTIFY inside the writing transaction, so a
 * rolled-back write announces nothing and listeners see only committed data).
 *
 * Transactions run at READ COMMITTED; the store's writes are conditional
 * UPDATEs and INSERT ... ON CONFLICT, which PostgreSQL re-checks against the
 * committed row after waiting for a concurrent writer, so they are correct
 * across servers without SELECT ... FOR UPDATE (which SQLite lacks). A
 * deadlock or serialization failure is retried a few times.
 */
import { randomBytes } from 'node:crypto';
import type * as PgTypes from 'pg';
import { CoapfwError } from '../errors.js';
import { migrate } from './migrations.js';
import { ChangeListeners, dbError, type SqlDriver, type SqlValue, type Tx } from './sql.js';
import type { StoreChange } from './store.js';

/** Options of the PostgreSQL driver. */
export interface PgDriverOptions {
  /** Connections in the pool. Default 10. */
  readonly maxConnections?: number;
  /** Give up connecting after this long. Default 10000 ms. */
  readonly connectTimeoutMs?: number;
  /** Longest wait before re-opening a lost LISTEN connection (back-off doubles up to it). Default 5000 ms. */
  readonly maxReconnectDelayMs?: number;
}

/** The NOTIFY channel of change events. */
export const CHANGE_CHANNEL = 'coapfw_changes';
// pg_advisory_xact_lock(int, int) key of the schema lock: 'coap' and 'fw' in ASCII.
const SCHEMA_LOCK = '1668247920, 26231';
const RETRIES = 3;

const placeholders = new Map<string, string>();
/** `?` placeholders as `$1, $2, ...` (our queries hold no `?` inside string literals). */
function numbered(sql: string): string {
  let out = placeholders.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    placeholders.set(sql, out);
  }
  return out;
}

function pgError(e: unknown, what: string): CoapfwError {
  const code = (e as { code?: unknown })?.code;
  const msg = `store: ${what}: ${(e as Error)?.message}`;
  if (code === '23505') return new CoapfwError('CONFLICT', msg, { cause: e });
  if (code === '23503') return new CoapfwError('NOT_FOUND', `store: ${what}: a referenced row does not exist`, { cause: e });
  if (code === '23514' || code === '22P02' || code === '22003') return new CoapfwError('INVALID_ARGUMENT', msg, { cause: e });
  return dbError(e, what);
}

const retryable = (e: unknown): boolean => {
  const code = ((e as { cause?: { code?: unknown } })?.cause ?? (e as { code?: unknown }))?.code;
  return code === '40001' || code === '40P01';
};

/** The pg package, or DRIVER_MISSING naming it. */
async function loadPg(): Promise<(typeof import('pg'))['default']> {
  try {
    return (await import('pg')).default;
  } catch (e) {
    throw new CoapfwError('DRIVER_MISSING', `store: PostgreSQL needs the pg package, which cannot be loaded (${(e as Error).message.split('\n')[0]}): npm install pg`, { cause: e });
  }
}

/** A PostgreSQL database as a {@link SqlDriver}. */
export class PgDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  /** Tags this driver's own NOTIFYs, which it already delivered locally after commit. */
  private readonly origin = randomBytes(8).toString('hex');
  private readonly listeners = new ChangeListeners();
  private listener: PgTypes.Client | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly Client: typeof PgTypes.Client,
    private readonly pool: PgTypes.Pool,
    private readonly url: string,
    private readonly options: PgDriverOptions,
  ) {
    // An idle pooled connection that dies (server restart) is dropped by the pool;
    // without a handler its 'error' would crash the process.
    pool.on('error', (e) => process.emitWarning(e, 'CoapfwStorePoolError'));
  }

  /** Connect to `url` (postgres://...) and start listening for change events. */
  static async open(url: string, options: PgDriverOptions = {}): Promise<PgDriver> {
    const pg = await loadPg();
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10, connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000 });
    const driver = new PgDriver(pg.Client, pool, url, options);
    try {
      await driver.listen();
    } catch (e) {
      await pool.end().catch(() => undefined); // the connect error is what the caller needs
      throw dbError(e, `connecting to PostgreSQL ${redact(url)}`);
    }
    return driver;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    try {
      return (await this.pool.query(numbered(sql), params as SqlValue[])).rows as T[];
    } catch (e) {
      throw pgError(e, sql.slice(0, 60));
    }
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    try {
      return (await this.pool.query(numbered(sql), params as SqlValue[])).rowCount ?? 0;
    } catch (e) {
      throw pgError(e, sql.slice(0, 60));
    }
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transactionOnce(fn);
      } catch (e) {
        if (attempt >= RETRIES || !retryable(e)) throw e;
      }
    }
  }

  migrate(now: number): Promise<number> {
    return this.transaction(async (tx) => {
      // Held until this transaction ends: a second server starting at the same moment waits,
      // then finds the schema migrated (DDL is transactional in PostgreSQL).
      await tx.run(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`);
      return migrate(tx, 'postgres', now);
    });
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.listeners.clear();
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined); // closing: a failing goodbye changes nothing
    await this.pool.end();
  }

  private async transactionOnce<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) throw new CoapfwError('IO_ERROR', 'store: closed');
    let client: PgTypes.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw dbError(e, 'connecting to PostgreSQL');
    }
    const changes: StoreChange[] = [];
    const query = async (sql: string, params: readonly SqlValue[]): Promise<PgTypes.QueryResult> => {
      try {
        return await client.query(numbered(sql), params as SqlValue[]);
      } catch (e) {
        throw pgError(e, sql.slice(0, 60));
      }
    };
    const tx: Tx = {
      all: async <R>(sql: string, params: readonly SqlValue[] = []) => (await query(sql, params)).rows as R[],
      get: async <R>(sql: string, params: readonly SqlValue[] = []) => (await query(sql, params)).rows[0] as R | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => (await query(sql, params)).rowCount ?? 0,
      changed: (c) => changes.push(c),
    };
    let broken: unknown;
    try {
      await query('BEGIN', []);
      const result = await fn(tx);
      for (const c of changes) await query('SELECT pg_notify(?, ?)', [CHANGE_CHANNEL, JSON.stringify({ o: this.origin, c })]);
      await query('COMMIT', []);
      for (const c of changes) this.listeners.emit(c);
      return result;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError; // the connection is unusable: destroy it rather than pool it
      }
      throw e;
    } finally {
      client.release(broken as Error | undefined);
    }
  }

  private async listen(): Promise<void> {
    const client = new this.Client({ connectionString: this.url, connectionTimeoutMillis: this.options.connectTimeoutMs ?? 10_000 });
    client.on('notification', (msg) => this.onNotification(msg.payload));
    client.on('error', () => undefined); // until LISTEN is in place, failures arrive through connect()/query()
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      client.end().catch(() => undefined); // already failed; its error is thrown below
      throw e;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    client.removeAllListeners('error');
    const lost = (): void => this.onListenerLost(client);
    client.on('error', lost);
    client.on('end', lost);
    this.listener = client;
  }

  private onNotification(payload: string | undefined): void {
    let parsed: { o?: unknown; c?: StoreChange };
    try {
      parsed = JSON.parse(payload ?? '') as typeof parsed;
    } catch {
      return; // not one of ours (someone else NOTIFYing on the channel): nothing to deliver
    }
    if (parsed.o === this.origin || typeof parsed.c?.kind !== 'string') return;
    this.listeners.emit(parsed.c);
  }

  /** The LISTEN connection failed (server restart, network): replace it, then tell listeners to resync. */
  private onListenerLost(client: PgTypes.Client): void {
    if (this.closed || this.listener !== client) return;
    this.listener = undefined;
    client.removeAllListeners('error');
    client.removeAllListeners('end');
    client.on('error', () => undefined); // a dead client may still emit; it has been replaced
    client.end().catch(() => undefined);
    this.scheduleReconnect(100);
  }

  private scheduleReconnect(delayMs: number): void {
    this.reconnectTimer = setTimeout(() => {
      this.listen().then(
        () => {
          if (!this.closed) this.listeners.emit({ kind: 'resync' });
        },
        () => {
          if (!this.closed) this.scheduleReconnect(Math.min(delayMs * 2, this.options.maxReconnectDelayMs ?? 5000));
        },
      );
    }, delayMs);
    this.reconnectTimer.unref();
  }
}

/** A connection URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
