/**
 * Where the store tests get their databases: SQLite files in a temporary
 * directory, or databases of their own (unique names, dropped afterwards) on
 * the PostgreSQL server named by COAPFW_TEST_PG (`.ci/run` starts one and
 * exports it; locally: `eval "$(bash .ci/postgres.sh start)"`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type OpenStoreOptions } from '../../src/service/open.js';
import type { Store } from '../../src/service/store.js';

/** The PostgreSQL server of the tests, if any. */
export const PG_URL = process.env.COAPFW_TEST_PG;
/** Why the PostgreSQL tests cannot run, for describeWithBinaries (fails under CI, skips locally). */
export const PG_MISSING = PG_URL ? undefined : 'PostgreSQL: COAPFW_TEST_PG is not set (eval "$(bash .ci/postgres.sh start)")';

/** Makes fresh, empty databases of one backend and removes them at the end. */
export interface Harness {
  readonly backend: 'sqlite' | 'postgres';
  /** The URL of a new empty database. */
  fresh(): Promise<string>;
  /** Open a store on `url` with the options of the test. */
  open(url: string, options?: OpenStoreOptions): Promise<Store>;
  /** Close every store opened through {@link Harness.open} and remove the databases. */
  cleanup(): Promise<void>;
}

abstract class BaseHarness {
  protected readonly stores: Store[] = [];
  async open(url: string, options?: OpenStoreOptions): Promise<Store> {
    const s = await openStore(url, options);
    this.stores.push(s);
    return s;
  }
  protected async closeAll(): Promise<void> {
    await Promise.all(this.stores.splice(0).map((s) => s.close()));
  }
}

/** SQLite files in one temporary directory. */
export class SqliteHarness extends BaseHarness implements Harness {
  readonly backend = 'sqlite' as const;
  private dir: string | undefined;
  private n = 0;
  async fresh(): Promise<string> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'coapfw-store-'));
    return `sqlite:${join(this.dir, `db-${++this.n}.sqlite`)}`;
  }
  async cleanup(): Promise<void> {
    await this.closeAll();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

/** Databases with unique names on the test PostgreSQL server. */
export class PgHarness extends BaseHarness implements Harness {
  readonly backend = 'postgres' as const;
  private readonly created: string[] = [];
  constructor(private readonly adminUrl: string) {
    super();
  }
  async fresh(): Promise<string> {
    const name = `coapfw_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    await this.admin(`CREATE DATABASE ${name}`);
    this.created.push(name);
    const url = new URL(this.adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }
  async cleanup(): Promise<void> {
    await this.closeAll();
    for (const name of this.created.splice(0)) await this.admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
  /** Run one statement on the server's maintenance database. */
  async admin(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    const client = new pg.Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  }
}

/** A wall clock that moves only when the test says so. */
export class TestClock {
  constructor(public t = Date.UTC(2026, 0, 1)) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}
